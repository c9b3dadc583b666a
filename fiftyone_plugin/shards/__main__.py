"""``python -m fiftyone_plugin.shards reap|status``: the reaper beside a cluster's workers, and progress."""

from __future__ import annotations

import argparse
import json
import sys
import time

from fiftyone_plugin.shards.ledger import status
from fiftyone_plugin.shards.reaper import reap
from fiftyone_plugin.shards.worker import is_transient


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m fiftyone_plugin.shards",
        description="Shards of long IDC jobs shared by `fiftyone delegated launch` workers (FIFTYONE_DATABASE_URI).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    reaper = commands.add_parser("reap", help="re-queue the shards of dead or stuck workers")
    reaper.add_argument(
        "--stale-after",
        type=float,
        default=None,
        help="seconds without a heartbeat (default: each job's own; never below half of it)",
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
        try:
            for action in reap(args.stale_after, args.job):
                print(json.dumps(action), flush=True)
        except Exception as exc:
            # Kept beside the workers, the reaper outlives the database being away for a moment.
            if args.every is None or not is_transient(exc):
                raise
            print(f"reap failed ({type(exc).__name__}: {exc}); trying again in {args.every:g} s", flush=True)
        if args.every is None:
            return 0
        time.sleep(args.every)


if __name__ == "__main__":
    sys.exit(main())
