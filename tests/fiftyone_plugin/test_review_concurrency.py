"""Several reviewers at once, as real processes on one database: no action that reported success is lost,
a conflicting one is refused with the reason, and a process stopped between two writes leaves nothing
that the next reader cannot finish."""

import multiprocessing
import os

import pytest

from fiftyone_plugin.dataset import MODIFIED, pairs_to_dataset, write_pair_values

EDITS = 40


def _edits(name, pair_id, reviewer, with_version, barrier, results):
    """One reviewer's process: 40 edits of one pair, all started together with the other reviewer's."""
    import fiftyone as fo

    from fiftyone_plugin.review import ReviewConflict, edit, review_record

    dataset = fo.load_dataset(name)
    review_record(dataset, pair_id)  # connect and warm up before the race starts
    barrier.wait()
    landed, refused = [], []
    for i in range(EDITS):
        caption = f"{reviewer} edit {i}"
        seen = review_record(dataset, pair_id)["version"] if with_version else None
        try:
            edit(dataset, pair_id, caption, reviewer=reviewer, expected_version=seen)
            landed.append(caption)
        except ReviewConflict as conflict:
            assert "changed since you saw it" in str(conflict) and conflict.record is not None
            refused.append(caption)
    results.put((reviewer, landed, refused))


@pytest.fixture
def shared_dataset(shapes_pairs):
    # Persistent: the reviewers' processes load it by name from the test session's database.
    dataset = pairs_to_dataset(shapes_pairs[:6], name=f"idc-review-race-{os.getpid()}", persistent=True, overwrite=True)
    write_pair_values(dataset, "idc_caption", {p.id: f"caption of {p.id}" for p in shapes_pairs[:6]})
    yield dataset
    dataset.delete()


def _race(dataset, pair_id, with_version):
    context = multiprocessing.get_context("spawn")  # fresh interpreters, as two reviewers' processes are
    barrier, results = context.Barrier(2), context.Queue()
    workers = [
        context.Process(target=_edits, args=(dataset.name, pair_id, name, with_version, barrier, results))
        for name in ("ann", "bob")
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=300) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    return outcomes


def _history(dataset, pair_id):
    from fiftyone_plugin.review import HISTORY_FIELD

    dataset.reload()  # the reviewers' processes declared the review fields
    view = dataset.select_group_slices(MODIFIED).match({"pair_id": pair_id})
    return view.values(HISTORY_FIELD, _raw=True)[0]


@pytest.mark.distributed
def test_two_processes_editing_one_pair_lose_no_action(shared_dataset):
    from fiftyone_plugin.review import review_record

    pair_id = shared_dataset.select_group_slices(MODIFIED).first().pair_id
    outcomes = _race(shared_dataset, pair_id, with_version=False)
    landed = [caption for _, ok, _ in outcomes for caption in ok]
    assert len(landed) == 2 * EDITS and not any(refused for _, _, refused in outcomes)
    history = _history(shared_dataset, pair_id)
    assert sorted(e["caption"] for e in history) == sorted(landed)
    assert review_record(shared_dataset, pair_id)["version"] == 2 * EDITS
    # Each entry's "previous" is the record the one before it wrote: no action was applied over a stale one.
    for before, after in zip(history, history[1:]):
        assert after["previous"]["caption"] == before["caption"]


@pytest.mark.distributed
def test_reviewers_acting_on_what_they_saw_get_a_clear_refusal_and_every_success_lands(shared_dataset):
    from fiftyone_plugin.review import review_record

    pair_id = shared_dataset.select_group_slices(MODIFIED).first().pair_id
    outcomes = _race(shared_dataset, pair_id, with_version=True)
    landed = [caption for _, ok, _ in outcomes for caption in ok]
    refused = [caption for _, _, no in outcomes for caption in no]
    assert len(landed) + len(refused) == 2 * EDITS
    history = _history(shared_dataset, pair_id)
    assert sorted(e["caption"] for e in history) == sorted(landed)  # every success, and only those
    assert review_record(shared_dataset, pair_id)["version"] == len(landed)


def _vote_then_die(name, pair_id):
    """A reviewer's process that stops between its blind vote (stored) and the settling write."""
    import fiftyone as fo

    import fiftyone_plugin.review as review

    review._settle = lambda *args, **kwargs: os._exit(17)
    review.edit(fo.load_dataset(name), pair_id, "a red circle was added", reviewer="bob")


@pytest.mark.distributed
def test_blind_reviews_are_settled_even_when_the_last_voter_dies_between_two_writes(shared_dataset):
    from fiftyone_plugin.review import edit, review_record
    from fiftyone_plugin.review_overlap import agreement_report, set_overlap

    set_overlap(shared_dataset, share=1.0, reviewers=2)
    pair_id = shared_dataset.select_group_slices(MODIFIED).first().pair_id
    pending = edit(shared_dataset, pair_id, "the red circle was added", reviewer="ann")
    assert pending["status"] == "unreviewed" and [v["reviewer"] for v in pending["votes"]] == ["ann"]
    worker = multiprocessing.get_context("spawn").Process(target=_vote_then_die, args=(shared_dataset.name, pair_id))
    worker.start()
    worker.join(timeout=300)
    assert worker.exitcode == 17  # stopped after the vote's write, before the settle's
    settled = review_record(shared_dataset, pair_id)  # the next reader finishes it
    assert settled["status"] == "edited" and settled["agreement"]["agree"]
    assert settled["caption"] == "the red circle was added"
    assert agreement_report(shared_dataset)["settled"] == 1


def _work_the_queue(name, reviewer, barrier, results):
    """One reviewer's process: Next in queue, flag the pair, Next ... until the queue is empty."""
    import fiftyone as fo

    from fiftyone_plugin.review import ensure_review_fields, flag
    from fiftyone_plugin.review_queue import next_in_queue, queue_count

    dataset = fo.load_dataset(name)
    ensure_review_fields(dataset)  # connect, declare and index before the race starts
    queue_count(dataset, "idc_caption")
    barrier.wait()
    got, previous = [], None
    while (pair := next_in_queue(dataset, "idc_caption", after_pair=previous, reviewer=reviewer)) is not None:
        got.append(pair)
        flag(dataset, pair, f"seen by {reviewer}", reviewer=reviewer)
        previous = pair
    results.put((reviewer, got))


@pytest.mark.distributed
def test_two_processes_working_one_queue_never_get_the_same_pair(shapes_pairs):
    from fiftyone_plugin.review import HISTORY_FIELD

    pairs = shapes_pairs[:30]
    dataset = pairs_to_dataset(pairs, name=f"idc-review-queue-{os.getpid()}", persistent=True, overwrite=True)
    try:
        write_pair_values(dataset, "idc_caption", {p.id: f"caption of {p.id}" for p in pairs})
        context = multiprocessing.get_context("spawn")
        barrier, results = context.Barrier(2), context.Queue()
        workers = [
            context.Process(target=_work_the_queue, args=(dataset.name, name, barrier, results))
            for name in ("ann", "bob")
        ]
        for worker in workers:
            worker.start()
        got = dict(results.get(timeout=300) for _ in workers)
        for worker in workers:
            worker.join(timeout=60)
            assert worker.exitcode == 0
        assert not set(got["ann"]) & set(got["bob"]) and got["ann"] and got["bob"]
        # Every pair was given out, each once, and reviewed once.
        dataset.reload()
        histories = dataset.select_group_slices(MODIFIED).values(HISTORY_FIELD, _raw=True)
        assert all(len(h or []) == 1 for h in histories)
        assert sorted(got["ann"] + got["bob"]) == sorted(p.id for p in pairs)
    finally:
        dataset.delete()


def _edit_and_undo(name, pair_id, reviewer, undoes, barrier, results):
    """One reviewer's process: edit the pair, and (if ``undoes``) take it back, 20 times."""
    import fiftyone as fo

    from fiftyone_plugin.review import ReviewConflict, edit, review_record, undo

    dataset = fo.load_dataset(name)
    review_record(dataset, pair_id)
    barrier.wait()
    done = {"edits": [], "undos": 0, "refused": 0}
    for i in range(20):
        caption = f"{reviewer} edit {i}"
        edit(dataset, pair_id, caption, reviewer=reviewer)
        done["edits"].append(caption)
        if undoes:
            try:
                undo(dataset, pair_id, reviewer=reviewer)
                done["undos"] += 1
            except (ValueError, ReviewConflict) as refused:
                assert "only they can undo it" in str(refused) or "changed since" in str(refused), str(refused)
                done["refused"] += 1
    results.put((reviewer, done))


@pytest.mark.distributed
def test_undo_racing_another_reviewers_edits_only_ever_undoes_the_undoers_own_action(shared_dataset):
    pair_id = shared_dataset.select_group_slices(MODIFIED).first().pair_id
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    workers = [
        context.Process(
            target=_edit_and_undo, args=(shared_dataset.name, pair_id, name, name == "ann", barrier, results)
        )
        for name in ("ann", "bob")
    ]
    for worker in workers:
        worker.start()
    done = dict(results.get(timeout=300) for _ in workers)
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    history = _history(shared_dataset, pair_id)
    edits = [e for e in history if e["action"] == "edit"]
    assert sorted(e["caption"] for e in edits) == sorted(done["ann"]["edits"] + done["bob"]["edits"])
    undos = [e for e in history if e["action"] == "undo"]
    assert len(undos) == done["ann"]["undos"]
    for entry in undos:  # each undo took back one of Ann's own edits, never one of Bob's
        assert entry["reviewer"] == "ann" and history[entry["undoes"]]["reviewer"] == "ann"


def _blind_churn(name, pair_ids, reviewer, churn, barrier, results):
    """One blind reviewer's process: edits each pair (own words), and with ``churn`` takes it back and
    edits again; refusals (already reviewed, all in, nothing to undo) are expected under the race."""
    import fiftyone as fo

    from fiftyone_plugin.review import edit, review_record, undo

    dataset = fo.load_dataset(name)
    review_record(dataset, pair_ids[0])
    barrier.wait()
    refused = 0
    for round_ in range(churn or 1):
        for pair_id in pair_ids:
            for act in ("edit", "undo", "edit") if churn else ("edit",):
                try:
                    if act == "edit":
                        edit(dataset, pair_id, f"{reviewer} says {pair_id} round {round_}", reviewer=reviewer)
                    else:
                        undo(dataset, pair_id, reviewer=reviewer)
                except ValueError:
                    refused += 1
    results.put((reviewer, refused))


def _blind_race(dataset, pair_ids, reviewers, churn):
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(len(reviewers)), context.Queue()
    workers = [
        context.Process(target=_blind_churn, args=(dataset.name, pair_ids, name, churn, barrier, results))
        for name in reviewers
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=300) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    return outcomes


def _ballot_keys(dataset):
    from fiftyone.operators.store import ExecutionStore

    return {k for k in ExecutionStore.create("idc_review", dataset._doc.id).list_keys() if k.startswith("ballot:")}


@pytest.mark.distributed
def test_blind_reviewers_racing_to_settle_each_get_their_own_ballot_and_leave_none(shared_dataset):
    from fiftyone_plugin.review import review_record
    from fiftyone_plugin.review_overlap import set_overlap

    set_overlap(shared_dataset, share=1.0, reviewers=2)
    pair_ids = shared_dataset.select_group_slices(MODIFIED).values("pair_id")
    _blind_race(shared_dataset, pair_ids, ["ann", "bob", "carl"], churn=0)
    for pair_id in pair_ids:
        record = review_record(shared_dataset, pair_id)
        assert record["status"] in ("edited", "disputed"), record
        assert len(record["votes"]) == 2 and record["agreement"]["reviewers"] == [
            v["reviewer"] for v in record["votes"]
        ]
        for vote in record["votes"]:  # each vote settled on its own reviewer's words, for this pair
            assert vote["caption"] == f"{vote['reviewer']} says {pair_id} round 0", record
        live_votes = [e for e in _history(shared_dataset, pair_id) if e["action"] == "vote"]
        assert sorted(e["reviewer"] for e in live_votes) == sorted(v["reviewer"] for v in record["votes"])
    assert _ballot_keys(shared_dataset) == set()  # settled ballots dropped, refused ones never kept


@pytest.mark.distributed
def test_one_reviewer_undoing_and_voting_again_from_two_processes_keeps_exactly_the_named_ballot(shared_dataset):
    from fiftyone_plugin.review import review_record
    from fiftyone_plugin.review_overlap import set_overlap

    set_overlap(shared_dataset, share=1.0, reviewers=3)  # ann alone never settles a pair
    pair_ids = shared_dataset.select_group_slices(MODIFIED).values("pair_id")[:2]
    _blind_race(shared_dataset, pair_ids, ["ann", "ann"], churn=6)
    named = set()
    for pair_id in pair_ids:
        record = review_record(shared_dataset, pair_id, reviewer="ann")
        assert record["status"] == "unreviewed" and len(record["votes"]) <= 1
        for vote in record["votes"]:
            assert vote["reviewer"] == "ann" and vote["caption"].startswith(f"ann says {pair_id} round "), record
            named.add(f"ballot:{pair_id}:{vote['ballot']}")
    assert _ballot_keys(shared_dataset) == named  # none lost, none left over
