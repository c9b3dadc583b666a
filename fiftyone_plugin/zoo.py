"""Make the repository's zoo source (``zoo/``) loadable by ``foz.load_zoo_model`` from a local folder.

``foz.register_zoo_model_source`` takes a repository URL. For a local checkout (or a machine with
no network), this copies the source into FiftyOne's model zoo folder, where FiftyOne finds every
``manifest.json``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

ZOO_SOURCE = Path(__file__).resolve().parent.parent / "zoo"


def register_local_source(source=ZOO_SOURCE) -> Path:
    import fiftyone as fo

    source = Path(source)
    manifest = source / "manifest.json"
    if not manifest.is_file():
        raise FileNotFoundError(f"source {str(source)!r}: no manifest.json")
    name = json.loads(manifest.read_text())["name"]
    target = Path(fo.config.model_zoo_dir, *name.split("/"))
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target
