"""What produced an artifact: package versions, git revision, config and seed."""

from __future__ import annotations

import datetime
import platform
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("idc", "torch", "transformers", "peft", "accelerate", "pycocoevalcap", "pillow", "numpy")


def package_versions() -> dict[str, str | None]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_revision() -> str | None:
    """The commit of the checkout idc runs from (with ``-dirty`` for local changes), or None."""
    root = Path(__file__).resolve().parent.parent
    try:
        revision = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return revision + ("-dirty" if dirty else "")


def provenance(config: dict | None = None, seed: int | None = None, revision: str | None = None, **extra) -> dict:
    """What made an artifact. Pass ``revision`` as read when the work *started*: the tree may change during it."""
    record = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": package_versions(),
        "git_revision": revision if revision is not None else git_revision(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    if config is not None:
        record["config"] = config
    if seed is not None:
        record["seed"] = seed
    record.update(extra)
    return record
