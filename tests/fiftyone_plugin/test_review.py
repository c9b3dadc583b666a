"""Review records: one per pair, never touching the references, every action recorded with who made it,
atomic against other reviewers, undoable by whoever made it; the queue, its leases and skips."""

import time

import pytest
from fiftyone import ViewField as F

from fiftyone_plugin.captioning import caption_samples
from fiftyone_plugin.dataset import MODIFIED, REFERENCE, write_pair_values
from fiftyone_plugin.review import (
    HISTORY_FIELD,
    REVIEW_FIELD,
    ReviewConfig,
    ReviewConflict,
    accept,
    edit,
    flag,
    pair_of_sample,
    review_counts,
    review_record,
    reviewed_pairs,
    undo,
)
from fiftyone_plugin.review_queue import next_in_queue, review_queue, skip


@pytest.fixture
def captioned(idc_dataset, tiny_model):
    caption_samples(idc_dataset.match_tags("test"), tiny_model, "idc_caption")
    return idc_dataset


@pytest.fixture
def labelled(idc_dataset):
    """Every test pair captioned "caption of <id>", confidences falling with the id (the last is least sure)."""
    test = idc_dataset.select_group_slices(MODIFIED).match_tags("test")
    ids = sorted(test.values("pair_id"))
    write_pair_values(idc_dataset, "idc_caption", {p: f"caption of {p}" for p in ids})
    write_pair_values(idc_dataset, "idc_caption_confidence", {p: -0.01 * i for i, p in enumerate(ids)})
    return idc_dataset, ids[::-1]  # the queue's order: least confident first


def history(dataset, pair_id):
    return dataset.select_group_slices(MODIFIED).match(F("pair_id") == pair_id).values(HISTORY_FIELD, _raw=True)[0]


def test_accept_edit_flag_and_undo_keep_one_record_per_pair_and_the_references(captioned):
    dataset = captioned
    modified = dataset.select_group_slices(MODIFIED).match_tags("test")
    first, second, third = modified.limit(3).values("pair_id")
    references_before = dataset.select_group_slices(MODIFIED).values("captions")

    record = accept(dataset, first, "idc_caption", reviewer="ann")
    model_caption = dict(zip(*modified.values(["pair_id", "idc_caption"])))[first]
    assert record["status"] == "accepted" and record["caption"] == model_caption and record["undoable"] == 1
    edit(dataset, second, "  the red circle moved to the left ", reviewer="ann")
    flag(dataset, third, "two objects changed", reviewer="ann")
    assert review_record(dataset, second)["caption"] == "the red circle moved to the left"

    # Stored once per pair: on the modified slice, never copied to the reference slice.
    counts = review_counts(dataset.match_tags("test"))
    assert counts == {"unreviewed": len(modified) - 3, "accepted": 1, "edited": 1, "flagged": 1, "disputed": 0}
    assert set(dataset.select_group_slices(REFERENCE).values(f"{REVIEW_FIELD}.status")) == {None}
    assert dataset.select_group_slices(MODIFIED).values("captions") == references_before

    edit(dataset, first, "a new caption", reviewer="ann")
    assert review_record(dataset, first)["status"] == "edited"
    assert undo(dataset, first, reviewer="ann")["status"] == "accepted"  # back one step, not to the start
    assert undo(dataset, first, reviewer="ann")["status"] == "unreviewed"
    with pytest.raises(ValueError, match=f"pair_id {first!r}: nothing to undo"):
        undo(dataset, first, reviewer="ann")
    assert review_record(dataset, first)["undoable"] == 0
    # An audit trail: the undone actions stay, marked, and each undo is recorded after them.
    actions = [(e["action"], e["reviewer"], e.get("undoes")) for e in history(dataset, first)]
    assert actions == [("accept", "ann", None), ("edit", "ann", None), ("undo", "ann", 1), ("undo", "ann", 0)]
    assert review_record(dataset, first)["version"] == 4  # never goes back: a stale view is always detected


def test_every_action_records_who_made_it_when_and_how_long_it_took(labelled):
    dataset, ids = labelled
    before = time.time()
    accept(dataset, ids[0], "idc_caption", reviewer="ann", seconds=4.25)
    record = review_record(dataset, ids[0])
    assert record["reviewer"] == "ann" and record["reviewed_at"].timestamp() >= before - 1
    (entry,) = history(dataset, ids[0])
    assert entry["reviewer"] == "ann" and entry["action"] == "accept" and entry["seconds"] == 4.25
    assert entry["at"].timestamp() >= before - 1
    with pytest.raises(ValueError, match="reviewer: every action needs the reviewer's name"):
        edit(dataset, ids[1], "something", reviewer="  ")


def test_accept_stores_the_caption_the_reviewer_saw_and_refuses_when_it_changed(labelled):
    dataset, ids = labelled
    seen = f"caption of {ids[0]}"
    write_pair_values(dataset, "idc_caption", {ids[0]: "a newer caption from a job that just finished"})
    with pytest.raises(ReviewConflict, match=f"the caption in 'idc_caption' changed since you saw it .*{seen!r}"):
        accept(dataset, ids[0], "idc_caption", seen, reviewer="ann")
    assert review_record(dataset, ids[0])["status"] == "unreviewed"  # nothing stored
    stored = accept(dataset, ids[1], "idc_caption", f"caption of {ids[1]}", reviewer="ann")
    assert stored["caption"] == f"caption of {ids[1]}"


def test_a_stale_version_is_refused_naming_who_changed_the_pair(labelled):
    dataset, ids = labelled
    seen = review_record(dataset, ids[0])["version"]
    edit(dataset, ids[0], "bob's words", reviewer="bob", expected_version=seen)
    with pytest.raises(
        ReviewConflict, match=r"changed since you saw it \(version 0, now 1\): last change by 'bob'|bob"
    ):
        edit(dataset, ids[0], "ann's words", reviewer="ann", expected_version=seen)
    try:
        flag(dataset, ids[0], "blurry", reviewer="ann", expected_version=seen)
    except ReviewConflict as conflict:
        assert conflict.record["caption"] == "bob's words" and conflict.record["version"] == 1  # the new state
    assert [e["reviewer"] for e in history(dataset, ids[0])] == ["bob"]


def test_undo_undoes_only_the_reviewers_own_last_action(labelled):
    dataset, ids = labelled
    pair = ids[0]
    edit(dataset, pair, "ann's caption", reviewer="ann")
    edit(dataset, pair, "bob's caption", reviewer="bob")
    with pytest.raises(ValueError, match=r"the last action is 'bob''s edit at .*only they can undo it"):
        undo(dataset, pair, reviewer="ann")
    assert review_record(dataset, pair)["caption"] == "bob's caption"
    assert undo(dataset, pair, reviewer="bob")["caption"] == "ann's caption"
    assert undo(dataset, pair, reviewer="ann")["status"] == "unreviewed"
    edit(dataset, pair, "bob again", reviewer="bob")
    assert undo(dataset, pair, reviewer="lead", anyone=True)["status"] == "unreviewed"


def test_bad_review_actions_name_the_problem(labelled):
    dataset, _ = labelled
    pair = dataset.select_group_slices(MODIFIED).match_tags("train").first().pair_id
    with pytest.raises(ValueError, match=f"source_field 'idc_caption': pair {pair!r} has no caption there"):
        accept(dataset, pair, "idc_caption", reviewer="ann")
    with pytest.raises(ValueError, match="caption: an edited caption must be a non-empty string"):
        edit(dataset, pair, "   ", reviewer="ann")
    with pytest.raises(ValueError, match="reason: a flag needs a reason"):
        flag(dataset, pair, "", reviewer="ann")
    with pytest.raises(ValueError, match="pair_id 'nope': no such pair"):
        accept(dataset, "nope", "idc_caption", reviewer="ann")
    with pytest.raises(ValueError, match="lease_s must be positive, got 0"):
        ReviewConfig(lease_s=0)
    assert review_record(dataset, pair)["status"] == "unreviewed"


def test_the_queue_puts_the_least_confident_unreviewed_pair_first(labelled):
    dataset, ids = labelled
    test = dataset.match_tags("test")
    queue = review_queue(test, "idc_caption")
    assert queue.values("pair_id") == ids
    assert next_in_queue(test, "idc_caption", reviewer="ann") == ids[0]
    accept(dataset, ids[0], "idc_caption", reviewer="ann")
    assert next_in_queue(test, "idc_caption", reviewer="ann") == ids[1]


def test_the_queue_built_before_the_first_review_still_leaves_reviewed_pairs_out(labelled):
    dataset, ids = labelled
    queue = review_queue(dataset.match_tags("test"), "idc_caption")  # before any review field exists
    accept(dataset, ids[0], "idc_caption", reviewer="ann")
    assert ids[0] not in queue.values("pair_id") and len(queue) == len(ids) - 1


def test_the_queue_reads_the_record_on_the_modified_slice_whatever_slice_is_active(labelled):
    dataset, ids = labelled
    accept(dataset, ids[0], "idc_caption", reviewer="ann")
    dataset.group_slice = REFERENCE  # the App's active slice: the reference images
    test = dataset.match_tags("test")
    assert ids[0] not in review_queue(test, "idc_caption").values("pair_id")
    assert next_in_queue(test, "idc_caption", reviewer="bob") == ids[1]


def test_the_queue_is_limited_to_the_current_view(labelled):
    dataset, ids = labelled
    categories = dict(zip(*dataset.select_group_slices(MODIFIED).values(["pair_id", "category"])))
    category = categories[ids[3]]
    view = dataset.match_tags("test").match(F("category") == category)
    taken = []
    while (pair := next_in_queue(view, "idc_caption", reviewer="ann")) is not None:
        taken.append(pair)
        flag(dataset, pair, "checked", reviewer="ann")
    assert taken == [p for p in ids if categories[p] == category]


def test_two_reviewers_get_different_pairs_and_an_expired_lease_returns_the_pair(labelled):
    dataset, ids = labelled
    test = dataset.match_tags("test")
    ann = next_in_queue(test, "idc_caption", reviewer="ann")
    bob = next_in_queue(test, "idc_caption", reviewer="bob")
    assert (ann, bob) == (ids[0], ids[1])
    assert review_record(dataset, ann)["lease"]["reviewer"] == "ann"
    assert next_in_queue(test, "idc_caption", reviewer="ann") == ann  # still hers: she was not done
    # Carl's lease runs out at once; Dan then gets Carl's pair.
    short = ReviewConfig(lease_s=0.05)
    carl = next_in_queue(test, "idc_caption", reviewer="carl", config=short)
    assert carl == ids[2]
    time.sleep(0.1)
    assert next_in_queue(test, "idc_caption", reviewer="dan") == carl
    # An action ends the lease; leaving a pair for the next releases it.
    accept(dataset, ann, "idc_caption", reviewer="ann")
    assert review_record(dataset, ann)["lease"] is None
    nxt = next_in_queue(test, "idc_caption", reviewer="bob", after_pair=bob)
    assert nxt not in (ann, bob, carl) and review_record(dataset, bob)["lease"] is None


def test_a_skipped_pair_comes_back_only_after_the_queue_has_gone_round(labelled):
    dataset, ids = labelled
    test = dataset.match_tags("test")
    first = next_in_queue(test, "idc_caption", reviewer="ann")
    skip(dataset, first, reviewer="ann")
    second = next_in_queue(test, "idc_caption", reviewer="ann", after_pair=first)
    assert second == ids[1]
    skip(dataset, second, reviewer="ann")
    third = next_in_queue(test, "idc_caption", reviewer="ann", after_pair=second)
    assert third == ids[2]  # not back to the skipped first pair
    assert next_in_queue(test, "idc_caption", reviewer="bob") == ids[0]  # Ann's skip is hers only
    for pair in ids[3:]:
        flag(dataset, pair, "seen", reviewer="ann")
    flag(dataset, third, "seen", reviewer="ann")
    flag(dataset, ids[0], "seen", reviewer="bob")
    assert next_in_queue(test, "idc_caption", reviewer="ann") == second  # gone round: the skipped one
    skip(dataset, second, reviewer="ann")
    assert next_in_queue(test, "idc_caption", reviewer="ann") == second  # nothing else is left


def test_flagged_pairs_have_their_own_queue(labelled):
    dataset, ids = labelled
    flag(dataset, ids[4], "first flag", reviewer="ann")
    flag(dataset, ids[2], "second flag", reviewer="ann")
    test = dataset.match_tags("test")
    assert next_in_queue(test, None, reviewer="lead", queue="flagged") == ids[4]  # oldest flag first
    assert next_in_queue(test, None, reviewer="other", queue="flagged") == ids[2]  # the first is leased
    with pytest.raises(ValueError, match="queue must be one of"):
        next_in_queue(test, None, reviewer="lead", queue="nope")


def test_pairs_are_looked_up_by_index(labelled):
    dataset, ids = labelled
    accept(dataset, ids[0], "idc_caption", reviewer="ann")
    next_in_queue(dataset, "idc_caption", reviewer="ann")
    indexes = dataset.list_indexes()
    assert "pair_id" in indexes
    assert any(name.startswith(f"{REVIEW_FIELD}.status") for name in indexes)
    assert any("idc_caption_confidence" in name for name in indexes)
    plan = dataset._sample_collection.find({"pair_id": ids[0]}).explain()
    assert "IXSCAN" in str(plan["queryPlanner"]["winningPlan"])


def test_reviewed_pairs_carry_the_reviewers_caption(labelled):
    dataset, ids = labelled
    test = dataset.match_tags("test")
    first, second, third = ids[:3]
    accept(dataset, first, "idc_caption", reviewer="ann")
    edit(dataset, second, "a blue square was added", reviewer="ann")
    flag(dataset, third, "unsure", reviewer="ann")
    pairs = {p.id: p for p in reviewed_pairs(test)}
    assert set(pairs) == {first, second} and pairs[second].captions == ["a blue square was added"]
    kept = {p.id: p for p in reviewed_pairs(test, keep_references=True)}
    assert kept[second].captions[0] == "a blue square was added" and len(kept[second].captions) > 1
    sample_on_reference = dataset.select_group_slices(REFERENCE).match({"pair_id": second}).first()
    assert pair_of_sample(dataset, sample_on_reference.id) == second


def test_undo_on_a_blind_pair_does_not_reveal_another_reviewers_vote(labelled):
    from fiftyone_plugin.review_overlap import set_overlap

    dataset, ids = labelled
    set_overlap(dataset.match_tags("test"), share=1.0, reviewers=2)
    pair = ids[0]
    flag(dataset, pair, "the circle is cut off", reviewer="ann")  # Ann's blind review: hidden until 2 are in
    with pytest.raises(ValueError) as refused:
        undo(dataset, pair, reviewer="bob")  # Bob presses Undo before he has reviewed it
    message = str(refused.value)
    assert "ann" not in message and "flag" not in message, message
    with pytest.raises(ValueError) as refused:
        undo(dataset, pair, reviewer="lead", anyone=True)  # not even a lead undoes a vote through the record
    assert "ann" not in str(refused.value) and "flag" not in str(refused.value)
    record = review_record(dataset, pair)
    assert record["status"] == "unreviewed" and [v["reviewer"] for v in record["votes"]] == ["ann"]
    assert record["version"] == 0


def test_a_blind_review_is_never_settled_on_fewer_votes_than_reviewers(labelled, monkeypatch):
    import fiftyone_plugin.review as review
    from fiftyone_plugin.review_overlap import set_overlap

    dataset, ids = labelled
    set_overlap(dataset.match_tags("test"), share=1.0, reviewers=2)
    pair = ids[0]
    edit(dataset, pair, "a red circle was added", reviewer="ann")
    settle = review._settle

    def ann_undoes_between_bobs_vote_and_its_settle(*args, **kwargs):
        try:
            undo(dataset, pair, reviewer="ann")  # both votes are in: the decision is the two reviewers'
        except ValueError:
            pass
        return settle(*args, **kwargs)

    monkeypatch.setattr(review, "_settle", ann_undoes_between_bobs_vote_and_its_settle)
    flag(dataset, pair, "the images are the same", reviewer="bob")
    monkeypatch.setattr(review, "_settle", settle)
    record = review_record(dataset, pair)
    # Either both votes stand and the pair is settled on them, or Ann's vote is gone and it waits for a
    # second reviewer: never Bob's vote alone taken as the reviewers' agreement.
    if record["status"] == "unreviewed":
        assert [v["reviewer"] for v in record["votes"]] == ["bob"] and record["agreement"] is None
    else:
        assert sorted(record["agreement"]["reviewers"]) == ["ann", "bob"], record
        assert record["status"] == "disputed"


def test_two_blind_accepts_of_different_captions_are_not_an_agreement(labelled):
    from fiftyone_plugin.review_overlap import set_overlap

    dataset, ids = labelled
    pair = ids[0]
    write_pair_values(dataset, "idc_caption_v2", {pair: "a green triangle was removed"})
    set_overlap(dataset.match_tags("test"), share=1.0, reviewers=2)
    accept(dataset, pair, "idc_caption", f"caption of {pair}", reviewer="ann")
    record = accept(dataset, pair, "idc_caption_v2", "a green triangle was removed", reviewer="bob")
    # Bob never accepted Ann's caption: the pair must not be stored as accepted with it on both their words.
    assert not (record["status"] == "accepted" and record["caption"] == f"caption of {pair}"), record
    assert record["status"] == "disputed" and record["agreement"]["agree"] is False


def test_time_per_pair_counts_only_decisions_that_stand(labelled):
    from fiftyone_plugin.review import time_per_pair

    dataset, ids = labelled
    accept(dataset, ids[0], "idc_caption", reviewer="ann", seconds=2.0)
    undo(dataset, ids[0], reviewer="ann")  # a slip of the key: taken back
    edit(dataset, ids[0], "the red circle moved", reviewer="ann", seconds=10.0)
    flag(dataset, ids[1], "blurry", reviewer="ann", seconds=12.0)
    assert time_per_pair(dataset) == {"ann": {"decisions": 2, "median_s": 11.0}}


def test_acting_on_a_blind_pair_whose_votes_are_all_in_but_unsettled_says_so(labelled, monkeypatch):
    import fiftyone_plugin.review as review
    from fiftyone_plugin.review_overlap import set_overlap

    dataset, ids = labelled
    pair = ids[0]
    set_overlap(dataset.match_tags("test"), share=1.0, reviewers=2)
    accept(dataset, pair, "idc_caption", f"caption of {pair}", reviewer="ann")
    settle = review._settle
    monkeypatch.setattr(review, "_settle", lambda *args, **kwargs: None)  # Bob's process stops after his vote
    accept(dataset, pair, "idc_caption", f"caption of {pair}", reviewer="bob")
    monkeypatch.setattr(review, "_settle", settle)
    with pytest.raises(ReviewConflict) as refused:
        accept(dataset, pair, "idc_caption", f"caption of {pair}", reviewer="carl")
    assert "changed since you saw it (you saw" not in str(refused.value), str(refused.value)  # the caption did not
    assert "blind reviews are all in" in str(refused.value)
    assert refused.value.record["status"] == "accepted" and refused.value.record["agreement"]["agree"]
    assert [e["reviewer"] for e in history(dataset, pair)] == ["ann", "bob", "overlap"]


def _raw_modified(dataset, pair_id) -> str:
    """Everything stored on the pair's modified sample, as the App's sidebar and JSON view could show it."""
    from bson import json_util

    return json_util.dumps(dataset._sample_collection.find_one({"pair_id": pair_id, "group.name": MODIFIED}))


def _ballots(dataset) -> list[str]:
    from fiftyone.operators.store import ExecutionStore

    return [k for k in ExecutionStore.create("idc_review", dataset._doc.id).list_keys() if k.startswith("ballot:")]


def test_a_blind_decision_is_nowhere_on_the_sample_until_all_reviews_are_in(labelled):
    from fiftyone_plugin.review import time_per_pair
    from fiftyone_plugin.review_overlap import set_overlap

    dataset, ids = labelled
    set_overlap(dataset.match_tags("test"), share=1.0, reviewers=2)
    pair = ids[0]
    flag(dataset, pair, "the circle is cut off", reviewer="ann", seconds=4.0)
    stored = _raw_modified(dataset, pair)
    assert "cut off" not in stored and "flag" not in stored, stored  # Bob's App shows every field
    assert "cut off" not in str(dataset.select_group_slices(MODIFIED).match({"pair_id": pair}).first().to_dict())
    (vote,) = review_record(dataset, pair)["votes"]
    assert vote["reviewer"] == "ann" and vote["status"] is None and vote["flag_reason"] is None
    (own,) = review_record(dataset, pair, reviewer="ann")["votes"]  # Ann sees her own decision
    assert own["status"] == "flagged" and own["flag_reason"] == "the circle is cut off"
    assert review_record(dataset, pair, reviewer="bob")["votes"][0]["status"] is None
    assert len(_ballots(dataset)) == 1

    record = flag(dataset, pair, "the circle is cut off at the edge", reviewer="bob", seconds=6.0)
    assert record["status"] == "flagged" and record["agreement"]["agree"]
    assert [(v["reviewer"], v["status"]) for v in record["votes"]] == [("ann", "flagged"), ("bob", "flagged")]
    assert "cut off" in _raw_modified(dataset, pair)  # settled: now everybody's to see, in the votes
    assert _ballots(dataset) == []  # copied onto the votes, then dropped
    assert time_per_pair(dataset) == {
        "ann": {"decisions": 1, "median_s": 4.0},
        "bob": {"decisions": 1, "median_s": 6.0},
    }


def test_a_withdrawn_or_refused_blind_review_leaves_no_ballot(labelled):
    from fiftyone_plugin.review_overlap import set_overlap

    dataset, ids = labelled
    set_overlap(dataset.match_tags("test"), share=1.0, reviewers=2)
    pair = ids[0]
    edit(dataset, pair, "a red circle was added", reviewer="ann")
    with pytest.raises(ValueError, match="already reviewed"):
        edit(dataset, pair, "a blue circle was added", reviewer="ann")
    assert len(_ballots(dataset)) == 1
    undo(dataset, pair, reviewer="ann")
    assert _ballots(dataset) == [] and review_record(dataset, pair)["votes"] == []


def test_a_blind_vote_whose_ballot_is_lost_is_withdrawn_and_its_reviewer_asked_again(labelled):
    from fiftyone.operators.store import ExecutionStore

    from fiftyone_plugin.review_overlap import set_overlap

    dataset, ids = labelled
    set_overlap(dataset.match_tags("test"), share=1.0, reviewers=2)
    pair = ids[0]
    accept(dataset, pair, "idc_caption", reviewer="ann")
    store = ExecutionStore.create("idc_review", dataset._doc.id)
    for key in _ballots(dataset):
        store.delete(key)  # a copy of the samples made without the dataset's store
    record = accept(dataset, pair, "idc_caption", reviewer="bob")
    # Never settled on Bob's decision alone, nor on a ballot nobody can read: Ann reviews again.
    assert record["status"] == "unreviewed" and [v["reviewer"] for v in record["votes"]] == ["bob"]
    assert history(dataset, pair)[-1]["lost"] == "ann"
    record = accept(dataset, pair, "idc_caption", reviewer="ann")
    assert record["status"] == "accepted" and sorted(record["agreement"]["reviewers"]) == ["ann", "bob"]


def test_a_clone_of_the_dataset_keeps_its_pending_ballots(labelled):
    """docs/review.md: the ballots are "cloned and deleted with the dataset"; a clone made while a
    blind review waits must settle it on the decisions already given, not withdraw them."""
    from fiftyone_plugin.review_overlap import set_overlap

    dataset, ids = labelled
    set_overlap(dataset.match_tags("test"), share=1.0, reviewers=2)
    pair = ids[0]
    edit(dataset, pair, "a red circle was added", reviewer="ann")
    copy = dataset.clone()
    try:
        assert len(_ballots(copy)) == 1
        record = edit(copy, pair, "a red circle was added", reviewer="bob")
        assert record["status"] == "edited" and sorted(record["agreement"]["reviewers"]) == ["ann", "bob"]
        record = edit(dataset, pair, "a red circle was added", reviewer="bob")  # the original keeps its own
        assert record["status"] == "edited" and sorted(record["agreement"]["reviewers"]) == ["ann", "bob"]
    finally:
        copy.delete()


def _legacy_vote(dataset, pair_id, reviewer, caption, seconds):
    """A blind vote as the code before ballots stored it: the decision on the vote and its history entry."""
    from fiftyone_plugin.review import VOTES_FIELD, ensure_review_fields
    from fiftyone_plugin.review import _now as review_now

    ensure_review_fields(dataset)
    at = review_now()
    vote = {"_cls": "DynamicEmbeddedDocument", "reviewer": reviewer, "status": "edited", "caption": caption}
    vote.update(flag_reason=None, source_field=None, at=at)
    entry = {"_cls": "DynamicEmbeddedDocument", "action": "edit", "reviewer": reviewer, "at": at, "version": 0}
    entry.update(previous=None, seconds=seconds, blind=True, caption=caption, source_field=None)
    dataset._sample_collection.update_one(
        {"pair_id": pair_id, "group.name": MODIFIED}, {"$push": {VOTES_FIELD: vote, HISTORY_FIELD: entry}}
    )


def test_blind_votes_stored_before_ballots_still_settle_and_undo(labelled):
    from fiftyone_plugin.review import time_per_pair
    from fiftyone_plugin.review_overlap import set_overlap

    dataset, ids = labelled
    set_overlap(dataset.match_tags("test"), share=1.0, reviewers=2)
    first, second = ids[:2]
    _legacy_vote(dataset, first, "ann", "a red circle was added", 3.0)
    record = edit(dataset, first, "a red circle was added", reviewer="bob", seconds=5.0)
    assert record["status"] == "edited" and record["agreement"]["agree"], record
    assert [(v["reviewer"], v["caption"]) for v in record["votes"]] == [
        ("ann", "a red circle was added"),
        ("bob", "a red circle was added"),
    ]
    assert time_per_pair(dataset) == {
        "ann": {"decisions": 1, "median_s": 3.0},
        "bob": {"decisions": 1, "median_s": 5.0},
    }
    _legacy_vote(dataset, second, "ann", "a blue square", 2.0)
    assert undo(dataset, second, reviewer="ann")["votes"] == []
    assert edit(dataset, second, "a green star", reviewer="ann")["status"] == "unreviewed"
    assert edit(dataset, second, "a green star", reviewer="bob")["status"] == "edited"


def test_a_blind_vote_racing_the_lead_taking_the_pair_out_of_the_overlap_is_not_lost(labelled, monkeypatch):
    """Ann's blind edit is built while the pair is blind; the lead lowers the share before it is written.
    Her decision must stand (as the record of a pair no longer blind), not sit as a vote nobody settles."""
    import fiftyone_plugin.review as review
    from fiftyone_plugin.review_overlap import set_overlap

    dataset, ids = labelled
    set_overlap(dataset.match_tags("test"), share=1.0, reviewers=2)
    pair = ids[0]
    vote = review._vote

    def lead_lowers_the_share_meanwhile(*args):
        built = vote(*args)
        set_overlap(dataset.match_tags("test"), share=0.0, reviewers=2)
        return built

    monkeypatch.setattr(review, "_vote", lead_lowers_the_share_meanwhile)
    record = edit(dataset, pair, "a red circle was added", reviewer="ann")
    assert (record["overlap"], record["votes"]) == (0, []), record
    assert (record["status"], record["caption"], record["reviewer"]) == ("edited", "a red circle was added", "ann")
    assert _ballots(dataset) == []


class _Killed(BaseException):
    """The process stops here (a kill between two writes)."""


def test_a_blind_reviewer_killed_between_ballot_and_vote_votes_again_and_is_settled_on_the_new_decision(
    labelled, monkeypatch
):
    import fiftyone_plugin.review as review
    from fiftyone_plugin.review_overlap import set_overlap

    dataset, ids = labelled
    set_overlap(dataset.match_tags("test"), share=1.0, reviewers=2)
    pair = ids[0]
    monkeypatch.setattr(review, "_vote", lambda *args: (_ for _ in ()).throw(_Killed()))  # ballot written, no vote
    with pytest.raises(_Killed):
        flag(dataset, pair, "first thoughts", reviewer="ann")
    monkeypatch.undo()
    assert review_record(dataset, pair)["votes"] == [] and len(_ballots(dataset)) == 1
    edit(dataset, pair, "a red circle was added", reviewer="ann")  # ann tries again, and decides otherwise
    record = edit(dataset, pair, "a red circle was added", reviewer="bob")
    assert record["status"] == "edited" and record["agreement"]["agree"], record
    assert [(v["reviewer"], v["status"], v["flag_reason"]) for v in record["votes"]] == [
        ("ann", "edited", None),
        ("bob", "edited", None),
    ]


def test_settling_writes_each_blind_decision_into_the_history(labelled):
    """review.py: "Settling copies the ballots into the votes and the history": the audit trail says
    what each blind reviewer decided once all are in (their vote entries carry no decision)."""
    from fiftyone_plugin.review_overlap import set_overlap

    dataset, ids = labelled
    set_overlap(dataset.match_tags("test"), share=1.0, reviewers=2)
    pair = ids[0]
    edit(dataset, pair, "a red circle was added", reviewer="ann")
    flag(dataset, pair, "two things changed", reviewer="bob")
    settle = history(dataset, pair)[-1]
    assert settle["action"] == "settle" and settle["agree"] is False
    decided = [(v["reviewer"], v["status"], v.get("caption"), v.get("flag_reason")) for v in settle["votes"]]
    assert decided == [
        ("ann", "edited", "a red circle was added", None),
        ("bob", "flagged", None, "two things changed"),
    ]
    sample = dataset.select_group_slices(MODIFIED).match(F("pair_id") == pair).first()  # FiftyOne still loads it
    assert sample[HISTORY_FIELD][-1]["votes"][1]["flag_reason"] == "two things changed"
