"""Long IDC jobs split into shards that several ``fiftyone delegated launch`` workers share.

- ``ledger``: the shards' documents in FiftyOne's database, ``queue_shards`` and ``status``;
- ``tasks``: what a shard does, one small class per task (captions, heatmaps, Syned variants);
- ``lease``: one attempt at a time holds a shard, renewed by a heartbeat thread apart from the work;
- ``worker``: ``run_shard``, chunk by chunk, each chunk written once per job, transient errors retried;
- ``reaper``: ``reap`` re-queues the shards of dead (no heartbeat) or stuck (no progress) workers;
- ``operations``: the delegated operations, kept truthful (none RUNNING without a worker).

What survives what: a worker killed at any instruction (``kill -9``) loses at most the chunk it was
computing and nothing is written twice; a slow worker keeps its shard; two attempts of one shard
(a stuck one and the one that replaced it, or a ``fiftyone delegated rerun`` copy) write every pair
and every Syned variant exactly once. ``tests/distributed/`` stops real workers at every write
boundary (``fiftyone_plugin.faults``) to check it.
"""

from fiftyone_plugin.shards.ledger import LEDGER, ShardConfig, ledger, queue_shards, split_pairs, status
from fiftyone_plugin.shards.reaper import reap
from fiftyone_plugin.shards.worker import run_shard
from fiftyone_plugin.writeback import job_field

__all__ = [
    "LEDGER",
    "ShardConfig",
    "job_field",
    "ledger",
    "queue_shards",
    "reap",
    "run_shard",
    "split_pairs",
    "status",
]
