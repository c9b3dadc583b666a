"""The one writer of captions, heatmaps and job marks: once per job, both slices alike, every prefix
finishable (fiftyone_plugin.writeback)."""

import json
import signal

import numpy as np
import pytest

from fiftyone_plugin.captioning import confidence_field, write_captions
from fiftyone_plugin.dataset import MODIFIED, PAIR_ID, REFERENCE
from fiftyone_plugin.writeback import JobMark, job_field, unfinished_pairs
from idc_engine.inference.caption import CaptionResult

from .processes import run_together

FIELD = "idc_caption"
MARK = JobMark(job_field(FIELD), "job-1")


def _result(pair_ids, caption) -> CaptionResult:
    from idc_engine.data.loading import LoadReport

    return CaptionResult({p: caption for p in pair_ids}, {p: 0.5 for p in pair_ids}, LoadReport())


def _slices(dataset, pair_ids) -> dict[str, dict]:
    both = dataset.select_group_slices([REFERENCE, MODIFIED]).match({PAIR_ID: {"$in": list(pair_ids)}})
    found = {}
    for pid, name, caption, mark in zip(*both.values([PAIR_ID, "group.name", FIELD, MARK.field])):
        found.setdefault(pid, {})[name] = (caption, mark)
    return found


def _writer_code(dataset, pair_ids, caption) -> str:
    return (
        "import fiftyone as fo\n"
        "from fiftyone_plugin.captioning import write_captions\n"
        "from fiftyone_plugin.writeback import JobMark\n"
        "from idc_engine.data.loading import LoadReport\n"
        "from idc_engine.inference.caption import CaptionResult\n"
        f"dataset = fo.load_dataset({dataset.name!r})\n"
        f"ids = {json.dumps(list(pair_ids))}\n"
        f"result = CaptionResult({{p: {caption!r} for p in ids}}, {{p: 0.5 for p in ids}}, LoadReport())\n"
        "# READY\n"
        f"print('WRITTEN', write_captions(dataset, {FIELD!r}, result, mark=JobMark({MARK.field!r}, {MARK.job!r})))\n"
    )


def test_a_marked_write_writes_each_sample_once_and_a_second_writes_nothing(idc_dataset):
    pair_ids = idc_dataset.match_tags("test").select_group_slices(MODIFIED).limit(5).values(PAIR_ID)
    assert write_captions(idc_dataset, FIELD, _result(pair_ids, "first"), mark=MARK) == 10
    assert write_captions(idc_dataset, FIELD, _result(pair_ids, "second"), mark=MARK) == 0
    assert all(
        s == {REFERENCE: ("first", "job-1"), MODIFIED: ("first", "job-1")}
        for s in _slices(idc_dataset, pair_ids).values()
    )
    assert unfinished_pairs(idc_dataset, pair_ids, MARK) == set()
    assert set(idc_dataset.select_group_slices(REFERENCE).values(confidence_field(FIELD))) >= {0.5}


def test_a_kill_between_the_slices_leaves_a_pair_the_next_write_finishes_alike(idc_dataset, tmp_path):
    """Killed after the modified samples: the pairs count as unfinished; the next write, even with
    another caption (a second attempt's), gives the reference what the modified sample holds."""
    idc_dataset.persistent = True
    pair_ids = idc_dataset.match_tags("test").select_group_slices(MODIFIED).limit(4).values(PAIR_ID)
    (killed,) = run_together(
        tmp_path, _writer_code(idc_dataset, pair_ids, "first"), 1, env={"IDC_FAULT": "pairs.between_slices"}
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    idc_dataset.reload()
    assert all(
        s == {MODIFIED: ("first", "job-1"), REFERENCE: (None, None)} for s in _slices(idc_dataset, pair_ids).values()
    )
    assert unfinished_pairs(idc_dataset, pair_ids, MARK) == set(pair_ids)
    assert write_captions(idc_dataset, FIELD, _result(pair_ids, "second"), mark=MARK) == 4
    assert all(
        s == {REFERENCE: ("first", "job-1"), MODIFIED: ("first", "job-1")}
        for s in _slices(idc_dataset, pair_ids).values()
    )


def test_two_processes_writing_one_job_at_once_write_each_sample_once(idc_dataset, tmp_path):
    idc_dataset.persistent = True
    pair_ids = idc_dataset.match_tags("test").select_group_slices(MODIFIED).values(PAIR_ID)
    write_captions(idc_dataset, FIELD, _result([], ""), mark=MARK)  # declares the fields
    runs = run_together(tmp_path, _writer_code(idc_dataset, pair_ids, "same"), 2)
    assert all(r.returncode == 0 for r in runs), [r.stderr[-2000:] for r in runs]
    written = [int(r.stdout.split("WRITTEN ")[1]) for r in runs]
    assert sum(written) == 2 * len(pair_ids), written
    idc_dataset.reload()
    assert all(
        s == {REFERENCE: ("same", "job-1"), MODIFIED: ("same", "job-1")}
        for s in _slices(idc_dataset, pair_ids).values()
    )


def test_a_reference_without_its_partner_never_takes_a_pairs_values(idc_dataset, shapes_pairs):
    """A reference sample of a pair's id in a group of its own (what an add killed between its two slices
    leaves, in Syned now or before) is no pair's: values go to the reference in the modified sample's
    group, and that reference's mark says when the pair is done (the orphan's used to be read)."""
    import fiftyone as fo

    from fiftyone_plugin.dataset import pair_sample

    pair = next(p for p in shapes_pairs if p.split == "test")
    idc_dataset.add_sample(pair_sample(pair, REFERENCE, fo.Group()))  # added after the pair: read last
    assert write_captions(idc_dataset, FIELD, _result([pair.id], "cap"), mark=MARK) == 2
    both = idc_dataset.select_group_slices([REFERENCE, MODIFIED]).match({PAIR_ID: pair.id})
    (pair_group,) = idc_dataset.select_group_slices(MODIFIED).match({PAIR_ID: pair.id}).values("group.id")
    found = {
        (group == pair_group, name): (caption, mark)
        for group, name, caption, mark in zip(*both.values(["group.id", "group.name", FIELD, MARK.field]))
    }
    assert found == {
        (True, MODIFIED): ("cap", "job-1"),
        (True, REFERENCE): ("cap", "job-1"),
        (False, REFERENCE): (None, None),  # the orphan is left alone
    }
    assert unfinished_pairs(idc_dataset, [pair.id], MARK) == set()


@pytest.mark.parametrize("field", ["captions", "category", "pair_id", "filepath", "tags"])
def test_writing_over_the_pairs_own_fields_is_refused_and_loses_nothing(idc_dataset, field):
    """A caption field named after one of the pairs' own fields (the App's form lets one be typed) used to
    overwrite the reference captions, change categories, pair ids or image paths with the caption."""
    pair_ids = idc_dataset.match_tags("test").select_group_slices(MODIFIED).limit(2).values(PAIR_ID)
    before = list(idc_dataset._sample_collection.find({}, {"last_modified_at": 0}).sort("_id"))
    with pytest.raises(ValueError, match=f"field {field!r}: .*pairs' own .*; write to a field of its own"):
        write_captions(idc_dataset, field, _result(pair_ids, "cap"), mark=MARK)
    assert list(idc_dataset._sample_collection.find({}, {"last_modified_at": 0}).sort("_id")) == before


def test_writing_heatmaps_over_a_caption_field_is_refused_and_loses_nothing(idc_dataset):
    from fiftyone_plugin.heatmaps import PairHeatmaps, heatmap, write_heatmaps

    pair_ids = idc_dataset.match_tags("test").select_group_slices(MODIFIED).limit(2).values(PAIR_ID)
    write_captions(idc_dataset, FIELD, _result(pair_ids, "cap"), mark=MARK)
    computed = PairHeatmaps(
        modified={p: {FIELD: heatmap(np.ones((2, 2)))} for p in pair_ids},
        reference={p: {FIELD: heatmap(np.zeros((2, 2)))} for p in pair_ids},
    )
    with pytest.raises(ValueError, match=f"field {FIELD!r}: .*StringField.*, not .*Heatmap"):
        write_heatmaps(idc_dataset, computed, FIELD, None)
    assert all(
        s == {REFERENCE: ("cap", "job-1"), MODIFIED: ("cap", "job-1")} for s in _slices(idc_dataset, pair_ids).values()
    )


def test_regions_and_heatmaps_given_one_field_are_refused_and_nothing_is_written(idc_dataset):
    """``regions_field`` equal to ``heatmap_field``: the modified samples' maps gave way to their
    regions and the reference samples got Heatmap documents in a field declared for Detections."""
    import fiftyone as fo

    from fiftyone_plugin.heatmaps import PairHeatmaps, heatmap, write_heatmaps

    pair_ids = idc_dataset.match_tags("test").select_group_slices(MODIFIED).limit(2).values(PAIR_ID)
    computed = PairHeatmaps(  # what heatmap_values computes when both fields are "h"
        modified={p: {"h": fo.Detections(detections=[])} for p in pair_ids},
        reference={p: {"h": heatmap(np.zeros((2, 2)))} for p in pair_ids},
    )
    before = list(idc_dataset._sample_collection.find({}, {"last_modified_at": 0}).sort("_id"))
    with pytest.raises(ValueError, match="field 'h': holds Detections values .*, not Heatmap"):
        write_heatmaps(idc_dataset, computed, "h", "h")
    after = list(idc_dataset._sample_collection.find({}, {"last_modified_at": 0}).sort("_id"))
    assert after == before
