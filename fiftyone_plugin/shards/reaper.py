"""The reaper: re-queue the shards of dead or stuck workers, and close the operations they leave behind.

A shard is re-queued when its heartbeat is older than ``stale_after`` (its worker is dead: the
heartbeat thread renews it every quarter of that while the process lives) or, while it runs, when
it has finished no chunk for ``stall_after`` (its worker lives but is stuck). Re-queueing is a
compare-and-set on the heartbeat the reaper read (of two reapers only one wins), then a new
``run_idc_shard`` operation, then the old operation marked FAILED, saying why and what replaced it.
Every step leaves a state that the next reap (or the new operation's claim) completes. Each shard
reaps when it starts and ends; on a cluster, run ``python -m fiftyone_plugin.shards reap --every 60``
beside the workers as well.
"""

from __future__ import annotations

from fiftyone_plugin import faults
from fiftyone_plugin.shards import operations
from fiftyone_plugin.shards.ledger import (
    COMPLETED,
    FAILED,
    MAX_SECONDS,
    QUEUED,
    RUNNING,
    ShardConfig,
    ledger,
    stale,
)


def reap(stale_after: float | None = None, job: str | None = None, skip: str | None = None) -> list[dict]:
    """Re-queue every unfinished shard whose worker is dead or stuck, queue an operation for a shard
    whose queueing stopped before it had one, mark failed those whose operation failed or was deleted,
    and close the operations of finished shards that FiftyOne left RUNNING.

    ``stale_after`` overrides each shard's own limit on heartbeat age, but never goes below half of it:
    a live worker's heartbeat is renewed every quarter. ``skip``: a shard left alone (the one that the
    calling worker is about to take over itself). Returns what was done.
    """
    from fiftyone.operators.executor import ExecutionRunState

    faults.boundary("reaper.reap")
    if stale_after is not None and not 0 < stale_after <= MAX_SECONDS:
        raise ValueError(f"stale_after must be positive and at most {MAX_SECONDS:g} seconds, got {stale_after!r}")
    limit = "$stale_after" if stale_after is None else {"$max": [stale_after, {"$multiply": ["$stale_after", 0.5]}]}
    scope = {} if job is None else {"job": job}
    if skip is not None:
        scope["_id"] = {"$ne": skip}
    actions = _close_finished(limit, scope)
    dead = {"state": {"$in": [QUEUED, RUNNING]}, "operation_id": {"$ne": None}, "$expr": stale("heartbeat", limit)}
    # The process queueing the job died between the shard's document and its operation.
    unqueued = {"state": QUEUED, "operation_id": None, "$expr": stale("heartbeat", limit)}
    stuck = {
        "state": RUNNING,
        "owner": {"$ne": None},
        "progress_at": {"$exists": True},
        "$expr": stale("progress_at", "$stall_after"),
    }
    for doc in ledger().find({"$or": [dead, stuck, unqueued], **scope}):
        if doc["operation_id"] is None:
            replacement = _replace(doc, f"shard {doc['_id']}: its job's queueing stopped before its operation")
            if replacement is not None:
                actions.append({"shard": doc["_id"], "action": "requeued", "operation": str(replacement)})
            continue
        operation = operations.get(doc["operation_id"])
        state = None if operation is None else operation.run_state
        silent = doc["state"] != RUNNING or _is_stale(doc, limit)
        if doc["state"] == QUEUED and state == ExecutionRunState.RUNNING:
            # A worker took the operation and has not claimed the shard yet: it may be starting (a new
            # process imports torch), keeping the shard's heartbeat fresh once it reaches the ledger.
            # Only one RUNNING for longer than stall_after, silent that long too, is left by a dead worker.
            stall_after = doc.get("stall_after", ShardConfig.stall_after)  # absent from older ledgers
            starting = operations.running_for(operation) < stall_after
            if starting or not _is_stale(doc, stall_after):
                continue
        if state in (ExecutionRunState.RUNNING, ExecutionRunState.COMPLETED):
            why = (
                f"shard {doc['_id']}: no heartbeat for over {doc['stale_after']:g} s (stale_after): its worker died"
                if silent
                else f"shard {doc['_id']}: no finished chunk for over {doc['stall_after']:g} s (stall_after): "
                "its worker is stuck"
            )
            replacement = _replace(doc, why)
            if replacement is not None:
                actions.append({"shard": doc["_id"], "action": "requeued", "operation": str(replacement)})
        elif state != ExecutionRunState.QUEUED and silent:
            why = "its operation was deleted" if state is None else f"its operation is {state}"
            marked = ledger().update_one(
                {"_id": doc["_id"], "heartbeat": doc["heartbeat"]},
                {"$set": {"owner": None, "state": FAILED, "error": why}},
            )
            if marked.modified_count:
                actions.append({"shard": doc["_id"], "action": "failed", "why": why})
    return actions


def _is_stale(doc, limit) -> bool:
    return bool(ledger().count_documents({"_id": doc["_id"], "$expr": stale("heartbeat", limit)}))


def _replace(doc: dict, why: str):
    """Queue a new operation for the shard ``doc`` in place of its current one and close that one;
    None if another reaper (or a worker's claim) changed the shard first."""
    old = doc["operation_id"]
    won = ledger().update_one(
        {"_id": doc["_id"], "owner": doc["owner"], "heartbeat": doc["heartbeat"], "operation_id": old},
        {
            "$set": {"owner": None, "state": QUEUED, "error": why},
            "$inc": {"requeued": 1},
            "$currentDate": {"heartbeat": True, "progress_at": True},
        },
    )
    if not won.modified_count:
        return None
    # Stopped here, the shard waits QUEUED with its old operation RUNNING: the next reap replaces it.
    # An operation queued for it that its ledger does not list yet (its queueing stopped before the
    # record below) runs it instead of a second one.
    new = operations.queued_unlisted(doc) or operations.queue_operation(doc, replacing=old)
    ledger().update_one(
        {"_id": doc["_id"], "operation_id": old}, {"$set": {"operation_id": new}, "$addToSet": {"operations": new}}
    )
    if old is not None:
        operations.close_replaced(old, f"{why}; re-queued as operation {new}")
    return new


def _close_finished(limit, scope: dict) -> list[dict]:
    """Mark completed the operations of finished shards that FiftyOne left RUNNING (the worker was
    stopped after the shard's last chunk); each finished shard is looked at once."""
    query = {
        "state": COMPLETED,
        "closed": {"$ne": True},
        "operation_id": {"$ne": None},
        "$expr": stale("heartbeat", limit),
        **scope,
    }
    actions = []
    for doc in ledger().find(query, {"operation_id": 1, "done": 1}):
        if operations.close_completed(doc["operation_id"], {"status": "completed", "pairs": doc["done"]}):
            actions.append({"shard": doc["_id"], "action": "closed", "operation": str(doc["operation_id"])})
        ledger().update_one({"_id": doc["_id"]}, {"$set": {"closed": True}})
    return actions
