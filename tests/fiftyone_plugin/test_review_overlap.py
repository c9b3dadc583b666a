"""Blind overlap: which pairs are reviewed blind, and what a change of the share leaves when it stops half way."""

import pytest

import fiftyone_plugin.review_overlap as review_overlap
from fiftyone_plugin.dataset import MODIFIED
from fiftyone_plugin.review import OVERLAP_FIELD
from fiftyone_plugin.review_overlap import in_overlap, set_overlap


class Killed(BaseException):
    """The process stops here (a kill between two writes)."""


def blind_pairs(dataset):
    modified = dataset.select_group_slices(MODIFIED)
    return {p for p, k in zip(*modified.values(["pair_id", OVERLAP_FIELD])) if k}


@pytest.mark.parametrize("writes_done", [0, 1, 2])
def test_raising_the_share_stopped_at_any_write_leaves_the_blind_pairs_blind(idc_dataset, monkeypatch, writes_done):
    dataset = idc_dataset
    set_overlap(dataset, share=0.3, reviewers=2)
    before = blind_pairs(dataset)
    assert before and before == {
        p for p in dataset.select_group_slices(MODIFIED).values("pair_id") if in_overlap(p, 0.3)
    }
    collection = review_overlap._collection(dataset)

    class StopsAfter:
        def __init__(self):
            self.writes = 0

        def update_many(self, *args, **kwargs):
            if self.writes == writes_done:
                raise Killed
            self.writes += 1
            return collection.update_many(*args, **kwargs)

        def __getattr__(self, name):
            return getattr(collection, name)

    monkeypatch.setattr(review_overlap, "_collection", lambda dataset: StopsAfter())
    try:
        set_overlap(dataset, share=0.6, reviewers=2)
    except Killed:
        pass
    # Every pair blind at 30 % is blind at 60 % too: whatever prefix of the change landed, none of them
    # was left open to a single reviewer's decision (which would then stand as the pair's review).
    assert before <= blind_pairs(dataset)


def test_a_disputed_pair_resolved_by_a_lead_stays_in_the_agreement_report(idc_dataset):
    """The lead's decision replaces the record: the blind reviewers' disagreement must still count
    (settled, not waiting), and the pair must show as resolved."""
    from fiftyone_plugin.review import edit
    from fiftyone_plugin.review_overlap import agreement_report

    dataset = idc_dataset
    set_overlap(dataset, share=1.0, reviewers=2)
    pair = dataset.select_group_slices(MODIFIED).first()["pair_id"]
    edit(dataset, pair, "a red circle was added", reviewer="ann")
    assert edit(dataset, pair, "the blue square vanished", reviewer="bob")["status"] == "disputed"
    before = agreement_report(dataset)
    assert (before["settled"], before["agreed"]) == (1, 0) and not before["pairs"][0]["resolved"]

    assert edit(dataset, pair, "a red circle was added", reviewer="lee")["status"] == "edited"
    after = agreement_report(dataset)
    assert (after["settled"], after["agreed"], after["pending"]) == (1, 0, before["pending"]), after
    (row,) = after["pairs"]
    assert row["pair_id"] == pair and row["resolved"] and not row["agree"]
    assert after["reviewers"] == before["reviewers"]
