"""A shard's lease: held by one attempt at a time, renewed by a heartbeat that runs apart from the work.

An attempt claims a shard only while nobody holds it or the holder's heartbeat is older than
``stale_after`` (its worker is dead). While it holds the shard, a background thread renews the
heartbeat every quarter of ``stale_after``, whatever the work is doing: a slow chunk keeps its lease,
a killed process loses it. Progress is recorded apart (``progress_at``, when a chunk finishes); the
reaper takes a shard from a live worker only after ``stall_after`` seconds without progress. Every
ledger update of the attempt applies only while it still owns the shard, and the heartbeat thread
notices at once when it does not, so a taken-over attempt stops before its next write.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import datetime, timezone

from pymongo import ReturnDocument
from pymongo.errors import PyMongoError

from fiftyone_plugin.shards.ledger import COMPLETED, FAILED, QUEUED, RUNNING, ledger, stale

logger = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def held_by_another(doc) -> bool:
    """Whether a live attempt (fresh heartbeat) holds the shard ``doc``."""
    if doc.get("owner") is None:
        return False
    return bool(ledger().count_documents({"_id": doc["_id"], "$expr": {"$not": [stale("heartbeat", "$stale_after")]}}))


class Starting:
    """While an operation starts (imports torch, before it claims its shard), keep the waiting shard's
    heartbeat fresh, so that the reaper does not take an operation that is starting for a dead one."""

    def __init__(self, doc: dict):
        self.shard_id, self.interval = doc["_id"], max(doc["stale_after"] / 4, 0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._touch, name=f"idc-starting-{self.shard_id}", daemon=True)

    def touch(self):
        ledger().update_one(
            {"_id": self.shard_id, "owner": None, "state": QUEUED}, {"$currentDate": {"heartbeat": True}}
        )

    def _touch(self):
        while not self._stop.wait(self.interval):
            try:
                self.touch()
            except PyMongoError:
                continue

    def __enter__(self):
        try:
            self.touch()
        except PyMongoError:  # the database away for a moment: the thread touches it again soon
            pass
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)
        return False


class LeaseLost(Exception):
    """The shard was taken over (re-queued) while this attempt held it."""


class Lease:
    """This attempt's hold on one shard; use as a context manager around the work."""

    def __init__(self, doc: dict, token: str):
        self.shard_id, self.token = doc["_id"], token
        self.interval = max(doc["stale_after"] / 4, 0.05)
        self.lost = threading.Event()
        self._finish_key = f"{token}:finish"
        self._recorded = 0  # chunks recorded by this attempt: names the next record (``_owned``'s key)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"idc-heartbeat-{self.shard_id}", daemon=True)

    @classmethod
    def claim(cls, shard_id: str, operation_id, folder_of=None, token: str | None = None) -> tuple[Lease, dict] | None:
        """Take the shard if nobody holds it or its holder is dead; None if a live attempt has it or it
        is completed. ``folder_of(token)`` names the attempt's own working folder, if it has one.

        ``token``: this attempt's, when it tries its claim again after an error whose reply was lost:
        if that try took the shard, the attempt holds it already (it must not stay held by nobody)."""
        if token is not None:
            held = ledger().find_one({"_id": shard_id, "owner": token})
            if held is not None:
                return cls(held, token), held
        token = token or uuid.uuid4().hex
        attempt = {
            "token": token,
            "worker": worker_name(),
            "operation_id": operation_id,
            "started": datetime.now(timezone.utc),
            "pairs": 0,
        }
        if folder_of is not None:
            attempt["folder"] = str(folder_of(token))
        update = {
            "$set": {"owner": token, "state": RUNNING},
            "$currentDate": {"heartbeat": True, "progress_at": True},
            "$push": {"attempts": attempt},
        }
        if operation_id is not None:
            update["$set"]["operation_id"] = operation_id
            update["$addToSet"] = {"operations": operation_id}
        claimed = ledger().find_one_and_update(
            {
                "_id": shard_id,
                "state": {"$ne": COMPLETED},
                "$or": [{"owner": None}, {"$expr": stale("heartbeat", "$stale_after")}],
            },
            update,
            return_document=ReturnDocument.AFTER,
        )
        return None if claimed is None else (cls(claimed, token), claimed)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)
        return False

    def _beat(self):
        while not self._stop.wait(self.interval):
            try:
                renewed = ledger().update_one(
                    {"_id": self.shard_id, "owner": self.token}, {"$currentDate": {"heartbeat": True}}
                )
            except PyMongoError as exc:  # the database is away for a moment: try again at the next beat
                logger.warning("shard %s: heartbeat not recorded (%s); trying again", self.shard_id, exc)
                continue
            if not renewed.matched_count:
                if not self._applied(self._finish_key):  # given up by this attempt's own finish: not lost
                    self.lost.set()
                return

    def check(self):
        """Raise ``LeaseLost`` if the shard was taken over: call before every write."""
        if self.lost.is_set():
            raise LeaseLost(self.shard_id)

    def _owned(self, update: dict, extra_filter: dict | None = None, key: str | None = None):
        """Apply ``update`` while this attempt holds the shard, else raise ``LeaseLost``.

        ``key`` names the update, so that trying it again is harmless: a standalone mongod may apply an
        update and lose the connection before it replies (the driver raises ``AutoReconnect``, the
        worker tries again), and a second ``$inc`` would count a chunk twice, a second finish would
        find the shard given up and read as taken over."""
        query = {"_id": self.shard_id, "owner": self.token, **(extra_filter or {})}
        if key is not None:
            query["last_update"] = {"$ne": key}
            update = {**update, "$set": {**update.get("$set", {}), "last_update": key}}
        found = ledger().update_one(query, update)
        if found.matched_count:
            return
        if key is not None and self._applied(key):
            return  # the try whose reply was lost applied it
        self.lost.set()
        raise LeaseLost(self.shard_id)

    def _applied(self, key: str) -> bool:
        return bool(ledger().count_documents({"_id": self.shard_id, "last_update": key}))

    def start(self, done_before: int):
        self._owned({"$set": {"done": done_before}})

    def record_chunk(self, done: int, written: int, skipped: list[tuple[str, str]]):
        """Record a finished chunk: progress, the samples written and the pairs skipped (and why)."""
        self._owned(
            {
                "$inc": {"done": done, "written": written, "attempts.$.pairs": done},
                "$push": {"skipped": {"$each": [f"{p}: {why}" for p, why in skipped][:20]}},
                "$currentDate": {"heartbeat": True, "progress_at": True},
            },
            {"attempts.token": self.token},
            key=f"{self.token}:chunk:{self._recorded}",
        )
        self._recorded += 1

    def record_retry(self, why: str):
        """Note a retry while this attempt holds the shard; whether it still does is for the retried
        call to tell (a finish whose reply was lost has given the shard up, and is not taken over)."""
        ledger().update_one(
            {"_id": self.shard_id, "owner": self.token}, {"$inc": {"retried": 1}, "$set": {"error": why}}
        )

    def finish(self):
        """Mark the shard completed and give it up."""
        self._owned(
            {
                "$set": {"state": COMPLETED, "owner": None, "error": None},
                "$currentDate": {"heartbeat": True, "finished": True},
            },
            key=self._finish_key,
        )

    def release(self, state: str, why: str) -> bool:
        """Give the shard up as ``state`` (queued: for another worker; failed); False if no longer held."""
        if state not in (QUEUED, FAILED):
            raise ValueError(f"state must be {QUEUED!r} or {FAILED!r}, got {state!r}")
        released = ledger().update_one(
            {"_id": self.shard_id, "owner": self.token},
            {"$set": {"owner": None, "state": state, "error": why}, "$currentDate": {"heartbeat": True}},
        )
        return bool(released.modified_count)
