"""The test-reference protocol from the App: each test pair's captions become its instruction and the LLM's
variations that pass the guardrails, on both slices, with what the pair had before kept."""

import fiftyone.operators as foo
import numpy as np
import pytest
from PIL import Image

from fiftyone_plugin.dataset import CAPTIONS, METADATA, MODIFIED, REFERENCE, pairs_to_dataset
from idc_engine.data.pair import IDCPair
from tests.synth.taught_llm import SYSTEM, build_taught_llm


@pytest.fixture(scope="module")
def taught_llm(tmp_path_factory):
    return build_taught_llm(tmp_path_factory.mktemp("taught-llm"))


@pytest.fixture
def instruction_dataset(tmp_path):
    paths = []
    for index in range(2):
        path = tmp_path / f"{index}.png"
        Image.fromarray(np.full((16, 16, 3), 40 * index, np.uint8)).save(path)
        paths.append(path)
    pairs = [
        IDCPair("hat", paths[0], paths[1], ["Add a hat to the dog", "a hat was added"], "test", "add", {}),
        IDCPair("car", paths[0], paths[1], ["Remove the car"], "test", "remove", {"instruction": "Remove the car"}),
        IDCPair("train-hat", paths[0], paths[1], ["Add a hat to the dog"], "train", "add", {}),
    ]
    dataset = pairs_to_dataset(pairs)
    yield dataset
    dataset.delete()


def test_the_operator_writes_five_reference_captions_on_both_slices(instruction_dataset, taught_llm):
    from fiftyone_plugin.instruction_references import add_references_to_samples
    from idc_engine.synth.references import ReferenceConfig

    params = {"model_path": taught_llm, "variations": 4, "seed": 3, "device": "cpu"}
    # The operator's own LLM settings are the defaults; the taught model needs its short system prompt, so the
    # operator is checked for its form and registration, and the engine call it makes is run with that prompt.
    result = foo.execute_operator(
        "@idc/idc/add_instruction_references", ctx=dict(dataset=instruction_dataset, params=params)
    )
    assert result.result["pairs"] == 2 and result.result["written"] == 2  # default prompt: a random answer
    llm = {"device": "cpu", "system_prompt": SYSTEM, "max_new_tokens": 48, "max_attempts": 1}
    report = add_references_to_samples(instruction_dataset, taught_llm, ReferenceConfig(seed=3), llm=llm)
    assert report["written"] == 2 and report["rejected"] == {"reversed": 2, "role_play": 1}
    assert report["generate_calls"] == 1
    for slice_name in (REFERENCE, MODIFIED):
        view = instruction_dataset.select_group_slices(slice_name)
        captions = dict(zip(*view.values(["pair_id", CAPTIONS])))
        assert captions["hat"] == ["Add a hat to the dog", "Put a hat on the dog", "Give the dog a hat"]
        assert captions["car"] == ["Remove the car", "Get rid of the car", "Take the car away", "Erase the car"]
        assert captions["train-hat"] == ["Add a hat to the dog"]
        metadata = dict(zip(*view.values(["pair_id", METADATA])))
        assert metadata["car"]["instruction"] == "Remove the car"  # what was there is kept
        assert metadata["hat"]["reference_variations"]["previous_captions"][0] == "Add a hat to the dog"

    again = add_references_to_samples(instruction_dataset, taught_llm, ReferenceConfig(seed=3), llm=llm)
    assert again["variations_kept"] == report["variations_kept"]
    view = instruction_dataset.select_group_slices(MODIFIED)
    assert dict(zip(*view.values(["pair_id", CAPTIONS])))["hat"][1:] == ["Put a hat on the dog", "Give the dog a hat"]


def test_a_kill_between_the_captions_and_the_record_loses_no_caption(instruction_dataset, taught_llm, tmp_path):
    """break-16: the references were written as two updates, the new captions first and the record that keeps
    the old ones second. A process killed between them left the pairs with the references and no record of what
    they had ("a hat was added" gone); the next run then recorded the references as the previous captions."""
    import signal

    from fiftyone_plugin.instruction_references import add_references_to_samples
    from idc_engine.synth.references import ReferenceConfig

    from .processes import run_together

    instruction_dataset.persistent = True
    llm = {"device": "cpu", "system_prompt": SYSTEM, "max_new_tokens": 48, "max_attempts": 1}
    code = (
        "import fiftyone as fo\n"
        "from fiftyone_plugin.instruction_references import add_references_to_samples\n"
        "from idc_engine.synth.references import ReferenceConfig\n"
        f"dataset = fo.load_dataset({instruction_dataset.name!r})\n"
        "# READY\n"
        f"add_references_to_samples(dataset, {taught_llm!r}, ReferenceConfig(seed=3), llm={llm!r})\n"
    )
    (killed,) = run_together(tmp_path, code, 1, env={"IDC_FAULT": "references.between_fields"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    instruction_dataset.reload()
    add_references_to_samples(instruction_dataset, taught_llm, ReferenceConfig(seed=3), llm=llm)
    for slice_name in (REFERENCE, MODIFIED):
        view = instruction_dataset.select_group_slices(slice_name)
        metadata = dict(zip(*view.values(["pair_id", METADATA])))
        assert metadata["hat"]["reference_variations"]["previous_captions"] == [
            "Add a hat to the dog",
            "a hat was added",
        ]
        captions = dict(zip(*view.values(["pair_id", CAPTIONS])))
        assert captions["hat"] == ["Add a hat to the dog", "Put a hat on the dog", "Give the dog a hat"]
