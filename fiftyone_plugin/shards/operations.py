"""The delegated operations that run shards, kept truthful about who is working.

FiftyOne leaves the operation of a worker killed with ``kill -9`` RUNNING forever, and
``fiftyone delegated rerun`` copies an operation whether its worker is alive or not. A shard's ledger
document lists every operation that ever ran it; an operation is closed (FAILED, saying what replaced
it) as soon as another one takes its shard over, so no operation stays RUNNING without a worker, and
a taken-over operation that ends later cannot be marked COMPLETED by FiftyOne (which only completes an
operation that is still RUNNING) while its replacement works.
"""

from __future__ import annotations

from datetime import datetime

from bson import ObjectId

RUN_SHARD = "@idc/idc/run_idc_shard"


def service():
    import fiftyone.operators.delegated as food

    return food.DelegatedOperationService()


def object_id(value) -> ObjectId:
    return value if isinstance(value, ObjectId) else ObjectId(str(value))


def queue_operation(doc, replacing=None) -> ObjectId:
    """Queue a ``run_idc_shard`` operation for the shard ``doc`` (a ledger document); return its id."""
    request = {
        "dataset_name": doc["dataset_name"],
        "dataset_id": doc["dataset_id"],
        "params": {"job": doc["job"], "shard": doc["shard"]},
        "delegated": True,
    }
    label = (
        f"IDC {doc['task']} shard {doc['shard'] + 1}/{doc['shards']} (job {doc['job']}, {len(doc['pair_ids'])} pairs)"
    )
    if replacing is not None:
        label += f", re-queued after {replacing}"
    operation = service().queue_operation(
        operator=RUN_SHARD,
        label=label,
        context={"request_params": request},
        metadata={"inputs_schema": None, "outputs_schema": None},
    )
    return operation.id


def queued_unlisted(doc):
    """A QUEUED ``run_idc_shard`` operation for the shard ``doc`` that its ledger does not list (queued
    by a process that stopped before recording it, or a rerun copy that has not started), or None."""
    import fiftyone.core.odm as foo

    found = foo.get_db_conn().delegated_ops.find_one(
        {
            "operator": RUN_SHARD,
            "run_state": "queued",
            "context.request_params.params.job": doc["job"],
            "context.request_params.params.shard": doc["shard"],
            "_id": {"$nin": [object_id(o) for o in doc.get("operations") or []]},
        },
        {"_id": 1},
        sort=[("queued_at", 1)],
    )
    return None if found is None else found["_id"]


def get(operation_id):
    """The operation's document, or None if it does not exist (deleted)."""
    try:
        return service().get(object_id(operation_id))
    except (ValueError, AttributeError):
        return None


def run_state(operation_id):
    """The operation's run state, or None if it does not exist (deleted)."""
    operation = get(operation_id)
    return None if operation is None else operation.run_state


def running_for(operation) -> float:
    """Seconds since a worker set ``operation`` RUNNING (by this machine's clock against the worker's:
    used only with limits of many seconds)."""
    started = getattr(operation, "started_at", None)
    if started is None:
        return float("inf")
    return (datetime.utcnow() - started.replace(tzinfo=None)).total_seconds()


def close_replaced(operation_id, why: str) -> bool:
    """Mark a RUNNING operation FAILED with ``why``; False if it was not RUNNING (then left alone)."""
    from fiftyone.operators.executor import ExecutionResult, ExecutionRunState

    closed = service().set_failed(
        object_id(operation_id), ExecutionResult(error=why), required_state=ExecutionRunState.RUNNING
    )
    return closed is not None


def close_completed(operation_id, result: dict) -> bool:
    """Mark a RUNNING operation COMPLETED with ``result`` (its shard finished; FiftyOne did not record it)."""
    from fiftyone.operators.executor import ExecutionResult, ExecutionRunState

    done = service().set_completed(
        object_id(operation_id), ExecutionResult(result=result), required_state=ExecutionRunState.RUNNING
    )
    return done is not None


def hand_back(operation_id) -> bool:
    """Put this worker's own RUNNING operation back in the queue under the same id (it is stopping)."""
    from fiftyone.operators.executor import ExecutionRunState

    return service().set_queued(object_id(operation_id), required_state=ExecutionRunState.RUNNING) is not None
