"""Shards of a captioning job shared by several `fiftyone delegated launch` workers (fiftyone_plugin.shards).

The first tests run the shards in this process against the test session's database (queueing, reaping,
a Ctrl+C'd worker, a `fiftyone delegated rerun` copy, transient errors); the last two start a mongod
and two real workers and ``kill -9`` one of them mid-shard. test_faults.py kills workers at every write
boundary and overlaps two attempts of one shard.
"""

from __future__ import annotations

import math
import re
import signal
import time
from datetime import datetime

import fiftyone.operators as foo
import pytest

from fiftyone_plugin.dataset import MODIFIED, PAIR_ID, REFERENCE
from fiftyone_plugin.shards import ShardConfig, job_field, ledger, queue_shards, reap, run_shard, split_pairs

from .conftest import database, wait_until

pytestmark = pytest.mark.distributed

PLUGIN = "@idc/idc"


class _Killed(BaseException):
    """Stands for kill -9 in this process: nothing of the shard's own cleanup runs."""


def _service():
    import fiftyone.operators.delegated as food

    return food.DelegatedOperationService()


def _written(dataset, pair_ids, field="idc_caption"):
    """pair id -> (captions on both slices, job marks on both slices)."""
    both = dataset.select_group_slices([REFERENCE, MODIFIED]).match({PAIR_ID: {"$in": list(pair_ids)}})
    found = {}
    for pid, caption, mark in zip(*both.values([PAIR_ID, field, job_field(field)])):
        captions, marks = found.setdefault(pid, ([], []))
        captions.append(caption)
        marks.append(mark)
    return found


def test_split_pairs_covers_every_pair_once_in_even_slices():
    slices = split_pairs([f"p{i:02d}" for i in range(10)] + ["p03"], 4)
    assert [len(s) for s in slices] == [3, 3, 2, 2]
    assert sorted(p for s in slices for p in s) == [f"p{i:02d}" for i in range(10)]
    assert split_pairs(["a", "b"], 5) == [["a"], ["b"]]
    with pytest.raises(ValueError, match="chunk_size must be a positive integer, got 0"):
        ShardConfig(chunk_size=0)
    with pytest.raises(ValueError, match="stale_after must be positive"):
        ShardConfig(stale_after=0)


@pytest.mark.parametrize(
    "field, value",
    [("stall_after", math.inf), ("stall_after", 1e20), ("stale_after", math.nan), ("chunk_delay_s", math.inf)],
)
def test_a_time_setting_out_of_the_databases_range_is_refused(field, value):
    """Accepted, ``stall_after=inf`` ("never take a stuck shard") made every reap of the database fail
    (MongoDB: "Can't coerce out of range value inf to long"), and every worker reaps as a shard starts."""
    with pytest.raises(ValueError, match=f"{field} must be .* seconds, got {re.escape(repr(value))}"):
        ShardConfig(**{field: value})
    with pytest.raises(ValueError, match="stale_after must be .* seconds, got inf"):
        reap(stale_after=math.inf)


def test_queued_shards_run_once_each_and_write_every_pair_once(idc_dataset, tiny_dir):
    idc_dataset.persistent = True
    test = idc_dataset.match_tags("test")
    queued = foo.execute_operator(
        f"{PLUGIN}/caption_idc_shards",
        ctx=dict(
            view=test,
            params={
                "model": str(tiny_dir),
                "label_field": "idc_caption",
                "shards": 3,
                "chunk_size": 4,
                "batch_size": 4,
            },
        ),
    ).result
    assert queued["shards"] == 3 and queued["pairs"] == 24 and len(queued["operations"]) == 3
    service = _service()
    service.execute_queued_operations(dataset_name=idc_dataset.name)
    for op_id in queued["operations"]:
        done = service.get(_oid(op_id))
        assert done.run_state == "completed", done.result.error if done.result else None
        assert done.result.result["status"] == "completed"

    pair_ids = test.select_group_slices(MODIFIED).values(PAIR_ID)
    written = _written(idc_dataset, pair_ids)
    assert set(written) == set(pair_ids)
    for captions, marks in written.values():
        assert len(captions) == 2 and all(isinstance(c, str) for c in captions)
        assert marks == [queued["job"]] * 2
    assert set(idc_dataset.match_tags("train").select_group_slices(MODIFIED).values("idc_caption")) == {None}
    shards = list(ledger().find({"job": queued["job"]}))
    assert sum(s["written"] for s in shards) == 2 * 24 and sum(s["done"] for s in shards) == 24
    assert all(len(s["attempts"]) == 1 and s["state"] == "completed" for s in shards)


def _oid(value):
    from bson import ObjectId

    return ObjectId(value)


def test_a_dead_attempt_is_reaped_once_and_the_next_does_only_what_is_left(idc_dataset, tiny_dir):
    from fiftyone.operators.executor import ExecutionRunState

    idc_dataset.persistent = True
    test = idc_dataset.match_tags("test")
    config = ShardConfig(shards=2, chunk_size=3)
    queued = queue_shards(test, "caption", {"model": str(tiny_dir), "label_field": "idc_caption"}, config)
    job, op_id = queued["job"], _oid(queued["operations"][0])
    service = _service()

    # An attempt dies after its first chunk: its operation stays RUNNING, the ledger says running.
    assert service.set_running(op_id, required_state=ExecutionRunState.QUEUED) is not None

    def die_after_first_chunk(fraction, label):
        raise _Killed(label)

    with pytest.raises(_Killed):
        run_shard(idc_dataset, job, 0, operation_id=op_id, progress=die_after_first_chunk)
    shard = ledger().find_one({"_id": f"{job}/0"})
    assert shard["state"] == "running" and shard["done"] == 3 and shard["owner"] is not None

    # A second copy (`fiftyone delegated rerun`) while the holder's heartbeat is fresh does nothing.
    held = run_shard(idc_dataset, job, 0)
    assert held["status"] == "held" and held["pairs"] == 0

    assert reap(job=job) == []  # fresh heartbeat: not stale under the job's own 300 s
    ledger().update_one({"_id": f"{job}/0"}, {"$set": {"heartbeat": datetime(2000, 1, 1)}})
    actions = reap(job=job)
    assert [(a["shard"], a["action"]) for a in actions] == [(f"{job}/0", "requeued")]
    assert reap(stale_after=0.001, job=job) == []  # a second reaper finds nothing left to take
    # A new operation runs the shard; the dead one is closed, saying what replaced it.
    replacement = _oid(actions[0]["operation"])
    dead = service.get(op_id)
    assert dead.run_state == ExecutionRunState.FAILED and str(replacement) in dead.result.error
    assert service.get(replacement).run_state == ExecutionRunState.QUEUED

    service.execute_queued_operations(dataset_name=idc_dataset.name)
    assert service.get(replacement).run_state == ExecutionRunState.COMPLETED
    shard = ledger().find_one({"_id": f"{job}/0"})
    assert shard["state"] == "completed" and shard["requeued"] == 1
    assert shard["operations"] == [op_id, replacement] and shard["operation_id"] == replacement
    assert [a["pairs"] for a in shard["attempts"]] == [3, len(shard["pair_ids"]) - 3]
    shards = list(ledger().find({"job": job}))
    assert sum(s["written"] for s in shards) == 2 * 24
    assert all(marks == [job] * 2 for _, marks in _written(idc_dataset, test.values(PAIR_ID)).values())


def test_a_stopping_worker_hands_its_shard_back_at_once(idc_dataset, tiny_dir, monkeypatch):
    """Ctrl+C in `fiftyone delegated launch`: the shard's thread sees the interpreter shutting down
    after a chunk; called directly (main thread), it gets KeyboardInterrupt. Either way the shard and
    its operation go back to the queue at once."""
    from fiftyone.operators.executor import ExecutionRunState

    import fiftyone_plugin.shards.worker as worker

    idc_dataset.persistent = True
    queued = queue_shards(
        idc_dataset.match_tags("test"),
        "caption",
        {"model": str(tiny_dir), "label_field": "idc_caption"},
        ShardConfig(shards=2, chunk_size=4),
    )
    job = queued["job"]
    service = _service()
    stopping = []
    monkeypatch.setattr(worker, "_worker_stopping", lambda: bool(stopping))

    def stop(fraction, label):
        stopping.append(label)

    def interrupt(fraction, label):
        raise KeyboardInterrupt

    for index, progress in ((0, stop), (1, interrupt)):
        stopping.clear()
        op_id = _oid(queued["operations"][index])
        service.set_running(op_id, required_state=ExecutionRunState.QUEUED)
        if progress is stop:
            result = run_shard(idc_dataset, job, index, operation_id=op_id, progress=progress)
            assert result["status"] == "handed back" and result["pairs"] == 4
        else:
            with pytest.raises(KeyboardInterrupt):
                run_shard(idc_dataset, job, index, operation_id=op_id, progress=progress)
        shard = ledger().find_one({"_id": f"{job}/{index}"})
        assert shard["state"] == "queued" and shard["owner"] is None and shard["done"] == 4
        assert service.get(op_id).run_state == ExecutionRunState.QUEUED


def test_an_operation_left_running_after_its_shard_finished_is_closed(idc_dataset, tiny_dir):
    """One Ctrl+C lets the worker finish its shard and exit, and FiftyOne leaves the operation RUNNING."""
    from fiftyone.operators.executor import ExecutionRunState

    idc_dataset.persistent = True
    queued = queue_shards(
        idc_dataset.match_tags("test").limit(2),
        "caption",
        {"model": str(tiny_dir), "label_field": "idc_caption"},
        ShardConfig(shards=1),
    )
    job, op_id = queued["job"], _oid(queued["operations"][0])
    service = _service()
    service.set_running(op_id, required_state=ExecutionRunState.QUEUED)
    assert run_shard(idc_dataset, job, 0, operation_id=op_id)["status"] == "completed"
    assert reap(job=job) == []  # finished a moment ago: FiftyOne may still be marking it
    ledger().update_one({"_id": f"{job}/0"}, {"$set": {"heartbeat": datetime(2000, 1, 1)}})
    assert reap(job=job) == [{"shard": f"{job}/0", "action": "closed", "operation": str(op_id)}]
    assert service.get(op_id).run_state == ExecutionRunState.COMPLETED
    assert reap(job=job) == []


def test_heatmap_shards_write_maps_and_marks(idc_dataset, tiny_dir):
    idc_dataset.persistent = True
    test = idc_dataset.match_tags("test").limit(6)
    queued = foo.execute_operator(
        f"{PLUGIN}/compute_idc_heatmaps_shards",
        ctx=dict(view=test, params={"model": str(tiny_dir), "shards": 2, "chunk_size": 2, "caption_field": None}),
    ).result
    _service().execute_queued_operations(dataset_name=idc_dataset.name)
    pair_ids = test.select_group_slices(MODIFIED).values(PAIR_ID)
    both = idc_dataset.select_group_slices([REFERENCE, MODIFIED]).match({PAIR_ID: {"$in": pair_ids}})
    maps, marks = both.values(["idc_attention", job_field("idc_attention")])
    assert len(maps) == 12 and all(m is not None for m in maps) and set(marks) == {queued["job"]}


def test_augment_shards_add_each_variant_once_the_same_as_one_run(idc_dataset, tmp_path):
    from fiftyone import ViewField as F

    from fiftyone_plugin.dataset import dataset_to_pairs
    from fiftyone_plugin.syned import SOURCE_FIELD
    from idc_engine.data.manifest import read_manifest
    from idc_engine.synth.augment import SYNTHETIC, SynedConfig, augment

    idc_dataset.persistent = True
    sources = idc_dataset.match_tags("train").select_group_slices(MODIFIED).limit(6).values(PAIR_ID)
    view = idc_dataset.match(F(PAIR_ID).is_in(sources))
    with pytest.raises(ValueError, match="out_dir must be a folder every worker can reach, got ''"):
        queue_shards(view, "augment", {"out_dir": ""})
    with pytest.raises(ValueError, match="variations must be a positive integer, got 0"):
        queue_shards(view, "augment", {"out_dir": str(tmp_path), "config": {"variations": 0}})

    params = {"out_dir": str(tmp_path / "shards"), "variations": 2, "seed": 4, "shards": 2, "chunk_size": 2}
    queued = foo.execute_operator(f"{PLUGIN}/augment_syned_shards", ctx=dict(view=view, params=params)).result
    assert queued["shards"] == 2 and queued["pairs"] == 6
    _service().execute_queued_operations(dataset_name=idc_dataset.name)
    shards = sorted(ledger().find({"job": queued["job"]}), key=lambda s: s["shard"])
    assert [s["state"] for s in shards] == ["completed"] * 2
    marker = job_field("syned")
    assert view.select_group_slices([REFERENCE, MODIFIED]).values(marker) == [queued["job"]] * 12

    def variants():
        found = idc_dataset.match_tags("synthetic").select_group_slices(MODIFIED)
        ids, paths = found.values([PAIR_ID, "filepath"])
        assert len(ids) == len(set(ids)), "a variant was added twice"
        return dict(zip(ids, paths)), set(found.values(SOURCE_FIELD))

    added, their_sources = variants()
    assert 10 <= len(added) <= 12 and their_sources <= set(sources)  # the quality filter may reject a few

    # The shards made exactly what one engine run over the same pairs makes, byte for byte.
    augment(dataset_to_pairs(view), tmp_path / "one", SynedConfig(variations=2, seed=4))
    expected = {p.id: p for p in read_manifest(tmp_path / "one" / SYNTHETIC)}
    assert set(added) == set(expected)
    assert all(open(path, "rb").read() == open(expected[pid].modified, "rb").read() for pid, path in added.items())

    # A worker that died after adding its chunk's variants but before marking the sources: the shard
    # runs again, finds the variants on disk and in the dataset, and adds none twice.
    first = shards[0]
    idc_dataset._sample_collection.update_many({PAIR_ID: {"$in": first["pair_ids"]}}, {"$unset": {marker: ""}})
    ledger().update_one({"_id": first["_id"]}, {"$set": {"state": "queued", "owner": None}})
    again = run_shard(idc_dataset, queued["job"], 0)
    assert again["status"] == "completed" and again["pairs"] == len(first["pair_ids"])
    assert variants()[0] == added


# --- real workers ---------------------------------------------------------------------------------


def _queue(cluster, shapes_dir, tiny_dir, count, params):
    """Make the dataset and wait for the workers; returns a function that queues and returns the result."""
    params = {"model": str(tiny_dir), "label_field": "idc_caption", **params}
    return cluster.queue(shapes_dir / "manifest.jsonl", count, "caption_idc_shards", params)


def _all_completed(db, job):
    """Every shard of ``job`` completed, and the operation that ran it last too."""

    def check():
        shards = list(db.idc_shards.find({"job": job}))
        if not shards or any(s["state"] != "completed" for s in shards):
            return False
        return all(db.delegated_ops.find_one({"_id": s["operation_id"]})["run_state"] == "completed" for s in shards)

    return check


def _check_every_pair_written_once(db, dataset_name, job, pairs):
    collection = db.datasets.find_one({"name": dataset_name})["sample_collection_name"]
    samples = list(db[collection].find({}, {PAIR_ID: 1, "idc_caption": 1, "idc_caption_job": 1}))
    assert len(samples) == 2 * pairs and len({s[PAIR_ID] for s in samples}) == pairs
    assert all(isinstance(s.get("idc_caption"), str) and s.get("idc_caption_job") == job for s in samples)
    shards = list(db.idc_shards.find({"job": job}))
    # A conditional update writes a sample only where the job's mark is absent: 2 samples per pair.
    assert sum(s["written"] for s in shards) == 2 * pairs and sum(s["done"] for s in shards) == pairs
    return shards


def test_two_workers_share_the_shards_and_each_runs_once(cluster, shapes_dir, tiny_dir):
    pairs = 16
    go = _queue(cluster, shapes_dir, tiny_dir, pairs, {"shards": 4, "chunk_size": 2, "chunk_delay_s": 0.5})
    workers = [cluster.start_worker(), cluster.start_worker()]
    cluster.wait_ready(workers)
    started = time.monotonic()
    dataset_name, queued = go()
    with database(cluster) as db:
        wait_until(_all_completed(db, queued["job"]), 150, cluster, "every shard to complete")
        elapsed = time.monotonic() - started
        shards = _check_every_pair_written_once(db, dataset_name, queued["job"], pairs)
        assert all(len(s["attempts"]) == 1 for s in shards)  # each shard ran exactly once
        ran_on = {s["attempts"][0]["worker"].rsplit(":", 1)[1] for s in shards}
        assert ran_on == {str(w.pid) for w in workers}, ran_on  # both workers took part
        assert db.delegated_ops.count_documents({"operator": f"{PLUGIN}/run_idc_shard"}) == 4
    print(f"4 shards of {pairs} pairs on two workers: {elapsed:.1f} s after queueing")


def test_a_worker_killed_mid_shard_loses_nothing(cluster, shapes_dir, tiny_dir):
    pairs = 16
    go = _queue(
        cluster,
        shapes_dir,
        tiny_dir,
        pairs,
        {"shards": 4, "chunk_size": 1, "chunk_delay_s": 1.0, "stale_after": 8.0},
    )
    workers = [cluster.start_worker(), cluster.start_worker()]
    cluster.wait_ready(workers)
    started = time.monotonic()
    dataset_name, queued = go()
    by_pid = {str(w.pid): w for w in workers}
    with database(cluster) as db:

        def running_shard_with_work_done_and_left():
            # A chunk recorded under 0.4 s ago: its worker is in the 1 s pause after it, so the kill lands
            # neither mid-write nor between a chunk's write and its record (test_faults.py kills there).
            fresh = {"$lt": [{"$subtract": ["$$NOW", "$progress_at"]}, 400]}
            for shard in db.idc_shards.find({"job": queued["job"], "state": "running", "$expr": fresh}):
                if 1 <= shard["done"] <= len(shard["pair_ids"]) - 2:
                    return shard
            return None

        victim_shard = wait_until(running_shard_with_work_done_and_left, 150, cluster, "a shard half done", 0.1)
        owner = next(a for a in victim_shard["attempts"] if a["token"] == victim_shard["owner"])
        victim = by_pid[owner["worker"].rsplit(":", 1)[1]]
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        killed_at = time.monotonic()
        done_when_killed = db.idc_shards.find_one({"_id": victim_shard["_id"]})["done"]
        assert db.delegated_ops.find_one({"_id": victim_shard["operation_id"]})["run_state"] == "running"

        # What a cluster runs beside its workers; the survivor also reaps when a shard starts or ends.
        cluster.start_reaper(every=2)
        wait_until(_all_completed(db, queued["job"]), 150, cluster, "every shard to complete")
        elapsed = time.monotonic() - started
        shards = _check_every_pair_written_once(db, dataset_name, queued["job"], pairs)
        resumed = next(s for s in shards if s["_id"] == victim_shard["_id"])
        assert resumed["requeued"] == 1 and len(resumed["attempts"]) == 2
        first, second = resumed["attempts"]
        assert first["pairs"] == done_when_killed >= 1  # nothing the dead worker finished was redone
        assert first["pairs"] + second["pairs"] == len(resumed["pair_ids"])
        survivor = next(w for w in workers if w is not victim)
        assert second["worker"].endswith(f":{survivor.pid}")
        # Re-queued as one new operation; the killed worker's operation is closed, not left RUNNING.
        assert db.delegated_ops.count_documents({"operator": f"{PLUGIN}/run_idc_shard"}) == 5, cluster.state()
        killed_operation = db.delegated_ops.find_one({"_id": victim_shard["operation_id"]})
        assert (
            killed_operation["run_state"] == "failed"
            and "re-queued as operation" in killed_operation["result"]["error"]
        )
        assert resumed["operation_id"] != victim_shard["operation_id"]
    print(
        f"kill -9 mid-shard: all {pairs} pairs captioned once, {elapsed:.1f} s after queueing, "
        f"{time.monotonic() - killed_at:.1f} s after the kill; reaper log: "
        f"{(cluster.logs / 'reaper.log').read_text().strip()!r}"
    )


def test_a_rerun_copy_closes_the_operation_it_replaced(idc_dataset, tiny_dir):
    """`fiftyone delegated rerun` of a dead worker's operation: the copy takes the shard over once the
    heartbeat is stale and closes the original, which FiftyOne would leave RUNNING forever."""
    from fiftyone.operators.executor import ExecutionRunState

    idc_dataset.persistent = True
    config = ShardConfig(shards=1, chunk_size=3)
    queued = queue_shards(
        idc_dataset.match_tags("test").limit(6), "caption", {"model": str(tiny_dir), "label_field": "c"}, config
    )
    job, original = queued["job"], _oid(queued["operations"][0])
    service = _service()
    service.set_running(original, required_state=ExecutionRunState.QUEUED)

    def die_after_first_chunk(fraction, label):
        raise _Killed(label)

    with pytest.raises(_Killed):
        run_shard(idc_dataset, job, 0, operation_id=original, progress=die_after_first_chunk)
    copy = service.rerun_operation(original).id  # what `fiftyone delegated rerun ID` does
    service.execute_queued_operations(dataset_name=idc_dataset.name)
    assert service.get(copy).result.result["status"] == "held"  # the heartbeat is fresh: it might live
    assert service.get(original).run_state == ExecutionRunState.RUNNING

    ledger().update_one({"_id": f"{job}/0"}, {"$set": {"heartbeat": datetime(2000, 1, 1)}})
    second = service.rerun_operation(original).id
    service.execute_queued_operations(dataset_name=idc_dataset.name)
    assert service.get(second).run_state == ExecutionRunState.COMPLETED
    assert service.get(second).result.result["status"] == "completed"
    closed = service.get(original)
    assert closed.run_state == ExecutionRunState.FAILED and f"taken over by operation {second}" in closed.result.error
    shard = ledger().find_one({"_id": f"{job}/0"})
    assert shard["state"] == "completed" and [a["pairs"] for a in shard["attempts"]] == [3, 3]
    assert reap(job=job) == []  # nothing left for the reaper


def test_transient_errors_are_retried_before_a_shard_fails(idc_dataset, tiny_dir, monkeypatch):
    """The database or shared storage away for a moment: the chunk is tried again (here: captioning
    raises the driver's AutoReconnect twice); a fault that outlasts the retries fails the shard."""
    from pymongo.errors import AutoReconnect

    import idc_engine.inference.caption as caption

    idc_dataset.persistent = True
    real, failures = caption.caption_idc_pairs, []

    def flaky(*args, **kwargs):
        if len(failures) < limit:
            failures.append(1)
            raise AutoReconnect("connection reset")
        return real(*args, **kwargs)

    monkeypatch.setattr(caption, "caption_idc_pairs", flaky)
    view = idc_dataset.match_tags("test").limit(4)
    for limit, expected in ((2, "completed"), (10, "failed")):
        failures.clear()
        config = ShardConfig(shards=1, chunk_size=2, retries=3, retry_backoff_s=0.01)
        queued = queue_shards(view, "caption", {"model": str(tiny_dir), "label_field": f"c{limit}"}, config)
        if expected == "completed":
            assert run_shard(idc_dataset, queued["job"], 0)["status"] == "completed"
        else:
            with pytest.raises(AutoReconnect):
                run_shard(idc_dataset, queued["job"], 0)
        shard = ledger().find_one({"job": queued["job"]})
        assert shard["state"] == expected and shard.get("retried") == min(limit, 3), shard
        assert len(failures) == min(limit, 4)  # 1 try and 3 retries at most
    assert "AutoReconnect: connection reset" in shard["error"]


def test_an_attempt_that_finds_its_shard_taken_over_closes_its_own_operation(idc_dataset, tiny_dir, monkeypatch):
    """A reaper re-queues the shard while its worker writes a chunk, and is slower to close the old
    operation than the worker is to notice and return: FiftyOne then marks the old operation COMPLETED
    (it is still RUNNING), and the reaper's close finds it so, while the new operation runs the shard."""
    from fiftyone_plugin import faults
    from fiftyone_plugin.shards import operations, reaper

    idc_dataset.persistent = True
    queued = queue_shards(
        idc_dataset.match_tags("test").limit(4),
        "caption",
        {"model": str(tiny_dir), "label_field": "idc_caption"},
        ShardConfig(shards=1, chunk_size=2),
    )
    job, first = queued["job"], _oid(queued["operations"][0])
    late_closes, real_boundary = [], faults.boundary

    def reaper_replaces_the_shard_meanwhile(name):
        real_boundary(name)
        if name == "shard.after_write" and not late_closes:
            with monkeypatch.context() as slow:
                slow.setattr(reaper.operations, "close_replaced", lambda *args: late_closes.append(args))
                assert reaper._replace(ledger().find_one({"_id": f"{job}/0"}), "stuck, for the test") is not None

    monkeypatch.setattr(faults, "boundary", reaper_replaces_the_shard_meanwhile)
    service = _service()
    service.execute_operation(service.get(first))  # what `fiftyone delegated launch` does with it
    assert late_closes  # the shard was re-queued as the worker wrote
    for args in late_closes:  # the reaper goes on: it closes the operation it replaced
        operations.close_replaced(*args)
    closed = service.get(first)  # never COMPLETED while the new operation works
    assert closed.run_state == "failed" and "taken over by another attempt" in closed.result.error
    service.execute_queued_operations(dataset_name=idc_dataset.name)
    shard = ledger().find_one({"_id": f"{job}/0"})
    assert shard["state"] == "completed" and service.get(shard["operation_id"]).run_state == "completed"


def test_a_transient_error_while_reaping_or_recording_a_chunk_does_not_fail_the_shard(
    idc_dataset, tiny_dir, monkeypatch
):
    """The database away for a moment as the worker reaps the other shards (when its shard starts and
    ends) or records a chunk it has written (the ledger update, not the chunk's own writes): the shard
    goes on and completes; before, each of these failed it for good."""
    from pymongo.errors import AutoReconnect

    import fiftyone_plugin.shards.worker as worker
    from fiftyone_plugin.shards.lease import Lease

    idc_dataset.persistent = True
    calls = {"reap": 0, "record_chunk": 0}

    def first_call_fails(name, real):
        def flaky(*args, **kwargs):
            calls[name] += 1
            if calls[name] == 1:
                raise AutoReconnect("connection reset")
            return real(*args, **kwargs)

        return flaky

    monkeypatch.setattr(Lease, "record_chunk", first_call_fails("record_chunk", Lease.record_chunk))
    monkeypatch.setattr(worker, "reap", first_call_fails("reap", worker.reap))
    config = ShardConfig(shards=1, chunk_size=2, retries=3, retry_backoff_s=0.01)
    view = idc_dataset.match_tags("test").limit(4)
    queued = queue_shards(view, "caption", {"model": str(tiny_dir), "label_field": "idc_caption"}, config)
    assert run_shard(idc_dataset, queued["job"], 0)["status"] == "completed"
    shard = ledger().find_one({"job": queued["job"]})
    assert shard["state"] == "completed" and shard["retried"] == 1 and shard["done"] == 4, shard
    assert calls == {"reap": 2, "record_chunk": 3}  # reaped on starting (failed) and ending; 2 chunks, 1 retry
    assert all(marks == [queued["job"]] * 2 for _, marks in _written(idc_dataset, shard["pair_ids"]).values())


def test_a_ledger_update_whose_reply_was_lost_is_not_applied_twice_nor_read_as_taken_over(
    idc_dataset, tiny_dir, monkeypatch
):
    """A standalone mongod can apply an update and then lose the connection before it replies: the
    driver raises AutoReconnect and the worker tries the update again. A chunk's record was then
    counted twice (``done`` 6 of 4 pairs), and the shard's finish, tried again, no longer found the
    shard held (it had given it up) and read as "taken over": its own operation closed FAILED while
    the shard was completed."""
    from pymongo.errors import AutoReconnect

    from fiftyone_plugin.shards import lease

    idc_dataset.persistent = True
    lost = []

    class ReplyLostOnce:
        """The ledger, whose first chunk record and first finish are applied, then their reply lost."""

        def __init__(self, collection):
            self.collection = collection

        def __getattr__(self, name):
            return getattr(self.collection, name)

        def update_one(self, query, update, **kwargs):
            result = self.collection.update_one(query, update, **kwargs)
            what = "finish" if update.get("$set", {}).get("state") == "completed" else None
            what = "record_chunk" if "done" in update.get("$inc", {}) else what
            if what is not None and what not in lost:
                lost.append(what)
                raise AutoReconnect("connection closed before the reply")
            return result

    real_ledger = lease.ledger
    monkeypatch.setattr(lease, "ledger", lambda: ReplyLostOnce(real_ledger()))
    config = ShardConfig(shards=1, chunk_size=2, retries=3, retry_backoff_s=0.01)
    view = idc_dataset.match_tags("test").limit(4)
    queued = queue_shards(view, "caption", {"model": str(tiny_dir), "label_field": "idc_caption"}, config)
    service = _service()
    operation = _oid(queued["operations"][0])
    service.execute_operation(service.get(operation))  # what `fiftyone delegated launch` does with it
    assert lost == ["record_chunk", "finish"]
    shard = ledger().find_one({"job": queued["job"]})
    assert (shard["state"], shard["done"], shard["written"], shard["attempts"][0]["pairs"]) == ("completed", 4, 8, 4)
    ran = service.get(operation)
    assert ran.run_state == "completed" and ran.result.result["status"] == "completed", ran.result.error


class _Flaky:
    """A real collection whose named methods fail once with the driver's AutoReconnect: ``before``
    (nothing applied) or ``after`` (applied, then the reply lost, as a standalone mongod can)."""

    def __init__(self, collection, plan: dict[str, str], failed: list):
        self.collection, self.plan, self.failed = collection, plan, failed

    def __getattr__(self, name):
        real = getattr(self.collection, name)
        if name not in self.plan:
            return real

        def once(*args, **kwargs):
            if name in self.failed:
                return real(*args, **kwargs)
            self.failed.append(name)
            from pymongo.errors import AutoReconnect

            if self.plan[name] == "after":
                real(*args, **kwargs)
            raise AutoReconnect(f"{name}: connection closed ({self.plan[name]} the write)")

        return once


def test_a_transient_error_before_the_lease_neither_fails_the_shard_nor_strands_it(idc_dataset, tiny_dir, monkeypatch):
    """The database away for a moment as a worker reads its shard, or as it claims it (the claim
    applied, its reply lost): the worker tries again and runs the shard. Before, the operation failed
    at once, and after a lost claim reply the shard stayed RUNNING under an attempt nobody ran, until
    the reaper marked it failed for good."""
    from fiftyone_plugin.shards import lease, worker

    idc_dataset.persistent = True
    failed = []
    real_ledger = lease.ledger
    monkeypatch.setattr(worker, "ledger", lambda: _Flaky(real_ledger(), {"find_one": "before"}, failed))
    monkeypatch.setattr(lease, "ledger", lambda: _Flaky(real_ledger(), {"find_one_and_update": "after"}, failed))
    config = ShardConfig(shards=1, chunk_size=2, retries=3, retry_backoff_s=0.01)
    view = idc_dataset.match_tags("test").limit(4)
    queued = queue_shards(view, "caption", {"model": str(tiny_dir), "label_field": "idc_caption"}, config)
    service = _service()
    operation = _oid(queued["operations"][0])
    service.execute_operation(service.get(operation))  # what `fiftyone delegated launch` does with it
    ran = service.get(operation)
    assert failed == ["find_one", "find_one_and_update"]
    assert ran.run_state == "completed" and ran.result.result["status"] == "completed", ran.result.error
    shard = ledger().find_one({"job": queued["job"]})
    assert (shard["state"], shard["done"], len(shard["attempts"])) == ("completed", 4, 1), shard


def test_a_shard_whose_queueing_was_cut_short_is_queued_by_the_reaper(idc_dataset, tiny_dir, monkeypatch):
    """The process queueing a job (the App's server, a script) dies after writing a shard's ledger
    document and before queueing its operation: the shard waited QUEUED with no operation forever,
    and the job never finished. The reaper now queues one once the shard's heartbeat is stale."""
    from fiftyone.operators.executor import ExecutionRunState

    from fiftyone_plugin.shards import operations

    idc_dataset.persistent = True
    real, queued_ops = operations.queue_operation, []

    def die_at_the_second(doc, replacing=None):
        if len(queued_ops) == 1:
            raise _Killed("queueing process killed")
        queued_ops.append(real(doc, replacing=replacing))
        return queued_ops[-1]

    monkeypatch.setattr(operations, "queue_operation", die_at_the_second)
    test = idc_dataset.match_tags("test").limit(4)
    config = ShardConfig(shards=2, chunk_size=2, stale_after=0.5, stall_after=60)
    with pytest.raises(_Killed):
        queue_shards(test, "caption", {"model": str(tiny_dir), "label_field": "idc_caption"}, config)
    monkeypatch.undo()
    (job,) = ledger().distinct("job", {"dataset_id": str(idc_dataset._doc.id)})
    assert ledger().find_one({"_id": f"{job}/1"})["operation_id"] is None
    time.sleep(0.6)
    actions = reap(job=job)
    assert [(a["shard"], a["action"]) for a in actions] == [(f"{job}/1", "requeued")]
    assert reap(job=job) == []  # queued once
    service = _service()
    service.execute_queued_operations(dataset_name=idc_dataset.name)
    shards = list(ledger().find({"job": job}).sort("shard"))
    assert [(s["state"], s["done"]) for s in shards] == [("completed", 2)] * 2
    assert all(service.get(s["operation_id"]).run_state == ExecutionRunState.COMPLETED for s in shards)
    assert shards[1]["operations"] == [_oid(actions[0]["operation"])]


@pytest.mark.parametrize(
    "task, settings, error",
    [
        ("caption", {"batch_size": 0}, "batch_size must be a positive integer, got 0"),
        ("caption", {"num_beams": "2"}, "num_beams must be a positive integer, got '2'"),
        ("heatmaps", {"batch_size": -1}, "batch_size must be a positive integer, got -1"),
        ("heatmaps", {"regions_field": "idc_out"}, "regions_field must differ from heatmap_field, both are 'idc_out'"),
        ("heatmaps", {"region_source": "pixel"}, "region_source must be one of .*, got 'pixel'"),
    ],
)
def test_a_bad_setting_is_refused_when_the_job_is_queued(idc_dataset, tiny_dir, task, settings, error):
    """Before, the job was queued and its shards failed later, in the workers, after loading the model."""
    field = {"caption": "label_field", "heatmaps": "heatmap_field"}[task]
    settings = {"model": str(tiny_dir), field: "idc_out", **settings}
    with pytest.raises(ValueError, match=error):
        queue_shards(idc_dataset.match_tags("test").limit(4), task, settings, ShardConfig(shards=2))
    assert ledger().count_documents({"dataset_id": str(idc_dataset._doc.id)}) == 0


def test_a_heatmap_job_keeps_the_region_source_it_was_queued_with(idc_dataset, tiny_dir):
    """The ledger records the default source ('auto') when a job is queued without one, so a job resumed
    after the default changes still does what it was queued to do; an entry queued before the ledger kept
    it resumes with 'attention', the only default there was (before, it switched to 'auto' midway)."""
    from fiftyone_plugin.shards.tasks import task_for

    settings = {"model": str(tiny_dir), "heatmap_field": "idc_out", "caption_field": None}
    queued = queue_shards(idc_dataset.match_tags("test").limit(4), "heatmaps", settings, ShardConfig(shards=2))
    stored = [s["settings"] for s in ledger().find({"job": queued["job"]})]
    assert len(stored) == 2 and all(s["region_source"] == "auto" for s in stored)
    assert task_for("heatmaps", stored[0]).region_source == "auto"
    assert task_for("heatmaps", {**settings, "region_source": "pixels"}).stored_settings()["region_source"] == "pixels"
    old_entry = {k: v for k, v in stored[0].items() if k != "region_source"}
    assert task_for("heatmaps", old_entry).region_source == "attention"


def test_a_pair_without_its_id_is_refused_when_the_job_is_queued(idc_dataset, tiny_dir, shapes_pairs):
    """A modified sample added by hand (the App, a script) without ``pair_id``: before, queueing failed
    with "'<' not supported between instances of 'NoneType' and 'str'"."""
    import fiftyone as fo

    pair = next(p for p in shapes_pairs if p.split == "test")
    group = fo.Group()
    idc_dataset.add_samples(
        [
            fo.Sample(filepath=pair.reference, group=group.element(REFERENCE), tags=["test"]),
            fo.Sample(filepath=pair.modified, group=group.element(MODIFIED), tags=["test"]),
        ]
    )
    sample_id = idc_dataset.select_group_slices(MODIFIED).match({PAIR_ID: None}).first().id
    settings = {"model": str(tiny_dir), "label_field": "idc_caption"}
    with pytest.raises(ValueError, match=f"sample {sample_id}: has no {PAIR_ID!r}"):
        queue_shards(idc_dataset.match_tags("test"), "caption", settings, ShardConfig(shards=2))
    assert ledger().count_documents({"dataset_id": str(idc_dataset._doc.id)}) == 0


def test_a_transient_error_while_loading_the_model_does_not_fail_the_shard(idc_dataset, tiny_dir, monkeypatch):
    """Shared storage away for a moment (EIO) as the worker loads the model: tried again like a chunk;
    before, the shard failed for good."""
    import errno

    import idc_engine.model.loading as loading

    idc_dataset.persistent = True
    real, failures = loading.load_model, []

    def flaky(*args, **kwargs):
        if not failures:
            failures.append(1)
            raise OSError(errno.EIO, "Input/output error", str(tiny_dir))
        return real(*args, **kwargs)

    monkeypatch.setattr(loading, "load_model", flaky)
    config = ShardConfig(shards=1, chunk_size=2, retries=3, retry_backoff_s=0.01)
    view = idc_dataset.match_tags("test").limit(4)
    queued = queue_shards(view, "caption", {"model": str(tiny_dir), "label_field": "idc_caption"}, config)
    assert run_shard(idc_dataset, queued["job"], 0)["status"] == "completed"
    shard = ledger().find_one({"job": queued["job"]})
    assert (shard["state"], shard["done"], shard["retried"]) == ("completed", 4, 1), shard


def test_a_rerun_copy_closes_an_original_that_was_still_starting(idc_dataset, tiny_dir):
    """A worker took the shard's first operation and is still starting (importing torch) when a
    `fiftyone delegated rerun` copy runs the shard. The first operation was not listed among the
    shard's operations until it claimed, so the copy could not close it: it stayed RUNNING while the
    copy worked, and then ended COMPLETED ("already completed") for work another operation did."""
    from fiftyone.operators.executor import ExecutionRunState

    idc_dataset.persistent = True
    queued = queue_shards(
        idc_dataset.match_tags("test").limit(4),
        "caption",
        {"model": str(tiny_dir), "label_field": "c"},
        ShardConfig(shards=1, chunk_size=2),
    )
    job, original = queued["job"], _oid(queued["operations"][0])
    service = _service()
    service.set_running(original, required_state=ExecutionRunState.QUEUED)  # a worker took it, starting
    copy = service.rerun_operation(original).id  # what `fiftyone delegated rerun ID` does
    service.execute_operation(service.get(copy))
    assert service.get(copy).result.result["status"] == "completed"
    closed = service.get(original)
    assert closed.run_state == ExecutionRunState.FAILED and f"taken over by operation {copy}" in closed.result.error
    assert run_shard(idc_dataset, job, 0, operation_id=original)["status"] == "already completed"
    assert service.get(original).run_state == ExecutionRunState.FAILED


def test_a_worker_importing_torch_as_its_operation_starts_is_not_taken_for_dead(idc_dataset, tiny_dir, monkeypatch):
    """run_shard imported the captioning module (torch: 18 s on 2 busy cores) before its starting
    heartbeat ran; a reaper meanwhile saw the shard silent and its operation RUNNING past
    ``stall_after``, and re-queued a live worker's shard (the killed-worker tests then ran a shard
    twice). Here the import takes 2 s against a ``stall_after`` of 0.5 s, a reaper turning every 0.1 s."""
    import importlib.abc
    import sys
    import threading

    from fiftyone.operators.executor import ExecutionRunState

    class SlowImport(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "fiftyone_plugin.captioning":
                time.sleep(2.0)
            return None  # the usual finders import it

    idc_dataset.persistent = True
    config = ShardConfig(shards=1, chunk_size=2, stale_after=0.2, stall_after=0.5)
    view = idc_dataset.match_tags("test").limit(4)
    queued = queue_shards(view, "caption", {"model": str(tiny_dir), "label_field": "idc_caption"}, config)
    job, operation = queued["job"], _oid(queued["operations"][0])
    _service().set_running(operation, required_state=ExecutionRunState.QUEUED)  # a worker took it
    monkeypatch.delitem(sys.modules, "fiftyone_plugin.captioning")
    monkeypatch.setattr(sys, "meta_path", [SlowImport(), *sys.meta_path])
    stop, actions = threading.Event(), []

    def reaper():  # until the worker holds the shard (a chunk may then take longer than stall_after)
        while not stop.wait(0.1) and ledger().find_one({"_id": f"{job}/0"})["state"] == "queued":
            actions.extend(reap(job=job))

    thread = threading.Thread(target=reaper)
    thread.start()
    try:
        result = run_shard(idc_dataset, job, 0, operation_id=operation)
    finally:
        stop.set()
        thread.join()
    assert actions == [] and result["status"] == "completed", (actions, result)


def test_an_operation_queued_but_not_recorded_is_run_not_doubled(idc_dataset, tiny_dir, monkeypatch):
    """The queueing process dies after queueing a shard's operation and before recording it in the
    ledger, and no worker runs it within ``stale_after``: the reaper takes that operation as the
    shard's. Before, it queued a second one, which ended COMPLETED ("already completed") beside the
    one that ran the shard."""
    import importlib

    from fiftyone.operators.executor import ExecutionRunState

    ledger_module = importlib.import_module("fiftyone_plugin.shards.ledger")  # not the function of that name
    idc_dataset.persistent = True
    real_ledger = ledger_module.ledger

    class DiesBeforeRecording:
        def __init__(self, collection):
            self.collection = collection

        def __getattr__(self, name):
            return getattr(self.collection, name)

        def update_one(self, query, update, **kwargs):
            if "operation_id" in update.get("$set", {}) and query["_id"].endswith("/1"):
                raise _Killed("queueing process killed")
            return self.collection.update_one(query, update, **kwargs)

    monkeypatch.setattr(ledger_module, "ledger", lambda: DiesBeforeRecording(real_ledger()))
    test = idc_dataset.match_tags("test").limit(4)
    config = ShardConfig(shards=2, chunk_size=2, stale_after=0.5, stall_after=60)
    with pytest.raises(_Killed):
        queue_shards(test, "caption", {"model": str(tiny_dir), "label_field": "idc_caption"}, config)
    monkeypatch.undo()
    (job,) = ledger().distinct("job", {"dataset_id": str(idc_dataset._doc.id)})
    time.sleep(0.6)
    actions = reap(job=job)
    assert [(a["shard"], a["action"]) for a in actions] == [(f"{job}/1", "requeued")]
    service = _service()
    service.execute_queued_operations(dataset_name=idc_dataset.name)
    shards = list(ledger().find({"job": job}).sort("shard"))
    assert [(s["state"], s["done"], len(s["operations"])) for s in shards] == [("completed", 2, 1)] * 2
    ops = [
        o
        for o in service.list_operations(dataset_name=idc_dataset.name)
        if o.context.request_params["params"]["job"] == job
    ]
    assert len(ops) == 2 and all(o.run_state == ExecutionRunState.COMPLETED for o in ops)
