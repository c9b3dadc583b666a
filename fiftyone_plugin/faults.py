"""Named write boundaries where tests stop, pause or fail a worker on purpose; inert unless asked.

Every place where a shard's worker has written something and is about to write the next thing calls
:func:`boundary` with the boundary's name. Tests set the environment variable ``IDC_FAULT`` of a
worker process to ``NAME[@N][:ACTION]`` to act at the ``N``-th time (default: the first) that process
reaches ``NAME``:

- ``kill`` (the default): ``SIGKILL`` itself, as a lost machine would: nothing of the shard's own
  cleanup runs, its operation stays RUNNING and its lease is left to expire;
- ``wait=PATH``: pause (heartbeats go on) until the file ``PATH`` exists, so that another attempt
  can take the shard over meanwhile;
- ``transient=K``: raise a transient database error (``AutoReconnect``) the first ``K`` times.

The boundaries (``shard.*`` in the worker, ``pairs.*`` in the writer, ``variants.*`` in Syned):

``shard.before_write``       a chunk computed, nothing of it written yet
``pairs.between_slices``     a chunk's modified samples written, its reference samples not yet
``variants.between_slices``  a chunk's variants' reference samples added, their modified not yet
``shard.between_add_and_mark``  Syned: variants added, their sources not yet marked
``shard.after_write``        a chunk written, its progress not yet recorded in the ledger
``references.between_fields``  test references: the pairs' record written, their new captions not yet
``reaper.reap``              a reap starting (``transient=K``: the database away for the reaper)
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

VARIABLE = "IDC_FAULT"
BOUNDARIES = (
    "shard.before_write",
    "pairs.between_slices",
    "variants.between_slices",
    "shard.between_add_and_mark",
    "shard.after_write",
    "references.between_fields",
    "reaper.reap",
)
_reached: dict[str, int] = {}


def boundary(name: str):
    """Act at ``name`` if ``IDC_FAULT`` asks for it (see the module docstring); else do nothing."""
    spec = os.environ.get(VARIABLE)
    if not spec:
        return
    target, _, action = spec.partition(":")
    target, _, nth = target.partition("@")
    if target != name:
        return
    _reached[name] = count = _reached.get(name, 0) + 1
    kind, _, value = (action or "kill").partition("=")
    if kind == "transient":
        if count <= int(value or 1):
            from pymongo.errors import AutoReconnect

            raise AutoReconnect(f"injected transient fault at {name} ({count} of {value or 1})")
        return
    if count != int(nth or 1):
        return
    print(f"IDC_FAULT: {kind} at {name} (time {count})", file=sys.stderr, flush=True)
    if kind == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif kind == "wait":
        deadline = time.monotonic() + 600
        while not Path(value).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    else:
        raise ValueError(f"{VARIABLE}: action must be kill, wait=PATH or transient=K, got {action!r}")
