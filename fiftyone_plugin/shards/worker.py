"""The worker side: run one shard — claim its lease, do what is left chunk by chunk, finish.

Each chunk is computed, then written (results and the job's mark together, once per job: see
``fiftyone_plugin.writeback``), then recorded in the ledger. A kill at any instruction leaves the
dataset in a state the next attempt completes: it redoes only the pairs whose reference sample lacks
the mark, and nothing already written is written again. A transient error (the database or shared
storage away for a moment) retries the chunk ``retries`` times with a doubling pause before the shard
fails.

Ctrl+C: the worker's loop stops, but the operation runs in a thread that the interpreter waits for,
so the shard finishes and the process exits with the operation still RUNNING; the reaper marks it
completed later. A second Ctrl+C makes the shard hand itself back to the queue after its current chunk.
"""

from __future__ import annotations

import errno
import functools
import logging
import threading
import time
import uuid

from pymongo.errors import ConnectionFailure, PyMongoError

from fiftyone_plugin import faults
from fiftyone_plugin.dataset import PAIR_ID, dataset_to_pairs
from fiftyone_plugin.shards import operations
from fiftyone_plugin.shards.lease import Lease, LeaseLost, Starting, held_by_another, worker_name
from fiftyone_plugin.shards.ledger import COMPLETED, FAILED, QUEUED, RUNNING, ShardConfig, ledger, worker_of
from fiftyone_plugin.shards.reaper import reap
from fiftyone_plugin.shards.tasks import task_for
from fiftyone_plugin.writeback import unfinished_pairs

logger = logging.getLogger(__name__)

# Storage that is away for a moment (a network file system); a missing file is not transient.
_TRANSIENT_ERRNOS = {errno.EIO, errno.EAGAIN, errno.EBUSY, errno.ETIMEDOUT, errno.ESTALE, errno.ECONNRESET}


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` may go away if the same chunk is tried again a little later."""
    if isinstance(exc, (ConnectionFailure, TimeoutError, ConnectionError)):
        return True
    return isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS


def run_shard(dataset, job: str, shard: int, operation_id=None, progress=None, cancelled=None) -> dict:
    """Run shard ``shard`` of ``job`` on ``dataset``: claim it, do what is left chunk by chunk, finish.

    Returns what it did; ``status`` says ``completed``, ``already completed``, ``held`` (a live
    attempt has it), ``taken over`` (it was re-queued while this attempt stalled), ``replaced`` (this
    operation was, before it started) or ``handed back``.
    """
    shard_id = f"{job}/{shard}"
    # Before the lease, a transient error is tried again too: failing here would fail the operation,
    # and then the reaper the shard, for good.
    doc = _tried(lambda: ledger().find_one({"_id": shard_id}))
    if doc is None:
        raise ValueError(f"job {job!r}: no shard {shard} in the ledger {ledger().name!r} of this database")
    if doc["dataset_id"] != str(dataset._doc.id):
        raise ValueError(f"shard {shard_id}: belongs to dataset {doc['dataset_name']!r}, not {dataset.name!r}")
    if doc["state"] == COMPLETED:
        return _result("already completed", doc)
    if _tried(lambda: held_by_another(doc), doc):
        return _result("held", doc, worker=worker_of(doc))

    # The waiting shard's heartbeat dates from when it was queued: keep it fresh while this operation
    # starts, or a reaper takes a live worker importing torch (18 s on 2 busy cores) for a dead one.
    with Starting(doc):
        from fiftyone_plugin.captioning import Cancelled  # brings torch

        _reap_others(skip=shard_id)
        task = task_for(doc["task"], doc["settings"])
        task.warm_up()
    if operation_id is not None and _tried(lambda: operations.run_state(operation_id), doc) != RUNNING:
        # A reaper replaced this operation while it started (or the user failed it): leave the shard
        # to the operation that replaced it.
        return _result("replaced", doc)
    token = uuid.uuid4().hex  # tried again with the same token: a claim whose reply was lost is found
    folder_of = functools.partial(task.attempt_folder, job, shard)
    claimed = _tried(lambda: Lease.claim(shard_id, operation_id, folder_of, token), doc)
    if claimed is None:
        doc = _tried(lambda: ledger().find_one({"_id": shard_id}), doc)
        status = "already completed" if doc["state"] == COMPLETED else "held"
        return _result(status, doc, worker=worker_of(doc))
    lease, doc = claimed
    counts = {"pairs": 0, "written": 0}
    try:
        with lease:  # the model loads under the lease: its heartbeat runs, however long that takes
            _tried(lambda: _close_replaced(doc, operation_id), doc)
            model = _with_retries(task.load, lease, doc)  # from shared storage, which may be away a moment
            return _work(dataset, doc, task, model, lease, counts, progress, cancelled)
    except LeaseLost:
        logger.warning(
            "shard %s: taken over by another attempt; this one stops after writing %d samples, finishing %d pairs",
            shard_id,
            counts["written"],
            counts["pairs"],
        )
        if operation_id is not None:
            # Whoever took the shard closes this operation too, but maybe after this returns: FiftyOne
            # would then mark it COMPLETED while the new attempt works.
            operations.close_replaced(
                operation_id, f"shard {shard_id}: taken over by another attempt while this one ran (lease lost)"
            )
        return _result("taken over", doc, **counts)
    except _Stopping:
        _hand_back(lease, operation_id)
        return _result("handed back", doc, **counts)
    except Cancelled as exc:
        lease.release(FAILED, str(exc))
        raise
    except (KeyboardInterrupt, SystemExit):
        _hand_back(lease, operation_id)
        raise
    except Exception as exc:
        lease.release(FAILED, f"{type(exc).__name__}: {exc}")
        raise


def _reap_others(**kwargs):
    """Reap the other shards of the database, as a service to them: an error there (the database away
    for a moment) must not fail this shard, which has not started or has just finished."""
    try:
        reap(**kwargs)
    except Exception:
        logger.exception("reaping the other shards failed; the reaper (or the next shard) will try again")


def _result(status: str, doc: dict, **extra) -> dict:
    return {"status": status, "job": doc["job"], "shard": doc["shard"], "pairs": 0, **extra}


def _close_replaced(doc: dict, operation_id):
    """Close the operations that ran this shard before and are still RUNNING: their attempts are dead
    or taken over (this attempt could claim the shard), and they must not read as working."""
    ours = str(operation_id) if operation_id is not None else None
    for other in doc.get("operations") or []:
        if str(other) == ours or operations.run_state(other) != RUNNING:
            continue
        why = (
            f"shard {doc['_id']}: taken over by {'operation ' + ours if ours else 'an attempt'} on {worker_name()} "
            "after this operation's worker stopped renewing its lease"
        )
        operations.close_replaced(other, why)


class _Stopping(Exception):
    """The worker process is shutting down."""


def _worker_stopping() -> bool:
    """Whether this process is shutting down. The operation runs in a thread of the event loop's
    executor: after one Ctrl+C asyncio waits for it (the shard finishes), after a second the
    interpreter exits and waits for it, and the shard sees that here between chunks."""
    return bool(getattr(threading, "_SHUTTING_DOWN", False))


def _hand_back(lease: Lease, operation_id):
    """Give the shard back to the queue at once, under the same operation id, for another worker."""
    if lease.release(QUEUED, "its worker stopped") and operation_id is not None:
        operations.hand_back(operation_id)


def _work(dataset, doc, task, model, lease: Lease, counts: dict, progress, cancelled) -> dict:
    shard_id, job = doc["_id"], doc["job"]
    mark = task.mark(job)
    total = len(doc["pair_ids"])
    # The ledger and dataset reads and writes around the chunks are retried like a chunk: the database
    # away for a moment there must not fail the shard for good either.
    left = _with_retries(lambda: unfinished_pairs(dataset, doc["pair_ids"], mark), lease, doc)
    pending = [p for p in doc["pair_ids"] if p in left]
    done_before = total - len(pending)
    _with_retries(lambda: lease.start(done_before), lease, doc)
    folder = task.attempt_folder(job, doc["shard"], lease.token)
    from fiftyone_plugin.captioning import Cancelled

    for start in range(0, len(pending), doc["chunk_size"]):
        if cancelled is not None and cancelled():
            raise Cancelled(f"shard {shard_id} cancelled after {done_before + counts['pairs']} of {total} pairs")
        if _worker_stopping():
            raise _Stopping
        lease.check()
        chunk_ids = pending[start : start + doc["chunk_size"]]

        def chunk(chunk_ids=chunk_ids):
            pairs = dataset_to_pairs(dataset.match({PAIR_ID: {"$in": chunk_ids}}))
            computed = task.compute(dataset, model, pairs, folder)
            lease.check()
            faults.boundary("shard.before_write")
            return task.write(dataset, computed, mark, lease)

        written, skipped = _with_retries(chunk, lease, doc)
        counts["written"] += written
        faults.boundary("shard.after_write")
        done = len(chunk_ids) - len(skipped)
        _with_retries(functools.partial(lease.record_chunk, done, written, skipped), lease, doc)
        counts["pairs"] += done
        if progress is not None:
            finished = done_before + counts["pairs"]
            progress(finished / max(total, 1), f"shard {doc['shard']}: {finished}/{total}")
        if doc["chunk_delay_s"]:
            time.sleep(doc["chunk_delay_s"])
    _with_retries(lease.finish, lease, doc)
    _reap_others()
    return _result("completed", doc, resumed_after=done_before, **counts)


def _with_retries(chunk, lease: Lease, doc: dict):
    """``chunk()``, tried again after a transient error, ``retries`` times with a doubling pause."""

    def noted(why):
        try:
            lease.record_retry(why)
        except PyMongoError:
            pass  # the database may be what is away; the retry itself will tell

    return _tried(chunk, doc, noted, lease.check)


def _tried(call, doc: dict | None = None, on_retry=None, after_pause=None):
    """``call()``, tried again after a transient error, ``retries`` times with a doubling pause: the
    shard's settings, or ``ShardConfig``'s before its document is read."""
    shard = doc or {}
    retries = shard.get("retries", ShardConfig.retries)
    pause = shard.get("retry_backoff_s", ShardConfig.retry_backoff_s)
    for attempt in range(retries + 1):
        try:
            return call()
        except Exception as exc:
            if attempt == retries or not is_transient(exc):
                raise
            why = f"{type(exc).__name__}: {exc} (try {attempt + 1} of {retries + 1})"
            logger.warning("shard %s: %s; trying again in %.1f s", shard.get("_id", "?"), why, pause * 2**attempt)
            if on_retry is not None:
                on_retry(why)
            time.sleep(pause * 2**attempt)
            if after_pause is not None:
                after_pause()
