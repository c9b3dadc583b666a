"""Workers that are slow, killed at a write boundary, or overlapped by a second attempt of their shard.

Real `fiftyone delegated launch` workers on a standalone mongod (conftest.py). A worker whose
``IDC_FAULT`` names a write boundary (``fiftyone_plugin.faults``) kills itself there with SIGKILL, or
pauses there; the reaper (``python -m fiftyone_plugin.shards reap``) and a healthy worker finish the
job. Afterwards every pair and every Syned variant exists exactly once, and no operation reads RUNNING,
QUEUED, or COMPLETED for a shard that another attempt finished.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter

import pytest
from bson import ObjectId

from fiftyone_plugin.dataset import MODIFIED, PAIR_ID, REFERENCE

from .conftest import check_operations_are_true, database, samples_of, wait_until

pytestmark = pytest.mark.distributed

OPERATORS = {
    "caption": "caption_idc_shards",
    "heatmaps": "compute_idc_heatmaps_shards",
    "augment": "augment_syned_shards",
}
# A dead worker's shard goes to another after 10 s, a stuck one (no finished chunk) after 45 s. Not
# shorter: with the whole suite and other jobs on 2 cores, a fresh worker took over 20 s to reach its
# shard, and importing torch can hold the interpreter's lock (and so the heartbeat thread) for seconds.
FAST = {"stale_after": 10.0, "stall_after": 45.0}
# The boundaries each task's writes pass (fiftyone_plugin.faults); one faulty worker, and one shard, each.
BOUNDARIES = {
    "caption": ["shard.before_write", "pairs.between_slices", "shard.after_write@2"],
    "heatmaps": ["pairs.between_slices@2", "shard.after_write"],
    "augment": ["variants.between_slices", "shard.between_add_and_mark", "pairs.between_slices", "shard.after_write"],
}


def _params(task, tiny_dir, tmp_path) -> dict:
    if task == "caption":
        return {"model": str(tiny_dir), "label_field": "idc_caption", "batch_size": 2}
    if task == "heatmaps":
        return {"model": str(tiny_dir), "caption_field": None, "batch_size": 2}
    return {"out_dir": str(tmp_path / "syned"), "variations": 2, "seed": 4}


def _all_completed(db, job):
    def check():
        shards = list(db.idc_shards.find({"job": job}))
        return (
            shards
            and all(s["state"] == "completed" for s in shards)
            and all(db.delegated_ops.find_one({"_id": s["operation_id"]})["run_state"] == "completed" for s in shards)
        )

    return check


def _check_written_once(task, db, dataset_name, job, pair_ids, tmp_path, count, shapes_dir):
    """Every source pair carries the job's mark and its values on both slices, alike where they are
    shared; for Syned, every accepted variant of one engine run exists exactly once, whole."""
    samples = samples_of(db, dataset_name)
    sources = [s for s in samples if "synthetic" not in s["tags"]]
    by_pair = {}
    for sample in sources:
        by_pair.setdefault(sample[PAIR_ID], {})[sample["group"]["name"]] = sample
    assert set(by_pair) == set(pair_ids) and all(set(slices) == {REFERENCE, MODIFIED} for slices in by_pair.values())
    field = {"caption": "idc_caption", "heatmaps": "idc_attention", "augment": "syned"}[task]
    assert all(s.get(f"{field}_job") == job for s in sources), Counter(s.get(f"{field}_job") for s in sources)
    if task == "caption":
        for slices in by_pair.values():
            reference, modified = slices[REFERENCE], slices[MODIFIED]
            assert isinstance(modified["idc_caption"], str)
            assert reference["idc_caption"] == modified["idc_caption"]
            assert reference["idc_caption_confidence"] == modified["idc_caption_confidence"]
    elif task == "heatmaps":
        assert all(s["idc_attention"]["_cls"] == "Heatmap" for s in sources)
        assert all(s["idc_regions"]["_cls"] == "Detections" for s in sources if s["group"]["name"] == MODIFIED)
    else:
        from idc_engine.data.manifest import read_manifest
        from idc_engine.synth.augment import SYNTHETIC, SynedConfig, augment

        variants = [s for s in samples if "synthetic" in s["tags"]]
        slices = Counter((s["syned_variant"], s["group"]["name"]) for s in variants)
        assert set(slices.values()) == {1}, [k for k, n in slices.items() if n > 1]  # none twice
        groups = {}
        for sample in variants:
            groups.setdefault(sample["syned_variant"], set()).add((sample["group"]["_id"], sample["group"]["name"]))
        assert all(len(g) == 2 and len({gid for gid, _ in g}) == 1 for g in groups.values())  # whole, one group
        assert all(s["source_pair"] in pair_ids for s in variants)
        # Exactly the variants that one engine run over the same pairs accepts.
        augment(read_manifest(shapes_dir / "manifest.jsonl")[:count], tmp_path / "one", SynedConfig(2, seed=4))
        expected = {f"{p.id}--seed4" for p in read_manifest(tmp_path / "one" / SYNTHETIC)}
        assert set(groups) == expected


def _died_at(cluster, worker, boundary):
    log = cluster.logs / f"worker-{cluster.workers.index(worker)}.log"
    assert worker.returncode == -signal.SIGKILL, cluster.all_logs()
    assert f"IDC_FAULT: kill at {boundary.split('@')[0]}" in log.read_text(), cluster.all_logs()


def test_slow_live_workers_keep_their_shards(cluster, shapes_dir, tiny_dir):
    """Chunks that pause 4 s, a heartbeat limit of 1.5 s, a reaper every 0.5 s, and nobody dies: each
    shard runs once, on the worker that took it (before the heartbeat ran apart from the work, both
    shards were re-queued and one ran twice)."""
    pairs = 8
    params = {"model": str(tiny_dir), "label_field": "idc_caption", "shards": 2, "chunk_size": 2}
    params.update({"chunk_delay_s": 4.0, "stale_after": 1.5})
    go = cluster.queue(shapes_dir / "manifest.jsonl", pairs, "caption_idc_shards", params)
    workers = [cluster.start_worker(), cluster.start_worker()]
    cluster.wait_ready(workers)
    name, queued = go()
    cluster.start_reaper(every=0.5)
    with database(cluster) as db:
        wait_until(_all_completed(db, queued["job"]), 180, cluster, "every shard to complete")
        shards = list(db.idc_shards.find({"job": queued["job"]}))
        assert [(s["requeued"], len(s["attempts"])) for s in shards] == [(0, 1)] * 2, cluster.state()
        assert db.delegated_ops.count_documents({}) == 2
        check_operations_are_true(db, queued["job"])
        pair_ids = {s[PAIR_ID] for s in samples_of(db, name)}
        _check_written_once("caption", db, name, queued["job"], pair_ids, None, pairs, shapes_dir)


@pytest.mark.parametrize("task", ["caption", "heatmaps", "augment"])
def test_a_worker_killed_at_any_write_boundary_loses_nothing_and_doubles_nothing(
    task, cluster, shapes_dir, tiny_dir, tmp_path
):
    """One faulty worker per boundary takes a shard and kills itself there; a healthy worker started
    meanwhile and the reaper finish every shard."""
    boundaries = BOUNDARIES[task]
    pairs = 4 * len(boundaries)  # 4 pairs a shard, two chunks of 2
    params = {**_params(task, tiny_dir, tmp_path), "shards": len(boundaries), "chunk_size": 2, **FAST}
    go = cluster.queue(shapes_dir / "manifest.jsonl", pairs, OPERATORS[task], params)
    faulty = [cluster.start_worker(boundary) for boundary in boundaries]
    cluster.wait_ready(faulty)
    started = time.monotonic()
    name, queued = go()
    healthy = cluster.start_worker()  # ready only after the faulty ones took every shard
    cluster.start_reaper()
    for worker in faulty:
        try:
            worker.wait(timeout=240)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"a faulty worker did not reach its boundary:\n{cluster.all_logs()}") from None
    with database(cluster) as db:
        for worker, boundary in zip(faulty, boundaries):
            _died_at(cluster, worker, boundary)
        wait_until(_all_completed(db, queued["job"]), 240, cluster, "every shard to complete")
        operations = check_operations_are_true(db, queued["job"])
        assert len(operations) == 2 * len(boundaries), cluster.state()  # each killed one replaced by one new one
        shards = list(db.idc_shards.find({"job": queued["job"]}))
        assert all(s["attempts"][-1]["worker"].endswith(f":{healthy.pid}") for s in shards), cluster.state()
        if task == "augment":  # every attempt edited into a folder of its own
            folders = [a["folder"] for s in shards for a in s["attempts"]]
            assert len(set(folders)) == len(folders) == 2 * len(boundaries)
        pair_ids = [p for s in shards for p in s["pair_ids"]]
        _check_written_once(task, db, name, queued["job"], pair_ids, tmp_path, pairs, shapes_dir)
    print(f"{task}: killed at {boundaries}; all done {time.monotonic() - started:.1f} s after queueing")


@pytest.mark.parametrize("task", ["caption", "augment"])
def test_two_overlapping_attempts_of_a_shard_write_everything_once(task, cluster, shapes_dir, tiny_dir, tmp_path):
    """A worker that computed its first chunk stops right before writing it (a pause the OS or the
    garbage collector could make, between its lease check and its write). After ``stall_after`` the
    reaper re-queues the shard; a healthy worker runs it through; only then does the first one write.
    Its writes find the job's marks and the variants' ids already there and add nothing; its operation
    was closed when its shard was taken over, so FiftyOne never marks it completed."""
    release = tmp_path / "release"
    params = {**_params(task, tiny_dir, tmp_path), "shards": 1, "chunk_size": 2, **FAST}
    go = cluster.queue(shapes_dir / "manifest.jsonl", 4, OPERATORS[task], params)
    stuck = cluster.start_worker(f"shard.before_write:wait={release}")
    cluster.wait_ready([stuck])
    name, queued = go()
    stuck_log = cluster.logs / "worker-0.log"
    wait_until(lambda: "IDC_FAULT: wait at shard.before_write" in stuck_log.read_text(), 120, cluster, "the pause")
    healthy = cluster.start_worker()
    cluster.start_reaper()
    with database(cluster) as db:
        wait_until(_all_completed(db, queued["job"]), 180, cluster, "the second attempt to finish the shard")
        first = ObjectId(queued["operations"][0])
        assert db.delegated_ops.find_one({"_id": first})["run_state"] == "failed"  # not completed
        release.touch()  # now the first attempt writes what it computed
        wait_until(lambda: "taken over by another attempt" in stuck_log.read_text(), 60, cluster, "the first to stop")
        # It went on to write its chunk: the job's marks (and the variants' ids) turned every write away.
        assert "this one stops after writing 0 samples, finishing 0 pairs" in stuck_log.read_text()
        time.sleep(1.0)  # FiftyOne's own bookkeeping of the first operation, which must change nothing
        shard = db.idc_shards.find_one({"job": queued["job"]})
        assert [a["worker"].rsplit(":", 1)[1] for a in shard["attempts"]] == [str(stuck.pid), str(healthy.pid)]
        assert [a["pairs"] for a in shard["attempts"]] == [0, 4]
        assert shard["written"] == 8  # the 4 pairs' 8 samples, each written once (by the second attempt)
        check_operations_are_true(db, queued["job"])
        _check_written_once(task, db, name, queued["job"], shard["pair_ids"], tmp_path, 4, shapes_dir)


def test_a_reaper_beside_the_workers_outlives_a_transient_error(cluster):
    """``python -m fiftyone_plugin.shards reap --every N`` is the one process that re-queues a dead
    worker's shard when no other shard starts or ends. The database away for a moment during one reap
    (``AutoReconnect``) ended it with a traceback; now it says so and reaps again at the next turn."""
    reaper = cluster.start_reaper(every=0.2, fault="reaper.reap:transient=2")
    log = cluster.logs / "reaper.log"
    wait_until(
        lambda: log.read_text().count("injected transient fault") == 2 or reaper.poll() is not None,
        120,
        cluster,
        "2 faults",
    )
    time.sleep(2.0)  # ten more turns
    assert reaper.poll() is None, cluster.all_logs()
    assert (
        "reap failed (AutoReconnect: injected transient fault at reaper.reap (2 of 2)); trying again" in log.read_text()
    )
