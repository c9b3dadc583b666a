"""Several Python processes that write to the test session's database at the same moment."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_together(tmp_path, code: str, count: int, env=None) -> list[subprocess.CompletedProcess]:
    """Start ``count`` Python processes running ``code`` on the test session's database; each imports
    and sets up, then waits for the others, so that their writes overlap."""
    go = tmp_path / "go"
    prelude = (
        "import sys, time, pathlib\n"
        f"pathlib.Path({str(tmp_path)!r}, 'ready-' + sys.argv[1]).touch()\n"
        f"while not pathlib.Path({str(go)!r}).exists(): time.sleep(0.01)\n"
    )
    children = [
        subprocess.Popen(
            [sys.executable, "-c", code.replace("# READY\n", prelude), str(i)],
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for i in range(count)
    ]
    deadline = time.monotonic() + 180
    while len(list(tmp_path.glob("ready-*"))) < count:
        assert all(c.poll() is None for c in children), [c.communicate() for c in children]
        assert time.monotonic() < deadline, "the writers did not get ready"
        time.sleep(0.05)
    go.touch()
    done = []
    for child in children:
        out, err = child.communicate(timeout=180)
        done.append(subprocess.CompletedProcess(child.args, child.returncode, out, err))
    return done
