"""The shard ledger: one document per shard in the collection ``idc_shards`` of FiftyOne's database.

Every worker of that database shares it. ``queue_shards`` splits the pairs of a view into shards,
writes their documents and queues one delegated ``run_idc_shard`` operation per shard; ``status``
reads them back.

A shard document (``_id`` = ``<job>/<shard>``): ``job``, ``shard``, ``shards``, ``task``,
``dataset_id``, ``dataset_name``, ``settings`` (the task's parameters), the ``ShardConfig`` fields,
``pair_ids``, ``operation_id`` (the operation that runs it now) and ``operations`` (every operation
that ever ran it), ``state`` (queued, running, completed, failed), ``owner`` (the token of the
attempt that holds the lease), ``heartbeat`` (renewed by that attempt's heartbeat thread),
``progress_at`` (when it last finished a chunk), ``done`` (pairs finished), ``written`` (samples
written), ``skipped`` (unreadable pairs and why), ``requeued``, ``retried`` and ``attempts`` (one per
claim: ``token``, ``worker``, ``operation_id``, ``folder``, ``pairs`` finished by it). Times are the
database server's (``$currentDate``), so the workers' clocks may differ.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field

from fiftyone_plugin.dataset import MODIFIED, PAIR_ID, check_grouped

LEDGER = "idc_shards"
# The longest time setting: the database computes with milliseconds in 64 bits, and a value it cannot
# hold (inf, 1e20) fails every reap of the database, not only this job's.
MAX_SECONDS = 1e9
QUEUED, RUNNING, COMPLETED, FAILED = "queued", "running", "completed", "failed"


@dataclass
class ShardConfig:
    shards: int = field(default=4, metadata={"help": "how many delegated operations share the pairs"})
    chunk_size: int = field(
        default=16, metadata={"help": "pairs per chunk: each chunk is written, then recorded in the ledger"}
    )
    stale_after: float = field(
        default=300.0,
        metadata={
            "help": "seconds without a heartbeat after which a shard's worker counts as dead and the shard is "
            "re-queued; a live worker's heartbeat thread renews it every quarter of this, however slow the work"
        },
    )
    stall_after: float = field(
        default=3600.0,
        metadata={
            "help": "seconds without a finished chunk after which a live worker counts as stuck and the shard "
            "is re-queued; longer than the slowest chunk can take"
        },
    )
    retries: int = field(
        default=3, metadata={"help": "times a chunk is tried again after a transient error before the shard fails"}
    )
    retry_backoff_s: float = field(
        default=2.0, metadata={"help": "pause before the first retry, in seconds; doubled for each next one"}
    )
    chunk_delay_s: float = field(
        default=0.0, metadata={"help": "pause after each chunk, in seconds: for tests and for throttling"}
    )

    def __post_init__(self):
        for name in ("shards", "chunk_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.retries, int) or isinstance(self.retries, bool) or self.retries < 0:
            raise ValueError(f"retries must be a non-negative integer, got {self.retries!r}")
        for name in ("stale_after", "stall_after"):
            if not 0 < getattr(self, name) <= MAX_SECONDS:
                raise ValueError(
                    f"{name} must be positive and at most {MAX_SECONDS:g} seconds, got {getattr(self, name)!r}"
                )
        if self.stall_after <= self.stale_after:
            raise ValueError(
                f"stall_after ({self.stall_after!r} s) must be longer than stale_after ({self.stale_after!r} s): "
                "a live worker's chunk may take longer than its heartbeat's limit"
            )
        for name in ("retry_backoff_s", "chunk_delay_s"):
            if not 0 <= getattr(self, name) <= MAX_SECONDS:
                raise ValueError(
                    f"{name} must be zero or positive and at most {MAX_SECONDS:g} seconds, got {getattr(self, name)!r}"
                )


def ledger():
    """The shard ledger: a collection of FiftyOne's database, shared by every worker of that database."""
    import fiftyone.core.odm as foo

    return foo.get_db_conn()[LEDGER]


def stale(field_name: str, seconds_expr):
    """A query term: ``field_name`` (a date) is older than ``seconds_expr`` (a number or a field path)
    by the database server's clock."""
    return {"$lt": [f"${field_name}", {"$subtract": ["$$NOW", {"$multiply": [seconds_expr, 1000]}]}]}


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
    ``config`` (``SynedConfig``'s fields). Returns the job id, the number of pairs and the queued
    operations' ids.
    """
    from fiftyone_plugin.shards.operations import queue_operation
    from fiftyone_plugin.shards.tasks import task_for

    config = config or ShardConfig()
    job_task = task_for(task, dict(settings))  # checks the settings: its errors name the bad one
    dataset = samples._dataset
    check_grouped(dataset)
    modified = samples.select_group_slices(MODIFIED)
    pair_ids = modified.values(PAIR_ID)
    if None in pair_ids:
        sample_id = modified.match({PAIR_ID: None}).first().id
        raise ValueError(
            f"sample {sample_id}: has no {PAIR_ID!r} on dataset {dataset.name!r}; leave it out of the view "
            "or give its group a pair id"
        )
    if not pair_ids:
        raise ValueError(f"samples: the view of dataset {dataset.name!r} holds no pairs to shard")
    job_task.prepare(dataset)

    job = uuid.uuid4().hex[:12]
    slices = split_pairs(pair_ids, config.shards)
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
                    "settings": job_task.stored_settings(),
                    **asdict(config),
                    "pair_ids": ids,
                    "operation_id": None,
                    "operations": [],
                    "state": QUEUED,
                    "owner": None,
                    "done": 0,
                    "written": 0,
                    "skipped": [],
                    "requeued": 0,
                    "retried": 0,
                    "attempts": [],
                },
                "$currentDate": {"heartbeat": True, "progress_at": True, "created": True},
            },
            upsert=True,
        )
        operation = queue_operation(ledger().find_one({"_id": shard_id}))
        # Listed at once: an attempt that takes the shard over (a rerun copy) closes every listed
        # operation still RUNNING, this one too while its worker is still starting.
        ledger().update_one(
            {"_id": shard_id}, {"$set": {"operation_id": operation}, "$addToSet": {"operations": operation}}
        )
        operations.append(str(operation))
    return {"job": job, "task": task, "pairs": len(set(pair_ids)), "shards": len(slices), "operations": operations}


def worker_of(doc) -> str | None:
    """The worker (``host:pid``) of the attempt that holds the shard, if any."""
    for attempt in reversed(doc.get("attempts") or []):
        if attempt["token"] == doc.get("owner"):
            return attempt["worker"]
    return None


def status(job: str | None = None) -> list[dict]:
    """Each shard's state, progress, worker, heartbeat and progress ages (seconds) and attempts, newest
    jobs first."""
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
                    "retried": 1,
                    "owner": 1,
                    "attempts": 1,
                    "error": 1,
                    "heartbeat_age_s": {"$divide": [{"$subtract": ["$$NOW", "$heartbeat"]}, 1000]},
                    "progress_age_s": {"$divide": [{"$subtract": ["$$NOW", "$progress_at"]}, 1000]},
                }
            },
        ]
    )
    out = []
    for row in rows:
        row["worker"] = worker_of(row)
        row["attempts"] = len(row.get("attempts") or [])
        row.pop("owner", None)
        row["shard_id"] = row.pop("_id")
        out.append(row)
    return out
