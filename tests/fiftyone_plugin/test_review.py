"""Review records: one per pair, never touching the references, every action undoable."""

import pytest

from fiftyone_plugin.captioning import caption_samples
from fiftyone_plugin.dataset import MODIFIED, REFERENCE
from fiftyone_plugin.review import (
    HISTORY_FIELD,
    REVIEW_FIELD,
    accept,
    edit,
    flag,
    next_in_queue,
    pair_of_sample,
    review_counts,
    review_queue,
    review_record,
    reviewed_pairs,
    undo,
)


@pytest.fixture
def captioned(idc_dataset, tiny_model):
    caption_samples(idc_dataset.match_tags("test"), tiny_model, "idc_caption")
    return idc_dataset


def test_accept_edit_flag_and_undo_keep_one_record_per_pair_and_the_references(captioned):
    dataset = captioned
    modified = dataset.select_group_slices(MODIFIED).match_tags("test")
    first, second, third = modified.limit(3).values("pair_id")
    references_before = dataset.select_group_slices(MODIFIED).values("captions")

    record = accept(dataset, first, "idc_caption")
    model_caption = dict(zip(*modified.values(["pair_id", "idc_caption"])))[first]
    assert record["status"] == "accepted" and record["caption"] == model_caption and record["undoable"] == 1
    edit(dataset, second, "  the red circle moved to the left ")
    flag(dataset, third, "two objects changed")
    assert review_record(dataset, second)["caption"] == "the red circle moved to the left"

    # Stored once per pair: on the modified slice, never copied to the reference slice.
    assert review_counts(dataset.match_tags("test")) == {
        "unreviewed": len(modified) - 3,
        "accepted": 1,
        "edited": 1,
        "flagged": 1,
    }
    assert set(dataset.select_group_slices(REFERENCE).values(f"{REVIEW_FIELD}.status")) == {None}
    assert dataset.select_group_slices(MODIFIED).values("captions") == references_before

    edit(dataset, first, "a new caption")
    assert review_record(dataset, first)["status"] == "edited"
    assert undo(dataset, first)["status"] == "accepted"  # back one step, not to the start
    assert undo(dataset, first)["status"] == "unreviewed"
    with pytest.raises(ValueError, match=f"pair_id {first!r}: nothing to undo"):
        undo(dataset, first)
    assert review_record(dataset, first)["undoable"] == 0
    assert len(dataset.select_group_slices(MODIFIED).match({"pair_id": third}).first()[HISTORY_FIELD]) == 1


def test_bad_review_actions_name_the_problem(captioned):
    pair = captioned.select_group_slices(MODIFIED).match_tags("train").first().pair_id
    with pytest.raises(ValueError, match=f"source_field 'idc_caption': pair {pair!r} has no caption there"):
        accept(captioned, pair, "idc_caption")
    with pytest.raises(ValueError, match="caption: an edited caption must be a non-empty string"):
        edit(captioned, pair, "   ")
    with pytest.raises(ValueError, match="reason: a flag needs a reason"):
        flag(captioned, pair, "")
    with pytest.raises(ValueError, match="pair_id 'nope': no such pair"):
        accept(captioned, "nope", "idc_caption")
    assert review_record(captioned, pair)["status"] == "unreviewed"


def test_the_queue_puts_the_least_confident_unreviewed_pair_first(captioned):
    test = captioned.match_tags("test")
    queue = review_queue(test, "idc_caption")
    confidences = queue.values("idc_caption_confidence")
    assert len(confidences) == len(test.select_group_slices(MODIFIED)) and confidences == sorted(confidences)
    head = next_in_queue(test, "idc_caption")
    assert head == queue.first().pair_id
    accept(captioned, head, "idc_caption")
    assert next_in_queue(test, "idc_caption") != head
    assert len(review_queue(test, "idc_caption")) == len(confidences) - 1
    assert next_in_queue(test, "idc_caption", after_pair=queue.values("pair_id")[1]) == queue.values("pair_id")[2]


def test_reviewed_pairs_carry_the_reviewers_caption(captioned):
    test = captioned.match_tags("test")
    first, second, third = test.select_group_slices(MODIFIED).limit(3).values("pair_id")
    accept(captioned, first, "idc_caption")
    edit(captioned, second, "a blue square was added")
    flag(captioned, third, "unsure")
    pairs = {p.id: p for p in reviewed_pairs(test)}
    assert set(pairs) == {first, second} and pairs[second].captions == ["a blue square was added"]
    kept = {p.id: p for p in reviewed_pairs(test, keep_references=True)}
    assert kept[second].captions[0] == "a blue square was added" and len(kept[second].captions) > 1
    sample_on_reference = captioned.select_group_slices(REFERENCE).match({"pair_id": second}).first()
    assert pair_of_sample(captioned, sample_on_reference.id) == second


def test_retraining_on_reviewed_pairs_is_compared_on_held_out_pairs(captioned, tiny_dir, tmp_path):
    from fiftyone_plugin.evaluation import compare_runs, evaluate_idc_captions
    from fiftyone_plugin.retrain import held_out, retrain_on_reviewed
    from idc_engine.model.config import LoraSettings
    from idc_engine.train.config import TrainConfig

    test = captioned.match_tags("test")
    pairs = test.select_group_slices(MODIFIED).values(["pair_id", "captions"])
    for pair_id, references in zip(*pairs):
        edit(captioned, pair_id, references[0])  # the reviewer writes the right caption for each
    config = TrainConfig(lora=LoraSettings(rank=4), max_steps=4, batch_size=4, eval_every=0, checkpoint_every=4)
    summary = retrain_on_reviewed(test, "idc_caption", tmp_path / "retrain", config, holdout=0.25)
    held = [p for p in pairs[0] if held_out(p, 0.25)]
    assert summary["held_out"] == len(held) and summary["trained_on"] == len(pairs[0]) - len(held)
    assert summary["started_from"] == str(tiny_dir)  # the model that wrote idc_caption
    retrained = dict(zip(*captioned.select_group_slices(MODIFIED).values(["pair_id", "idc_caption_retrained"])))
    assert {p for p, c in retrained.items() if c is not None} == set(held)
    assert set(summary["comparison"]["all"]) == {"idc_caption_review_before", "idc_caption_review_after", "delta"}

    # A run over other pairs cannot be compared with them.
    evaluate_idc_captions(test, "idc_caption", "everything", baselines=False, references="reviewed")
    with pytest.raises(ValueError, match="scored different pairs"):
        compare_runs(captioned, "everything", "idc_caption_review_after")
