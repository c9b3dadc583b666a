"""Long IDC jobs split into shards that several ``fiftyone delegated launch`` workers share.

``queue_shards`` splits the pairs of a view into slices (by pair id), writes one ledger document per
shard in the collection ``idc_shards`` of FiftyOne's database (which every worker of that database
shares) and queues one delegated ``run_idc_shard`` operation per shard. ``run_shard`` is the worker
side: it claims its shard, works in chunks, writes each chunk to the dataset at once and then beats
the shard's heartbeat, so a dead worker loses at most the chunk it was computing.

FiftyOne leaves the operation of a worker killed with ``kill -9`` RUNNING forever and never retries
it, and ``fiftyone delegated rerun`` copies an operation whether its worker is alive or not. So:

- A shard is held by one attempt at a time (``owner``); an attempt may take it only while nobody
  holds it or the holder's heartbeat is older than ``stale_after``. A second copy of a live shard
  returns at once; an attempt whose shard was taken from it stops at its next heartbeat.
- Each sample written carries the job's id in ``<field>_job``, set in the same single-document
  update as the value itself and only where it is not set yet: a pair is written at most once per
  job even when two attempts overlap, and a resumed shard skips the pairs that carry the mark.
- ``reap`` finds unfinished shards whose heartbeat is stale and re-queues their operation under the
  same id (``set_queued(..., required_state=RUNNING)``: of two reapers only one wins), so that a
  live worker finishes only what is left. Every shard reaps when it starts and ends; on a cluster,
  run ``python -m fiftyone_plugin.shards reap --every 60`` beside the workers as well.
- Ctrl+C: the worker's loop stops, but the operation runs in a thread that the interpreter waits
  for, so the shard finishes and the process exits with the operation still RUNNING; ``reap`` marks
  it completed later. A second Ctrl+C makes the shard hand itself back to the queue after its
  current chunk.

Heartbeats and staleness use the database server's clock, so the workers' clocks may differ.

Ledger document (``_id`` = ``<job>/<shard>``): ``job``, ``shard``, ``shards``, ``task``,
``dataset_id``, ``dataset_name``, ``settings`` (the task's parameters), ``chunk_size``,
``chunk_delay_s``, ``stale_after``, ``pair_ids``, ``operation_id``, ``state`` (queued, running,
completed, failed), ``owner``, ``heartbeat``, ``done`` (pairs finished), ``written`` (samples
written), ``skipped`` (unreadable pairs and why), ``requeued`` and ``attempts`` (one per claim:
``token``, ``worker``, ``operation_id``, ``pairs`` written by it).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import fiftyone as fo
from bson import ObjectId
from pymongo import ReturnDocument, UpdateOne

from fiftyone_plugin.captioning import CAPTION_SOURCES, Cancelled, confidence_field
from fiftyone_plugin.dataset import MODIFIED, PAIR_ID, check_grouped, dataset_to_pairs, samples_of_pairs

LEDGER = "idc_shards"
RUN_SHARD = "@idc/idc/run_idc_shard"
TASKS = ("caption", "heatmaps", "augment")
SYNED_MARK = "syned"  # augmented sources carry the job in ``syned_job``
QUEUED, RUNNING, COMPLETED, FAILED = "queued", "running", "completed", "failed"


@dataclass
class ShardConfig:
    shards: int = field(default=4, metadata={"help": "how many delegated operations share the pairs"})
    chunk_size: int = field(
        default=16, metadata={"help": "pairs per chunk: each chunk is written, then the heartbeat beats"}
    )
    stale_after: float = field(
        default=300.0,
        metadata={"help": "seconds without a heartbeat after which a shard is re-queued; longer than a chunk takes"},
    )
    chunk_delay_s: float = field(
        default=0.0, metadata={"help": "pause after each chunk, in seconds: for tests and for throttling"}
    )

    def __post_init__(self):
        for name in ("shards", "chunk_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not self.stale_after > 0:
            raise ValueError(f"stale_after must be positive (seconds), got {self.stale_after!r}")
        if not self.chunk_delay_s >= 0:
            raise ValueError(f"chunk_delay_s must be zero or positive (seconds), got {self.chunk_delay_s!r}")


def ledger():
    """The shard ledger: a collection of FiftyOne's database, shared by every worker of that database."""
    import fiftyone.core.odm as foo

    return foo.get_db_conn()[LEDGER]


def job_field(field_name: str) -> str:
    """The field that marks which job wrote ``field_name`` on a sample."""
    return f"{field_name}_job"


def _service():
    import fiftyone.operators.delegated as food

    return food.DelegatedOperationService()


# --- the tasks a shard can run --------------------------------------------------------------------


def _task_field(task: str, settings: dict) -> str:
    if task == "augment":
        return SYNED_MARK
    return settings["label_field"] if task == "caption" else settings["heatmap_field"]


def _declare_fields(dataset, task: str, settings: dict):
    """Declare the fields before any worker writes: two workers adding one field at once could clash."""
    wanted = {job_field(_task_field(task, settings)): (fo.StringField, {})}
    if task == "caption":
        wanted[settings["label_field"]] = (fo.StringField, {})
        wanted[confidence_field(settings["label_field"])] = (fo.FloatField, {})
    elif task == "augment":
        from fiftyone_plugin.syned import SOURCE_FIELD

        wanted[SOURCE_FIELD] = (fo.StringField, {})
    else:
        wanted[settings["heatmap_field"]] = (fo.EmbeddedDocumentField, {"embedded_doc_type": fo.Heatmap})
        if settings.get("regions_field"):
            wanted[settings["regions_field"]] = (fo.EmbeddedDocumentField, {"embedded_doc_type": fo.Detections})
    schema = dataset.get_field_schema()
    for name, (kind, kwargs) in wanted.items():
        if name not in schema:
            dataset.add_sample_field(name, kind, **kwargs)


def _check_settings(task: str, settings: dict):
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if task == "augment":
        from idc_engine.synth.augment import SynedConfig

        if not isinstance(settings.get("out_dir"), str) or not settings["out_dir"].strip():
            raise ValueError(f"out_dir must be a folder every worker can reach, got {settings.get('out_dir')!r}")
        SynedConfig(**settings.get("config", {}))  # its own errors name the bad argument
        return
    names = ["label_field"] if task == "caption" else ["heatmap_field", "regions_field", "caption_field"]
    for name in names:
        value = settings.get(name)
        if (task == "caption" or name == "heatmap_field" or value) and not str(value).isidentifier():
            raise ValueError(f"{name} must be a valid identifier (letters, digits, underscores), got {value!r}")


def _write_once(dataset, values_by_pair: dict[str, dict], marker: str, job: str) -> int:
    """Write each pair's values and the job's mark on both its samples, each sample in one atomic
    update that applies only where the mark is not set yet; return how many samples were written."""
    now = datetime.now(timezone.utc)
    updates = [
        UpdateOne(
            {"_id": ObjectId(sample_id), marker: {"$ne": job}},
            {"$set": {**values_by_pair[pair_id], marker: job, "last_modified_at": now}},
        )
        for pair_id, sample_ids in samples_of_pairs(dataset, values_by_pair).items()
        for sample_id in sample_ids
    ]
    if not updates:
        return 0
    return dataset._sample_collection.bulk_write(updates, ordered=False).modified_count


def _load_model(task: str, settings: dict):
    if task == "augment":
        from idc_engine.synth.augment import load_editor, load_variator

        return load_editor(settings.get("editor", "procedural")), load_variator(settings.get("variator", "template"))
    from idc_engine.model.loading import load_model

    return load_model(settings.get("model", "tiny"))


def _run_chunk(task: str, settings: dict, dataset, model, pairs, job: str, shard: int):
    """Compute and write one chunk; return (samples written, [(pair id, why skipped)])."""
    marker = job_field(_task_field(task, settings))
    if task == "augment":
        return _augment_chunk(settings, dataset, model, pairs, job, shard, marker)
    if task == "caption":
        from idc_engine.inference.caption import GenerationConfig, caption_idc_pairs

        generation = GenerationConfig(batch_size=settings.get("batch_size", 16), num_beams=settings.get("num_beams", 1))
        result = caption_idc_pairs(model, pairs, generation)
        label_field = settings["label_field"]
        values = {
            pid: {label_field: caption, confidence_field(label_field): round(result.confidences[pid], 5)}
            for pid, caption in result.captions.items()
        }
        return _write_once(dataset, values, marker, job), list(result.report.skipped)

    from fiftyone_plugin.heatmaps import heatmaps_for_pairs

    # The maps are written by heatmaps_for_pairs and the marks after them: a worker killed between
    # the two leaves this chunk to be computed again, which writes the same maps a second time.
    captions = {}
    caption_field = settings.get("caption_field")
    modified = dataset.select_group_slices(MODIFIED).match({PAIR_ID: {"$in": [p.id for p in pairs]}})
    if caption_field and modified.has_field(caption_field):
        captions = {p: c for p, c in zip(*modified.values([PAIR_ID, caption_field])) if isinstance(c, str)}
    report = heatmaps_for_pairs(
        dataset,
        model,
        pairs,
        captions,
        kind=settings.get("kind", "qformer"),
        heatmap_field=settings["heatmap_field"],
        regions_field=settings.get("regions_field") or None,
        region_source=settings.get("region_source", "attention"),
        batch_size=settings.get("batch_size", 8),
    )
    skipped = []
    if report["skipped"]:  # rare: decode again to learn which pairs were skipped
        from idc_engine.data.loading import load_pairs

        skipped = list(load_pairs(pairs, skip_bad=True)[2].skipped)
    skipped_ids = {pid for pid, _ in skipped}
    written = _write_once(dataset, {p.id: {} for p in pairs if p.id not in skipped_ids}, marker, job)
    return written, skipped


def _augment_chunk(settings, dataset, model, pairs, job, shard, marker):
    """Syned variants of one chunk's pairs, added to the dataset, then the sources marked.

    Each shard has a folder of its own under ``out_dir`` (the engine's resumable ``items.jsonl``), which
    an attempt that takes the shard over reuses: variants a dead attempt finished are not edited again,
    and those it added are not added twice. A variant's seed depends on the run's seed and its source
    only, so shards make the same bytes as one ``augment_syned`` run.
    """
    from fiftyone_plugin.syned import add_variants
    from idc_engine.data.manifest import read_manifest
    from idc_engine.synth.augment import SYNTHETIC, SynedConfig, augment

    editor, variator = model
    folder = Path(settings["out_dir"]) / f"{job}-shard-{shard}"
    report = augment(pairs, folder, SynedConfig(**settings.get("config", {})), editor, variator)
    add_variants(dataset, read_manifest(folder / SYNTHETIC))
    skipped = list(report.skipped_sources)
    skipped_ids = {pid for pid, _ in skipped}
    written = _write_once(dataset, {p.id: {} for p in pairs if p.id not in skipped_ids}, marker, job)
    return written, skipped


# --- queueing -------------------------------------------------------------------------------------


def split_pairs(pair_ids, shards: int) -> list[list[str]]:
    """Sorted pair ids cut into ``shards`` contiguous slices whose sizes differ by at most one."""
    ids = sorted(set(pair_ids))
    count = min(shards, len(ids))
    size, extra = divmod(len(ids), count) if count else (0, 0)
    slices, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        slices.append(ids[start:end])
        start = end
    return slices


def queue_shards(samples, task: str, settings: dict, config: ShardConfig | None = None) -> dict:
    """Split the pairs of ``samples`` into shards and queue one delegated ``run_idc_shard`` per shard.

    ``settings`` are the task's parameters: for ``caption`` ``model``, ``label_field``, ``batch_size``,
    ``num_beams``; for ``heatmaps`` those of ``compute_idc_heatmaps``; for ``augment`` ``out_dir`` (a
    folder every worker reaches: the variants' images stay there), ``editor``, ``variator`` and
    ``config`` (``SynedConfig``'s fields). Returns the job id, the number
    of pairs and the queued operations' ids.
    """
    config = config or ShardConfig()
    settings = dict(settings)
    _check_settings(task, settings)
    dataset = samples._dataset
    check_grouped(dataset)
    pair_ids = samples.select_group_slices(MODIFIED).values(PAIR_ID)
    if not pair_ids:
        raise ValueError(f"samples: the view of dataset {dataset.name!r} holds no pairs to shard")
    _declare_fields(dataset, task, settings)
    if task == "caption":
        sources = dict(dataset.info.get(CAPTION_SOURCES) or {})
        sources[settings["label_field"]] = {
            "model": str(settings.get("model")),
            "at": datetime.now(timezone.utc).isoformat(),
        }
        dataset.info[CAPTION_SOURCES] = sources
        dataset.save()

    job = uuid.uuid4().hex[:12]
    slices = split_pairs(pair_ids, config.shards)
    service = _service()
    operations = []
    for index, ids in enumerate(slices):
        shard_id = f"{job}/{index}"
        # An upsert, so that the first heartbeat is the database server's time like every later one.
        ledger().update_one(
            {"_id": shard_id},
            {
                "$setOnInsert": {
                    "job": job,
                    "shard": index,
                    "shards": len(slices),
                    "task": task,
                    "dataset_id": str(dataset._doc.id),
                    "dataset_name": dataset.name,
                    "settings": settings,
                    "chunk_size": config.chunk_size,
                    "chunk_delay_s": config.chunk_delay_s,
                    "stale_after": config.stale_after,
                    "pair_ids": ids,
                    "operation_id": None,
                    "state": QUEUED,
                    "owner": None,
                    "done": 0,
                    "written": 0,
                    "skipped": [],
                    "requeued": 0,
                    "attempts": [],
                },
                "$currentDate": {"heartbeat": True, "created": True},
            },
            upsert=True,
        )
        request = {
            "dataset_name": dataset.name,
            "dataset_id": str(dataset._doc.id),
            "params": {"job": job, "shard": index},
            "delegated": True,
        }
        operation = service.queue_operation(
            operator=RUN_SHARD,
            label=f"IDC {task} shard {index + 1}/{len(slices)} (job {job}, {len(ids)} pairs)",
            context={"request_params": request},
            metadata={"inputs_schema": None, "outputs_schema": None},
        )
        ledger().update_one({"_id": shard_id}, {"$set": {"operation_id": operation.id}})
        operations.append(str(operation.id))
    return {"job": job, "task": task, "pairs": len(set(pair_ids)), "shards": len(slices), "operations": operations}


# --- the worker side ------------------------------------------------------------------------------


def _stale(seconds_expr):
    """A query term: the heartbeat is older than ``seconds_expr`` (a number or a field path) by the
    database server's clock."""
    return {"$lt": ["$heartbeat", {"$subtract": ["$$NOW", {"$multiply": [seconds_expr, 1000]}]}]}


def _held_by_another(doc) -> bool:
    if doc.get("owner") is None:
        return False
    fresh = ledger().count_documents({"_id": doc["_id"], "$expr": {"$not": [_stale("$stale_after")]}})
    return bool(fresh)


def run_shard(dataset, job: str, shard: int, operation_id=None, progress=None, cancelled=None) -> dict:
    """Run shard ``shard`` of ``job`` on ``dataset``: claim it, do what is left chunk by chunk, finish.

    Returns what it did; ``status`` says ``completed``, ``already completed``, ``held`` (a live
    attempt has it) or ``taken over`` (it was re-queued while this attempt stalled).
    """
    shard_id = f"{job}/{shard}"
    # Touch a waiting shard first: its heartbeat dates from when it was queued, and the reaper must
    # not take this operation for a dead one while the model loads.
    ledger().update_one({"_id": shard_id, "owner": None, "state": QUEUED}, {"$currentDate": {"heartbeat": True}})
    doc = ledger().find_one({"_id": shard_id})
    if doc is None:
        raise ValueError(f"job {job!r}: no shard {shard} in the ledger {LEDGER!r} of this database")
    if doc["dataset_id"] != str(dataset._doc.id):
        raise ValueError(f"shard {shard_id}: belongs to dataset {doc['dataset_name']!r}, not {dataset.name!r}")
    reap()
    if doc["state"] == COMPLETED:
        return {"status": "already completed", "job": job, "shard": shard, "pairs": 0}
    if _held_by_another(doc):
        return {"status": "held", "job": job, "shard": shard, "pairs": 0, "worker": _worker_of(doc)}

    model = _load_model(doc["task"], doc["settings"])
    token = uuid.uuid4().hex
    claimed = ledger().find_one_and_update(
        {
            "_id": shard_id,
            "state": {"$ne": COMPLETED},
            "$or": [{"owner": None}, {"$expr": _stale("$stale_after")}],
        },
        {
            "$set": {"owner": token, "state": RUNNING, "operation_id": operation_id or doc["operation_id"]},
            "$currentDate": {"heartbeat": True},
            "$push": {
                "attempts": {
                    "token": token,
                    "worker": _worker(),
                    "operation_id": operation_id,
                    "started": datetime.now(timezone.utc),
                    "pairs": 0,
                }
            },
        },
        return_document=ReturnDocument.AFTER,
    )
    if claimed is None:
        doc = ledger().find_one({"_id": shard_id})
        status = "already completed" if doc["state"] == COMPLETED else "held"
        return {"status": status, "job": job, "shard": shard, "pairs": 0, "worker": _worker_of(doc)}

    try:
        return _work(dataset, claimed, token, model, progress, cancelled)
    except _Stopping as stop:
        _hand_back(shard_id, token, operation_id)
        return {"status": "handed back", "job": job, "shard": shard, "pairs": stop.pairs, "written": stop.written}
    except Cancelled as exc:
        _release(shard_id, token, FAILED, str(exc))
        raise
    except (KeyboardInterrupt, SystemExit):
        _hand_back(shard_id, token, operation_id)
        raise
    except Exception as exc:
        _release(shard_id, token, FAILED, f"{type(exc).__name__}: {exc}")
        raise


class _Stopping(Exception):
    def __init__(self, pairs, written):
        super().__init__("the worker is shutting down")
        self.pairs, self.written = pairs, written


def _worker_stopping() -> bool:
    """Whether this process is shutting down. The operation runs in a thread of the event loop's
    executor: after one Ctrl+C asyncio waits for it (the shard finishes), after a second the
    interpreter exits and waits for it, and the shard sees that here between chunks."""
    return bool(getattr(threading, "_SHUTTING_DOWN", False))


def _hand_back(shard_id, token, operation_id):
    """Give the shard back to the queue at once, under the same operation id, for another worker."""
    if _release(shard_id, token, QUEUED, "its worker stopped") and operation_id is not None:
        from fiftyone.operators.executor import ExecutionRunState

        _service().set_queued(_object_id(operation_id), required_state=ExecutionRunState.RUNNING)


def _work(dataset, doc, token, model, progress, cancelled) -> dict:
    shard_id, job, task, settings = doc["_id"], doc["job"], doc["task"], doc["settings"]
    marker = job_field(_task_field(task, settings))
    total = len(doc["pair_ids"])
    left = set(
        dataset.select_group_slices(MODIFIED)
        .match({PAIR_ID: {"$in": doc["pair_ids"]}, marker: {"$ne": job}})
        .values(PAIR_ID)
    )
    pending = [p for p in doc["pair_ids"] if p in left]
    done_before = total - len(pending)
    ledger().update_one({"_id": shard_id, "owner": token}, {"$set": {"done": done_before}})
    written = finished = 0
    for start in range(0, len(pending), doc["chunk_size"]):
        if cancelled is not None and cancelled():
            raise Cancelled(f"shard {shard_id} cancelled after {done_before + finished} of {total} pairs")
        if _worker_stopping():
            raise _Stopping(finished, written)
        chunk_ids = pending[start : start + doc["chunk_size"]]
        pairs = dataset_to_pairs(dataset.match({PAIR_ID: {"$in": chunk_ids}}))
        chunk_written, skipped = _run_chunk(task, settings, dataset, model, pairs, job, doc["shard"])
        written += chunk_written
        chunk_done = len(chunk_ids) - len(skipped)
        finished += chunk_done
        beat = ledger().update_one(
            {"_id": shard_id, "owner": token, "attempts.token": token},
            {
                "$inc": {"done": chunk_done, "written": chunk_written, "attempts.$.pairs": chunk_done},
                "$push": {"skipped": {"$each": [f"{p}: {why}" for p, why in skipped][:20]}},
                "$currentDate": {"heartbeat": True},
            },
        )
        if not beat.matched_count:
            return {"status": "taken over", "job": job, "shard": doc["shard"], "pairs": finished, "written": written}
        if progress is not None:
            progress(
                (done_before + finished) / max(total, 1), f"shard {doc['shard']}: {done_before + finished}/{total}"
            )
        if doc["chunk_delay_s"]:
            time.sleep(doc["chunk_delay_s"])
    ledger().update_one(
        {"_id": shard_id, "owner": token},
        {"$set": {"state": COMPLETED, "owner": None}, "$currentDate": {"heartbeat": True, "finished": True}},
    )
    reap()
    return {
        "status": "completed",
        "job": job,
        "shard": doc["shard"],
        "pairs": finished,
        "resumed_after": done_before,
        "written": written,
    }


def _release(shard_id, token, state, why) -> bool:
    released = ledger().update_one(
        {"_id": shard_id, "owner": token},
        {"$set": {"owner": None, "state": state, "error": why}, "$currentDate": {"heartbeat": True}},
    )
    return bool(released.modified_count)


def _worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _worker_of(doc) -> str | None:
    for attempt in reversed(doc.get("attempts") or []):
        if attempt["token"] == doc.get("owner"):
            return attempt["worker"]
    return None


def _object_id(value):
    return value if isinstance(value, ObjectId) else ObjectId(str(value))


# --- reaping --------------------------------------------------------------------------------------


def reap(stale_after: float | None = None, job: str | None = None) -> list[dict]:
    """Re-queue every unfinished shard whose heartbeat is older than ``stale_after`` seconds (default:
    each shard's own) and whose operation is RUNNING (its worker died) or COMPLETED (it ended
    without finishing the shard). A shard whose operation failed is marked failed. Returns what was done.
    """
    from fiftyone.operators.executor import ExecutionRunState

    if stale_after is not None and not stale_after > 0:
        raise ValueError(f"stale_after must be positive (seconds), got {stale_after!r}")
    query = {
        "state": {"$in": [QUEUED, RUNNING]},
        "operation_id": {"$ne": None},
        "$expr": _stale(stale_after if stale_after is not None else "$stale_after"),
    }
    if job is not None:
        query["job"] = job
    service = _service()
    actions = _close_finished(service, stale_after, job)
    for doc in ledger().find(query):
        try:
            operation = service.get(_object_id(doc["operation_id"]))
        except ValueError:
            operation = None
        state = getattr(operation, "run_state", None)
        if state in (ExecutionRunState.RUNNING, ExecutionRunState.COMPLETED):
            # Only the reaper whose update still finds the stale heartbeat it read goes on.
            won = ledger().update_one(
                {"_id": doc["_id"], "owner": doc["owner"], "heartbeat": doc["heartbeat"]},
                {
                    "$set": {"owner": None, "state": QUEUED},
                    "$inc": {"requeued": 1},
                    "$currentDate": {"heartbeat": True},
                },
            )
            if won.modified_count and service.set_queued(operation.id, required_state=state) is not None:
                actions.append({"shard": doc["_id"], "action": "requeued", "operation": str(operation.id)})
        elif state != ExecutionRunState.QUEUED:
            why = "its operation was deleted" if operation is None else f"its operation is {state}"
            marked = ledger().update_one(
                {"_id": doc["_id"], "heartbeat": doc["heartbeat"]},
                {"$set": {"owner": None, "state": FAILED, "error": why}},
            )
            if marked.modified_count:
                actions.append({"shard": doc["_id"], "action": "failed", "why": why})
    return actions


def _close_finished(service, stale_after, job) -> list[dict]:
    """Mark completed the operations of finished shards that FiftyOne left RUNNING (the worker was
    stopped after the shard's last chunk); each finished shard is looked at once."""
    from fiftyone.operators.executor import ExecutionResult, ExecutionRunState

    query = {
        "state": COMPLETED,
        "closed": {"$ne": True},
        "operation_id": {"$ne": None},
        "$expr": _stale(stale_after if stale_after is not None else "$stale_after"),
    }
    if job is not None:
        query["job"] = job
    actions = []
    for doc in ledger().find(query, {"operation_id": 1, "done": 1}):
        result = ExecutionResult(result={"status": "completed", "pairs": doc["done"]})
        if service.set_completed(_object_id(doc["operation_id"]), result, required_state=ExecutionRunState.RUNNING):
            actions.append({"shard": doc["_id"], "action": "closed", "operation": str(doc["operation_id"])})
        ledger().update_one({"_id": doc["_id"]}, {"$set": {"closed": True}})
    return actions


def status(job: str | None = None) -> list[dict]:
    """Each shard's state, progress, worker, heartbeat age (seconds) and attempts, newest jobs first."""
    match = {"job": job} if job else {}
    rows = ledger().aggregate(
        [
            {"$match": match},
            {"$sort": {"created": -1, "shard": 1}},
            {
                "$project": {
                    "job": 1,
                    "shard": 1,
                    "shards": 1,
                    "task": 1,
                    "dataset_name": 1,
                    "state": 1,
                    "done": 1,
                    "total": {"$size": "$pair_ids"},
                    "written": 1,
                    "requeued": 1,
                    "owner": 1,
                    "attempts": 1,
                    "error": 1,
                    "heartbeat_age_s": {"$divide": [{"$subtract": ["$$NOW", "$heartbeat"]}, 1000]},
                }
            },
        ]
    )
    out = []
    for row in rows:
        row["worker"] = _worker_of(row)
        row["attempts"] = len(row.get("attempts") or [])
        row.pop("owner", None)
        row["shard_id"] = row.pop("_id")
        out.append(row)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m fiftyone_plugin.shards",
        description="Shards of long IDC jobs shared by `fiftyone delegated launch` workers (FIFTYONE_DATABASE_URI).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    reaper = commands.add_parser("reap", help="re-queue the shards of dead workers")
    reaper.add_argument(
        "--stale-after", type=float, default=None, help="seconds without a heartbeat (default: each job's own)"
    )
    reaper.add_argument("--job", default=None, help="only this job")
    reaper.add_argument("--every", type=float, default=None, help="keep reaping, every this many seconds")
    shown = commands.add_parser("status", help="every shard's state and progress, as JSON lines")
    shown.add_argument("--job", default=None, help="only this job")
    args = parser.parse_args(argv)
    if args.command == "status":
        for row in status(args.job):
            print(json.dumps(row, default=str))
        return 0
    while True:
        for action in reap(args.stale_after, args.job):
            print(json.dumps(action), flush=True)
        if args.every is None:
            return 0
        time.sleep(args.every)


if __name__ == "__main__":
    sys.exit(main())
