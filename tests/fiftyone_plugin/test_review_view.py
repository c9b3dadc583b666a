"""What the review panel shows, without a browser: each pair's own inputs, idc's evaluation runs only,
a clear word on a dataset that is not an IDC one, the change-level figures of a run (the contract with
evaluation runs that report them), the heatmap overlay and the agreement view."""

import urllib.parse

import fiftyone as fo
import numpy as np
import pytest
from PIL import Image

from fiftyone_plugin.dataset import MODIFIED, REFERENCE, write_pair_values
from fiftyone_plugin.evaluation import IDCCaptionEvaluationResults, evaluate_idc_captions
from fiftyone_plugin.review import accept, edit, flag
from fiftyone_plugin.review_overlap import agreement_report, set_overlap
from fiftyone_plugin.review_view import (
    agreement_markdown,
    change_chart,
    change_markdown,
    false_change_view,
    idc_evaluations,
    is_idc_dataset,
    overlay_images,
    pair_key,
    pair_summary,
    panel_inputs,
    shown_pair,
    summary_markdown,
)


@pytest.fixture
def captioned(idc_dataset):
    test = idc_dataset.select_group_slices(MODIFIED).match_tags("test")
    ids = test.values("pair_id")
    write_pair_values(idc_dataset, "idc_caption", {p: f"caption of {p}" for p in ids[:-1]})  # the last has none
    return idc_dataset, ids


def modified_id(dataset, pair_id):
    return dataset.select_group_slices(MODIFIED).match({"pair_id": pair_id}).first().id


def test_each_pair_starts_with_its_own_caption_and_an_empty_flag_reason(captioned):
    dataset, ids = captioned
    first, uncaptioned = ids[0], ids[-1]
    summary = pair_summary(dataset, modified_id(dataset, first))
    assert panel_inputs(summary, "idc_caption") == {"caption": f"caption of {first}", "reason": ""}
    edit(dataset, first, "the reviewer's words", reviewer="ann")
    assert panel_inputs(pair_summary(dataset, modified_id(dataset, first)), "idc_caption")["caption"] == (
        "the reviewer's words"
    )
    # A pair with no caption in the field starts empty: never the text of the pair shown before it.
    empty = pair_summary(dataset, modified_id(dataset, uncaptioned))
    assert panel_inputs(empty, "idc_caption") == {"caption": "", "reason": ""}
    assert pair_key(first) != pair_key(uncaptioned)  # their inputs live under different names
    shown = shown_pair(summary, "idc_caption")
    assert shown["pair_id"] == first and shown["version"] == 0 and shown["shown_caption"] == f"caption of {first}"
    assert shown_pair(empty, "idc_caption")["shown_caption"] is None


def test_a_sample_of_either_slice_shows_its_pair_with_its_group(captioned):
    dataset, ids = captioned
    reference = dataset.select_group_slices(REFERENCE).match({"pair_id": ids[1]}).first()
    summary = pair_summary(dataset, reference.id)
    assert summary["pair_id"] == ids[1] and summary["slice"] == REFERENCE
    assert summary["group_id"] == reference.group.id and summary["modified_sample"] == modified_id(dataset, ids[1])
    with pytest.raises(ValueError, match="no such sample"):
        pair_summary(dataset, "0123456789abcdef01234567")


def test_a_dataset_that_is_not_an_idc_one_is_said_so():
    flat = fo.Dataset()
    try:
        assert not is_idc_dataset(flat) and not is_idc_dataset(None)
    finally:
        flat.delete()


def test_only_idc_evaluation_runs_are_offered(captioned):
    dataset, ids = captioned
    evaluate_idc_captions(dataset.match_tags("test"), "idc_caption", "idc_run", baselines=False)
    modified = dataset.select_group_slices(MODIFIED)
    labels = {sid: fo.Classification(label="change") for sid in modified.values("id")}
    modified.set_values("truth", labels, key_field="id")
    modified.set_values("guess", labels, key_field="id")
    modified.evaluate_classifications("guess", gt_field="truth", eval_key="a_classification_run")
    assert set(dataset.list_evaluations()) == {"idc_run", "a_classification_run"}
    assert idc_evaluations(dataset) == ["idc_run"]


class ChangeLevelResults(IDCCaptionEvaluationResults):
    """An idc evaluation run's results as evaluation runs will store them (issue 15's contract): with
    ``change_level`` figures and ``<eval_key>_false_change`` on the pairs."""

    def __init__(self, *args, change_level=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.change_level = change_level

    @classmethod
    def _from_dict(cls, d, samples, config, eval_key):
        results = super()._from_dict(d, samples, config, eval_key)
        results.change_level = d.get("change_level")
        return results


def test_the_chart_shows_the_true_negative_rate_beside_cider_and_opens_the_false_changes(captioned):
    dataset, ids = captioned
    test = dataset.match_tags("test")
    results = evaluate_idc_captions(test, "idc_caption", "with_levels", baselines=False)
    # A run without change-level figures (an older run, or free-text references) has no such chart.
    bare = ChangeLevelResults(
        test,
        results.config,
        "with_levels",
        metrics=results.metrics,
        per_category=results.per_category,
        pairs=results.pairs,
        change_level=None,
        backend=results.backend,
    )
    results.backend.save_run_results(test, "with_levels", bare)
    assert change_chart(dataset, "with_levels") == [] and change_markdown(dataset, "with_levels") is None
    level = {
        "true_negative_rate": 0.75,
        "false_change_rate": 0.25,
        "hallucination_rate": 0.1,
        "precision": 0.8,
        "recall": 0.9,
        "f1": 0.847,
        "unchanged_pairs": 4,
    }
    stored = ChangeLevelResults(
        test,
        results.config,
        "with_levels",
        metrics=results.metrics,
        per_category=results.per_category,
        pairs=results.pairs,
        change_level=level,
        backend=results.backend,
    )
    results.backend.save_run_results(test, "with_levels", stored)
    false_changes = set(ids[:2])
    write_pair_values(dataset, "with_levels_false_change", {p: p in false_changes for p in ids})

    (trace,) = change_chart(dataset, "with_levels")
    bars = dict(zip(trace["x"], trace["y"]))
    assert bars["CIDEr-D"] == round(100 * results.metrics["CIDEr-D"], 1)
    assert bars["true-negative rate"] == 75.0 and bars["false changes"] == 25.0 and bars["F1"] == 84.7
    assert "true-negative rate **75.0%** on 4 unchanged pairs" in change_markdown(dataset, "with_levels")
    view = false_change_view(dataset, "with_levels")
    assert set(view.select_group_slices(MODIFIED).values("pair_id")) == false_changes
    with pytest.raises(ValueError, match="wrote no 'nope_false_change'"):
        false_change_view(dataset, "nope")


def test_the_overlay_draws_the_heatmap_and_the_regions_over_both_images(captioned):
    from fiftyone_plugin.heatmaps import detections, heatmap
    from idc_engine.attention.regions import Region

    dataset, ids = captioned
    pair = ids[0]
    values = np.zeros((8, 8), dtype="float32")
    values[2:5, 2:5] = 1.0
    write_pair_values(dataset, "idc_attention", {pair: heatmap(values)})
    region = Region(box=[0.25, 0.25, 0.4, 0.4], score=0.9, label="circle")
    modified = dataset.select_group_slices(MODIFIED).match({"pair_id": pair})
    modified.set_values("idc_regions", [detections([region])])
    summary = pair_summary(dataset, modified_id(dataset, pair))
    assert summary["heatmaps"] == ["idc_attention"] and summary["regions"] == ["idc_regions"]
    drawn = overlay_images(dataset, summary, "idc_attention", "idc_regions")
    for name in (REFERENCE, MODIFIED):
        path = urllib.parse.unquote(drawn[name].split("filepath=", 1)[1])
        original = np.asarray(Image.open(summary["paths"][name]).convert("RGB"), dtype="int16")
        over = np.asarray(Image.open(path).convert("RGB"), dtype="int16")
        assert over.shape == original.shape and np.abs(over - original).mean() > 5  # something drawn
    assert overlay_images(dataset, summary, "idc_attention", "idc_regions") == drawn  # drawn once, reused


def test_blind_reviews_stay_hidden_until_settled_and_the_agreement_view_counts_them(captioned):
    dataset, ids = captioned
    set_overlap(dataset.match_tags("test"), share=1.0, reviewers=2)
    a, b, c = ids[:3]
    accept(dataset, a, "idc_caption", reviewer="ann")
    summary = pair_summary(dataset, modified_id(dataset, a))
    assert summary["review"]["status"] == "unreviewed"  # one of two blind reviews in
    assert "blind review by 2 reviewers, 1 in" in summary_markdown(summary, None, "bob")
    assert "ann" not in summary_markdown(summary, None, "bob")  # Bob does not see Ann's decision
    assert "0 action(s) to undo" in summary_markdown(summary, None, "bob")  # nor an undo of it offered
    accept(dataset, a, "idc_caption", reviewer="bob")
    edit(dataset, b, "the red circle moved left", reviewer="ann")
    edit(dataset, b, "a red circle moved to the left", reviewer="bob")
    accept(dataset, c, "idc_caption", reviewer="ann")
    flag(dataset, c, "two things changed", reviewer="bob")
    report = agreement_report(dataset)
    verdicts = {p["pair_id"]: p["agree"] for p in report["pairs"]}
    assert verdicts == {a: True, b: True, c: False} and report["pending"] == len(ids) - 3
    assert report["reviewers"]["ann"] == {"pairs": 3, "agreed": 2, "rate": 2 / 3}
    settled = pair_summary(dataset, modified_id(dataset, c))["review"]
    assert settled["status"] == "disputed"
    text = agreement_markdown(report, {}, {"share": 1.0, "reviewers": 2})
    assert "67% of 3 pairs · 1 to resolve" in text and "| ann | 3 | 2 | 67% |" in text
