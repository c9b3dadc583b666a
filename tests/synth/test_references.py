"""The paper's 5-reference test protocol, end to end on a tiny causal LM: instructions in, references out,
every line through the guardrails, the counts in the report, one generate call per batch of pairs."""

import json
from pathlib import Path

import pytest

from idc_engine.data.manifest import read_manifest, write_manifest
from idc_engine.data.pair import IDCPair
from idc_engine.synth.llm_variator import LLMVariator, LLMVariatorConfig
from idc_engine.synth.references import ReferenceConfig, add_instruction_references
from idc_engine.synth.templates import TemplateVariator
from tests.synth.taught_llm import SYSTEM, build_taught_llm, taught_config
from tests.synth.test_llm_variator import tiny_llm  # noqa: F401 (a fixture: a random tiny Llama)


@pytest.fixture(scope="module")
def taught_llm(tmp_path_factory):
    return build_taught_llm(tmp_path_factory.mktemp("taught-llm"))


_config = taught_config


def _pairs(tmp_path) -> list[IDCPair]:
    image = tmp_path / "x.png"
    image.write_bytes(b"")
    return [
        IDCPair("hat", image, image, ["Add a hat to the dog"], "test", "add", {"instruction": "Add a hat to the dog"}),
        IDCPair("car", image, image, ["Remove the car", "the car is gone"], "test", "remove", {}),
        IDCPair("blank", image, image, [], "test", None, {}),
        IDCPair("train-1", image, image, ["Add a hat to the dog"], "train", "add", {}),
    ]


def test_each_test_pair_gets_its_instruction_and_the_variations_that_pass_the_guardrails(taught_llm, tmp_path):
    pairs = _pairs(tmp_path)
    variator = LLMVariator(_config(taught_llm))
    out, report = add_instruction_references(pairs, variator, ReferenceConfig(variations=4, seed=3))
    by_id = {p.id: p for p in out}
    assert by_id["hat"].captions == ["Add a hat to the dog", "Put a hat on the dog", "Give the dog a hat"]
    assert by_id["car"].captions == ["Remove the car", "Get rid of the car", "Take the car away", "Erase the car"]
    assert by_id["blank"].captions == [] and by_id["train-1"] == pairs[3]  # nothing to vary; not a test pair
    record = by_id["car"].metadata["reference_variations"]
    assert record["previous_captions"] == ["Remove the car", "the car is gone"]  # what it had is kept
    assert record["rejected"] == {"reversed": 1} and record["missing"] == 1
    assert record["variator"]["mode"] == "instructions" and record["variator"]["fallback"] is None
    assert report.pairs == 3 and report.without_instruction == ["blank"]
    assert (report.asked, report.kept, report.short) == (8, 5, 2)
    assert report.rejected == {"reversed": 2, "role_play": 1}
    assert report.generate_calls == 1  # both pairs' prompts (4 variations each) in one batched call
    assert json.loads(json.dumps(report.to_dict()))["rejected"] == {"reversed": 2, "role_play": 1}

    again, _ = add_instruction_references(
        pairs, LLMVariator(_config(taught_llm)), ReferenceConfig(variations=4, seed=3)
    )
    assert again == out  # same seed, a fresh load: the same references


def test_a_random_tiny_lm_runs_the_protocol_and_every_line_it_writes_is_judged(tiny_llm, tmp_path):  # noqa: F811
    variator = LLMVariator(LLMVariatorConfig(model_path=tiny_llm, mode="instructions", device="cpu", max_new_tokens=16))
    out, report = add_instruction_references(_pairs(tmp_path), variator, ReferenceConfig(variations=4))
    by_id = {p.id: p for p in out}
    assert by_id["hat"].captions[0] == "Add a hat to the dog" and by_id["car"].captions[0] == "Remove the car"
    variations = [len(by_id[i].captions) - 1 for i in ("hat", "car")]
    assert report.kept == sum(variations) and report.asked == 8 and report.short == sum(n < 4 for n in variations)
    assert sum(report.rejected.values()) > 0  # random text: lines rejected, each counted by its reason
    assert report.generate_calls == 3  # up to max_attempts (3) batched calls while a pair is short
    assert by_id["car"].metadata["reference_variations"]["variator"]["model_path"] == tiny_llm


def test_batches_of_pairs_make_one_call_each(taught_llm, tmp_path):
    variator = LLMVariator(_config(taught_llm, batch_size=1))
    _, report = add_instruction_references(_pairs(tmp_path), variator)
    assert report.generate_calls == 2


def test_the_protocol_refuses_caption_writers(taught_llm, tmp_path):
    with pytest.raises(ValueError, match="variator: the test references are imperative variations.*TemplateVariator"):
        add_instruction_references(_pairs(tmp_path), TemplateVariator())
    captions = LLMVariator(_config(taught_llm, mode="captions"))
    with pytest.raises(ValueError, match="in 'captions' mode"):
        add_instruction_references(_pairs(tmp_path), captions)
    with pytest.raises(ValueError, match="variations must be a positive integer, got 0"):
        ReferenceConfig(variations=0)


def test_idc_references_writes_the_manifest_and_a_report(taught_llm, tmp_path, capsys):
    from idc_engine.cli import main

    manifest = tmp_path / "m.jsonl"
    write_manifest(_pairs(tmp_path), manifest)
    out = tmp_path / "refs.jsonl"
    args = ["references", "--manifest", str(manifest), "--variator", taught_llm, "--out", str(out)]
    args += ["--llm-system-prompt", SYSTEM, "--llm-max-new-tokens", "48", "--llm-max-attempts", "1", "--device", "cpu"]
    assert main(args) == 0
    written = {p.id: p for p in read_manifest(out)}
    assert written["hat"].captions[1:] == ["Put a hat on the dog", "Give the dog a hat"]
    report = json.loads(Path(tmp_path / "refs.report.json").read_text())
    assert report["report"]["rejected"] == {"reversed": 2, "role_play": 1} and report["config"]["variations"] == 4
    assert report["variator"]["mode"] == "instructions"
    printed = capsys.readouterr().out
    assert "5 of 8 variations kept, 2 short" in printed and "'reversed': 2" in printed


def test_a_second_run_keeps_the_captions_the_pair_had_before_the_first(taught_llm, tmp_path):
    # break-16: re-running the protocol (same or another seed) recorded the first run's references as
    # "previous_captions", so the pair's own captions ("the car is gone") were lost for good.
    pairs = _pairs(tmp_path)
    first, _ = add_instruction_references(pairs, LLMVariator(_config(taught_llm)), ReferenceConfig(seed=3))
    second, _ = add_instruction_references(first, LLMVariator(_config(taught_llm)), ReferenceConfig(seed=4))
    record = {p.id: p for p in second}["car"].metadata["reference_variations"]
    assert record["previous_captions"] == ["Remove the car", "the car is gone"]
    assert record["seed"] != {p.id: p for p in first}["car"].metadata["reference_variations"]["seed"]
