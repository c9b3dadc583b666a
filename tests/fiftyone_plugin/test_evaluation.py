import fiftyone as fo
import pytest

from fiftyone_plugin.dataset import MODIFIED, REFERENCE
from fiftyone_plugin.evaluation import compare_runs, evaluate_idc_captions, sample_fields


def _caption(dataset, field, caption_of):
    modified = dataset.select_group_slices(MODIFIED)
    ids, captions = modified.values(["id", "captions"])
    dataset.set_values(field, {i: caption_of(c) for i, c in zip(ids, captions)}, key_field="id")


def test_evaluation_run_stores_fields_results_and_baselines(idc_dataset):
    _caption(idc_dataset, "perfect", lambda refs: refs[0])
    _caption(idc_dataset, "constant", lambda refs: "there is no change")
    test = idc_dataset.match_tags("test")
    results = evaluate_idc_captions(test, "perfect", "eval_perfect")
    assert results.metrics["CIDEr-D"] > 3.0 and results.metrics["count"] == len(test.select_group_slices(MODIFIED))
    assert set(results.per_category) == {"color", "add", "drop", "move", "none"} & set(results.per_category)
    assert {"mean_sentence", "nearest_neighbour"} <= set(results.baselines)

    assert results.change_reading["all"]["exact"] == 1.0  # shapes-change captions are read back exactly
    assert results.baselines["mean_sentence"]["change_reading"]["all"]["exact"] < 0.5

    loaded = idc_dataset.load_evaluation_results("eval_perfect")
    assert loaded.metrics == pytest.approx(results.metrics)
    assert loaded.change_reading == results.change_reading
    assert "eval_perfect" in idc_dataset.list_evaluations()
    for slice_name in (REFERENCE, MODIFIED):
        scored = test.select_group_slices(slice_name).values("eval_perfect_cider")
        assert all(v is not None and v > 0 for v in scored)
    assert set(idc_dataset.select_group_slices(MODIFIED).match_tags("train").values("eval_perfect_cider")) == {None}

    evaluate_idc_captions(test, "constant", "eval_constant", baselines=False)
    table = compare_runs(idc_dataset, "eval_constant", "eval_perfect")
    assert table["all"]["delta"] > 0 and table["none"]["eval_constant"] > 0


def test_rerunning_a_key_replaces_only_its_fields(idc_dataset):
    _caption(idc_dataset, "perfect", lambda refs: refs[0])
    _caption(idc_dataset, "wrong", lambda refs: "a purple triangle was added")
    test = idc_dataset.match_tags("test")
    evaluate_idc_captions(test, "perfect", "keep", baselines=False)
    evaluate_idc_captions(test, "wrong", "redo", baselines=False)
    first = idc_dataset.load_evaluation_results("redo").metrics["CIDEr-D"]
    kept = test.select_group_slices(MODIFIED).values("keep_cider")

    _caption(idc_dataset, "wrong", lambda refs: refs[1])
    evaluate_idc_captions(test, "wrong", "redo", baselines=False)
    assert idc_dataset.load_evaluation_results("redo").metrics["CIDEr-D"] > first
    assert test.select_group_slices(MODIFIED).values("keep_cider") == kept
    assert idc_dataset.has_sample_field("perfect") and idc_dataset.has_sample_field("wrong")
    assert sorted(idc_dataset.list_evaluations()) == ["keep", "redo"]

    idc_dataset.delete_evaluation("redo")
    assert not any(idc_dataset.has_sample_field(f) for f in sample_fields("redo"))
    assert all(idc_dataset.has_sample_field(f) for f in sample_fields("keep"))


def test_bad_arguments_are_named(idc_dataset):
    with pytest.raises(ValueError, match="eval_key must be a valid identifier, got 'my key'"):
        evaluate_idc_captions(idc_dataset, "perfect", "my key")
    with pytest.raises(ValueError, match="pred_field: the modified slice has no field 'nothing'"):
        evaluate_idc_captions(idc_dataset, "nothing", "k")


def test_pairs_without_a_caption_are_left_out_and_counted(idc_dataset):
    _caption(idc_dataset, "partial", lambda refs: refs[0])
    test = idc_dataset.match_tags("test")
    uncaptioned = test.select_group_slices(MODIFIED).limit(3).values("id")
    idc_dataset.set_values("partial", {i: None for i in uncaptioned}, key_field="id")
    results = evaluate_idc_captions(test, "partial", "partial_eval")
    total = len(test.select_group_slices(MODIFIED))
    assert results.left_out["count"] == 3 and results.metrics["count"] == total - 3
    assert results.baselines["mean_sentence"]["table"]["all"]["count"] == total - 3
    assert "chosen on validation" in results.baselines["mean_sentence"]["note"]
    assert idc_dataset.load_evaluation_results("partial_eval").left_out["count"] == 3
    with pytest.raises(ValueError, match="pred_field 'nothing_yet': none of the 24 pairs has a caption"):
        idc_dataset.add_sample_field("nothing_yet", fo.StringField)
        evaluate_idc_captions(test, "nothing_yet", "k")


def _invent_on_unchanged(refs):
    """The right caption, except on unchanged pairs: a change of an object that is in neither image."""
    return "the purple triangle moved" if refs[0] == "there is no change" else refs[0]


def test_change_level_scores_and_per_sample_flags_are_written(idc_dataset):
    _caption(idc_dataset, "inventive", _invent_on_unchanged)
    test = idc_dataset.match_tags("test")
    modified = test.select_group_slices(MODIFIED)
    unchanged = set(modified.match(fo.ViewField("category") == "none").values("id"))
    assert unchanged  # the fixture holds unchanged test pairs
    # Make sure no unchanged scene holds a purple triangle, so that the caption names an absent object.
    for sample in modified.select(list(unchanged)):
        kinds = {(o["color"], o["shape"]) for o in sample.idc_metadata["objects_reference"]}
        assert ("purple", "triangle") not in kinds

    results = evaluate_idc_captions(test, "inventive", "inv")
    level = results.change_level
    assert level["reader"] == "shapes-change" and level["unchanged_pairs"] == len(unchanged)
    assert level["true_negative_rate"] == 0.0 and level["false_change_rate"] == 1.0
    assert level["precision"] < 1.0 and level["recall"] == 1.0 and 0 < level["f1"] < 1
    assert level["hallucination_rate"] == len(unchanged) / len(modified)
    assert results.baselines["mean_sentence"]["change_level"]["false_change_rate"] is not None
    assert idc_dataset.load_evaluation_results("inv").change_level == level

    ids, false_change, hallucinated = modified.values(["id", "inv_false_change", "inv_hallucinated"])
    for sample_id, flag, invented in zip(ids, false_change, hallucinated):
        assert flag is (True if sample_id in unchanged else None)
        assert invented is (sample_id in unchanged)
    # The flags live on the modified slice; the reference slice keeps only the scores.
    assert set(test.select_group_slices(REFERENCE).values("inv_false_change")) == {None}
    assert len(modified.match(fo.ViewField("inv_false_change") == True)) == len(unchanged)  # noqa: E712

    _caption(idc_dataset, "honest", lambda refs: refs[0])
    results = evaluate_idc_captions(test, "honest", "hon", baselines=False)
    assert results.change_level["true_negative_rate"] == 1.0 and results.change_level["f1"] == 1.0
    ids, false_change = modified.values(["id", "hon_false_change"])
    assert {f for i, f in zip(ids, false_change) if i in unchanged} == {False}


def test_change_level_fields_follow_a_renamed_run_and_go_with_a_deleted_one(idc_dataset):
    _caption(idc_dataset, "inventive", _invent_on_unchanged)
    test = idc_dataset.match_tags("test")
    evaluate_idc_captions(test, "inventive", "first", baselines=False)
    idc_dataset.rename_evaluation("first", "second")
    assert not idc_dataset.has_sample_field("first_false_change")
    assert idc_dataset.has_sample_field("second_false_change") and idc_dataset.has_sample_field("second_hallucinated")
    idc_dataset.delete_evaluation("second")
    assert not any(idc_dataset.has_sample_field(f) for f in sample_fields("second"))


def test_free_text_references_get_no_change_level_figures(idc_dataset):
    modified = idc_dataset.select_group_slices(MODIFIED)
    ids = modified.values("id")
    idc_dataset.set_values("captions", {i: ["a man put on a hat", "someone wears a hat"] for i in ids}, key_field="id")
    _caption(idc_dataset, "said", lambda refs: "a man wears a hat")
    test = idc_dataset.match_tags("test")
    results = evaluate_idc_captions(test, "said", "free", baselines=False)
    assert results.change_level is None and results.change_reading is None
    assert not idc_dataset.has_sample_field("free_false_change")
    assert idc_dataset.has_sample_field("free_cider")
    idc_dataset.rename_evaluation("free", "free2")  # no change-level fields to rename: no error
    idc_dataset.delete_evaluation("free2")


def test_a_run_whose_change_flags_are_all_none_is_stored_whole(idc_dataset):
    """No unchanged pair in the view (or no caption that reads) leaves every flag None: FiftyOne cannot
    infer a field's type from None alone, and the run failed after its key was registered and the previous
    run's fields deleted, with no results stored."""
    _caption(idc_dataset, "inventive", _invent_on_unchanged)
    _caption(idc_dataset, "garbled", lambda refs: "zzz")
    test = idc_dataset.match_tags("test")
    evaluate_idc_captions(test, "inventive", "k", baselines=False)
    changed = test.match(fo.ViewField("category") != "none")
    results = evaluate_idc_captions(changed, "inventive", "k", baselines=False)
    assert results.change_level["unchanged_pairs"] == 0 and results.change_level["true_negative_rate"] is None
    loaded = idc_dataset.load_evaluation_results("k")
    assert loaded.change_level == results.change_level
    assert loaded.pairs["count"] == len(changed.select_group_slices(MODIFIED))
    modified = idc_dataset.select_group_slices(MODIFIED)
    assert set(modified.values("k_false_change")) == {None}  # the first run's True flags are gone
    assert set(changed.select_group_slices(MODIFIED).values("k_hallucinated")) == {False}

    results = evaluate_idc_captions(test, "garbled", "g", baselines=False)
    assert results.change_level["unread"] == len(test.select_group_slices(MODIFIED))
    assert idc_dataset.load_evaluation_results("g").change_level == results.change_level
    assert set(modified.values("g_false_change")) == {None} and set(modified.values("g_hallucinated")) == {None}
    assert modified.match(fo.ViewField("g_false_change") == True).count() == 0  # noqa: E712


def test_captions_that_cannot_be_read_are_scored_and_leave_their_change_flags_empty(idc_dataset):
    """A young model's captions (or a retrained one's, on held-out pairs) that no reader can read: the
    run is stored with empty per-pair flags instead of failing after the captions were written."""
    _caption(idc_dataset, "gibberish", lambda refs: "zq zq zq")
    test = idc_dataset.match_tags("test")
    results = evaluate_idc_captions(test, "gibberish", "gib", baselines=False)
    assert results.change_level is not None and results.change_level["true_negative_rate"] == 0.0
    modified = test.select_group_slices(MODIFIED)
    assert set(modified.values("gib_false_change")) == {None}
    assert set(modified.values("gib_hallucinated")) == {None}
