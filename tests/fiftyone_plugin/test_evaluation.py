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
