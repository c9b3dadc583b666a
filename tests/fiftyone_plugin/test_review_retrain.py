"""Retraining on the reviewers' corrections, measured honestly: test pairs are not trained on unless
asked, the data the model learnt from is replayed, a validation share keeps the best step, and the
comparison is reported apart for edited, accepted and the dataset's own test pairs."""

import json
from pathlib import Path

import pytest

from fiftyone_plugin.captioning import Cancelled
from fiftyone_plugin.dataset import MODIFIED, write_pair_values
from fiftyone_plugin.retrain import ACCEPTED_NOTE, RetrainConfig, held_out, plan_retraining, retrain_on_reviewed
from fiftyone_plugin.review import accept, edit
from idc_engine.model.config import LoraSettings
from idc_engine.train.config import TrainConfig


@pytest.fixture
def reviewed(idc_dataset):
    """Every test pair and 20 train pairs captioned; half of each accepted, half edited to a reference."""
    dataset = idc_dataset
    modified = dataset.select_group_slices(MODIFIED)
    ids, splits, references = modified.values(["pair_id", "tags", "captions"])
    by_split = {"test": [], "train": []}
    for pair_id, tags, refs in zip(ids, splits, references):
        for split in by_split:
            if split in tags:
                by_split[split].append((pair_id, refs))
    chosen = by_split["test"][:16] + by_split["train"][:20]
    write_pair_values(dataset, "idc_caption", {p: "there is no change" for p, _ in chosen})
    statuses = {}
    for i, (pair_id, refs) in enumerate(chosen):
        if i % 2:
            edit(dataset, pair_id, refs[0], "idc_caption", reviewer="ann")
            statuses[pair_id] = "edited"
        else:
            accept(dataset, pair_id, "idc_caption", reviewer="ann")
            statuses[pair_id] = "accepted"
    test_ids = {p for p, _ in by_split["test"]}
    return dataset, statuses, test_ids


def test_reviewed_test_pairs_are_never_trained_on_unless_asked_and_are_counted(reviewed):
    dataset, statuses, test_ids = reviewed
    plan = plan_retraining(dataset, "idc_caption", RetrainConfig(holdout=0.2))
    trained = {p.id for p in plan["training"] + plan["validation"] + plan["replay"]}
    assert not trained & test_ids
    reviewed_test = [p for p in statuses if p in test_ids and not held_out(p, 0.2)]
    assert plan["test_left_out"] == len(reviewed_test) > 0
    compared = {p.id for p in plan["held_edited"] + plan["held_accepted"]}
    assert set(reviewed_test) <= compared  # compared instead of trained on
    asked = plan_retraining(dataset, "idc_caption", RetrainConfig(holdout=0.2, include_test=True))
    assert asked["test_left_out"] == 0
    assert set(reviewed_test) <= {p.id for p in asked["training"] + asked["validation"]}


def test_replay_mixes_the_data_the_model_learnt_from_at_the_ratio_and_validation_is_apart(reviewed):
    dataset, statuses, test_ids = reviewed
    plan = plan_retraining(dataset, "idc_caption", RetrainConfig(holdout=0.2, validation=0.3, replay_ratio=2.0))
    training = len(plan["training"])
    assert len(plan["replay"]) == min(2 * training, 64 - 20) and plan["replay_wanted"] == 2 * training
    assert all(p.split == "train" and p.captions and p.id not in statuses for p in plan["replay"])
    assert plan["validation"] and all(p.split == "validation" for p in plan["validation"])
    assert not {p.id for p in plan["validation"]} & {p.id for p in plan["training"]}
    assert {p.id for p in plan["held_edited"]} <= {p for p, s in statuses.items() if s == "edited"}
    assert {p.id for p in plan["held_accepted"]} <= {p for p, s in statuses.items() if s == "accepted"}
    none = plan_retraining(dataset, "idc_caption", RetrainConfig(replay_ratio=0.0))
    assert none["replay"] == []
    with pytest.raises(ValueError, match="replay_ratio must be zero or positive, got -1"):
        RetrainConfig(replay_ratio=-1)


def test_the_forgetting_check_never_holds_a_replayed_pair(reviewed):
    dataset, _, test_ids = reviewed
    # A replay view that holds the test split, with include_test: replay still draws no test-split pair
    # (those measure what retraining forgot), and the forgetting check holds no replayed pair.
    plan = plan_retraining(
        dataset, "idc_caption", RetrainConfig(include_test=True, replay_ratio=1.0, test_pairs=1000), dataset
    )
    replayed = {p.id for p in plan["replay"]}
    assert replayed and not replayed & test_ids
    assert plan["tests"] and not {p.id for p in plan["tests"]} & replayed


def test_retraining_keeps_the_best_step_and_compares_edited_accepted_and_test_pairs_apart(reviewed, tiny_dir, tmp_path):
    dataset, statuses, _ = reviewed
    config = TrainConfig(
        lora=LoraSettings(rank=4), max_steps=4, batch_size=4, eval_every=2, eval_metric="loss", checkpoint_every=4
    )
    seen = []
    summary = retrain_on_reviewed(
        dataset,
        "idc_caption",
        tmp_path / "retrain",
        config,
        RetrainConfig(holdout=0.3, validation=0.3, test_pairs=4),
        model=str(tiny_dir),
        progress=lambda fraction, label: seen.append(fraction),
    )
    assert summary["best"] is not None and summary["best"]["step"] in (2, 4)  # validated, best kept
    # What became of the "no change" decision is reported, as the new model's training record says.
    record = json.loads((Path(summary["model_dir"]) / "training.json").read_text())
    assert summary["no_change_decision"] == record["no_change"] and "skipped" in record["no_change"]
    assert summary["validation"] > 0 and summary["replayed"] == summary["replay_wanted"] > 0
    comparisons = summary["comparisons"]
    for name in ("held_out_edited", "held_out_accepted", "test_references"):
        table = comparisons[name]["table"]
        assert comparisons[name]["pairs"] > 0 and set(table["all"]) == set(comparisons[name]["eval_keys"]) | {"delta"}
    assert comparisons["test_references"]["pairs"] == 4
    # "Before" is the starting model captioning the compared pairs now, as "after" does: not the stored
    # captions (here written by hand, by no model at all).
    before_field = summary["before_field"]
    for name in ("held_out_edited", "held_out_accepted", "test_references"):
        before_key = comparisons[name]["eval_keys"][0]
        assert dataset.load_evaluation_results(before_key).config.pred_field == before_field
    befores = dict(zip(*dataset.select_group_slices(MODIFIED).values(["pair_id", before_field])))
    held = comparisons["held_out_edited"]["pairs"] + comparisons["held_out_accepted"]["pairs"]
    assert sum(c is not None for c in befores.values()) == held + 4
    differs = sum(c is not None and c != "there is no change" for p, c in befores.items() if p in statuses)
    assert summary["held_out_before_differs_from_stored"] == differs
    assert comparisons["held_out_accepted"]["note"] == ACCEPTED_NOTE
    assert dataset.load_evaluation_results(comparisons["test_references"]["eval_keys"][0]).config.references == (
        "captions"
    )
    new = dict(zip(*dataset.select_group_slices(MODIFIED).values(["pair_id", "idc_caption_retrained"])))
    compared = comparisons["held_out_edited"]["pairs"] + comparisons["held_out_accepted"]["pairs"] + 4
    assert sum(c is not None for c in new.values()) == compared
    assert seen == sorted(seen) and seen[-1] == 1.0 and any(0.05 < f < 0.7 for f in seen)  # progress while training


def test_retraining_can_be_cancelled_while_it_trains_and_writes_nothing(reviewed, tiny_dir, tmp_path):
    dataset, _, _ = reviewed
    config = TrainConfig(lora=LoraSettings(rank=4), max_steps=20, batch_size=4, eval_every=0, checkpoint_every=5)
    steps = []

    def cancelled():
        steps.append(1)
        return len(steps) > 3  # the user cancels during training

    with pytest.raises(Cancelled, match="retraining cancelled at step"):
        retrain_on_reviewed(
            dataset,
            "idc_caption",
            tmp_path / "retrain",
            config,
            RetrainConfig(test_pairs=0),
            model=str(tiny_dir),
            cancelled=cancelled,
        )
    assert not dataset.has_sample_field("idc_caption_retrained")


def test_retraining_can_be_cancelled_while_the_old_model_captions_and_says_so(reviewed, tiny_dir, tmp_path):
    dataset, _, _ = reviewed
    config = TrainConfig(lora=LoraSettings(rank=4), max_steps=2, batch_size=4, eval_every=0, checkpoint_every=2)
    labels = []
    with pytest.raises(Cancelled, match="cancelled while the old model captioned; nothing was written"):
        retrain_on_reviewed(
            dataset,
            "idc_caption",
            tmp_path / "retrain",
            config,
            RetrainConfig(test_pairs=40),
            model=str(tiny_dir),
            progress=lambda fraction, label: labels.append(label),
            cancelled=lambda: bool(labels),  # the user cancels once the run has shown anything
        )
    assert not (tmp_path / "retrain").exists() and not dataset.has_sample_field("idc_caption_retrained")


def test_a_second_retraining_never_mixes_its_captions_with_the_first_runs(reviewed, tiny_dir, tmp_path):
    dataset, _, _ = reviewed
    config = TrainConfig(lora=LoraSettings(rank=4), max_steps=2, batch_size=4, eval_every=0, checkpoint_every=2)
    settings = RetrainConfig(holdout=0.3, validation=0.0, replay_ratio=0.0, test_pairs=2)
    first = retrain_on_reviewed(dataset, "idc_caption", tmp_path / "one", config, settings, model=str(tiny_dir))
    # Untold, the second run gets fields and evaluations of its own; the first run's stay as they were.
    second = retrain_on_reviewed(dataset, "idc_caption", tmp_path / "two", config, settings, model=str(tiny_dir))
    assert first["new_field"] == "idc_caption_retrained" and second["new_field"] == "idc_caption_retrained_2"
    first_keys = first["comparisons"]["test_references"]["eval_keys"]
    assert set(first_keys) <= set(dataset.list_evaluations())
    assert not set(first_keys) & set(second["comparisons"]["test_references"]["eval_keys"])
    # Told to reuse the first run's field, it refuses before training; with overwrite it replaces all of it.
    with pytest.raises(ValueError, match="new_field 'idc_caption_retrained': an earlier retraining stored"):
        retrain_on_reviewed(
            dataset,
            "idc_caption",
            tmp_path / "three",
            config,
            settings,
            model=str(tiny_dir),
            new_field="idc_caption_retrained",
        )
    assert not (tmp_path / "three").exists()
    modified = dataset.select_group_slices(MODIFIED)
    modified.set_values("idc_caption_retrained", ["left by hand"] * len(modified))  # on every pair
    third = retrain_on_reviewed(
        dataset,
        "idc_caption",
        tmp_path / "three",
        config,
        settings,
        model=str(tiny_dir),
        new_field="idc_caption_retrained",
        overwrite=True,
    )
    values = modified.values("idc_caption_retrained")
    compared = sum(
        third["comparisons"][n]["pairs"] for n in ("held_out_edited", "held_out_accepted", "test_references")
    )
    assert "left by hand" not in values and sum(v is not None for v in values) == compared


def test_the_retrain_form_offers_a_free_field_and_refuses_an_earlier_runs(reviewed, tmp_path):
    import fiftyone.operators as foo
    from fiftyone.operators.executor import ExecutionError

    dataset, _, _ = reviewed
    write_pair_values(dataset, "idc_caption_retrained", {"test-000000": "an earlier run's caption"})
    params = {"caption_field": "idc_caption", "model": "tiny", "out_dir": str(tmp_path / "out")}
    operator = foo.get_operator("@idc/idc/retrain_blip2idc_on_reviewed")
    form = operator.resolve_input(foo.ExecutionContext(request_params={"dataset_name": dataset.name, "params": params}))
    assert form.type.properties["new_field"].default == "idc_caption_retrained_2"
    with pytest.raises(ExecutionError, match="new_field: an earlier retraining stored 'idc_caption_retrained'"):
        foo.execute_operator(
            "@idc/idc/retrain_blip2idc_on_reviewed",
            ctx=dict(dataset=dataset, params=params | {"new_field": "idc_caption_retrained"}),
        ).raise_exceptions()
    assert not (tmp_path / "out").exists()


def test_test_pairs_measured_before_and_after_are_never_trained_on(reviewed):
    dataset, statuses, test_ids = reviewed
    # The lead replays from the whole dataset and lets reviewed test pairs train (include_test).
    plan = plan_retraining(
        dataset, "idc_caption", RetrainConfig(include_test=True, replay_ratio=10.0, test_pairs=1000), dataset
    )
    trained = {p.id for p in plan["training"] + plan["validation"] + plan["replay"]}
    measured = {p.id for p in plan["tests"]}
    assert measured, "the comparison on the dataset's test references needs test pairs"
    # "What retraining forgot" cannot be measured on pairs it has just been trained on.
    assert not trained & measured, sorted(trained & measured)


def test_a_model_that_did_not_change_compares_equal_to_itself_on_every_subset(reviewed, tiny_dir, tmp_path):
    """Fair means before and after differ only by the training: the same model, the same decoding.

    Here the reviewed field was not written by the model retrained (hand-typed captions; in use: another
    model, or the same one with more beams), and the training changes nothing (one step at lr 1e-12):
    every before / after difference would be the comparison's own doing."""
    dataset, _, _ = reviewed
    config = TrainConfig(
        lora=LoraSettings(rank=4), max_steps=1, batch_size=4, learning_rate=1e-12, eval_every=0, checkpoint_every=1
    )
    summary = retrain_on_reviewed(
        dataset,
        "idc_caption",
        tmp_path / "retrain",
        config,
        RetrainConfig(holdout=0.3, validation=0.0, test_pairs=4),
        model=str(tiny_dir),
    )
    for name in ("held_out_edited", "held_out_accepted", "test_references"):
        found = summary["comparisons"][name]
        assert found["pairs"] > 0
        assert found["table"]["all"]["delta"] == pytest.approx(0.0, abs=1e-9), (name, found["table"]["all"])
