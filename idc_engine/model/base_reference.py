"""What an adapter records about the model it adapts, so that it loads on another machine.

An adapter folder's ``adapter_config.json`` names its base in ``base_model_name_or_path``:

- ``tiny`` or ``tiny-photo``: the embedded presets, which ship inside the package on every machine;
- a hub id (``Salesforce/blip2-opt-2.7b``), also when the base was loaded from a snapshot folder of the
  Hugging Face cache, so that another machine finds it in its own cache;
- ``base``: a folder inside the adapter itself, written for a base that exists nowhere else (a model
  built from a config, such as ``tiny-scratch``);
- otherwise the absolute path of a local checkpoint folder. On a machine where that path does not
  exist, the base is given at load time (``base_model=...``, ``--base-model``).
"""

from __future__ import annotations

import re
from pathlib import Path

TINY = "tiny"
TINY_PHOTO = "tiny-photo"
TINY_CHECKPOINT = Path(__file__).resolve().parent.parent / "assets" / "tiny-blip2-shapes"
TINY_PHOTO_CHECKPOINT = Path(__file__).resolve().parent.parent / "assets" / "tiny-blip2-photo"
# The checkpoints embedded in the package, by the name a user gives (and an adapter records).
EMBEDDED = {TINY: TINY_CHECKPOINT, TINY_PHOTO: TINY_PHOTO_CHECKPOINT}
_MAKE_TARGET = {TINY: "pretrain-tiny", TINY_PHOTO: "pretrain-tiny-photo"}
EMBEDDED_BASE = "base"  # folder inside an adapter that holds its base model
# A snapshot folder of the Hugging Face cache: .../models--<org>--<name>/snapshots/<revision>
_HF_SNAPSHOT = re.compile(r"models--(?P<org>[^/]+?)--(?P<name>[^/]+)/snapshots/[^/]+/?$")


def base_reference(source: str | None) -> str | None:
    """The name an adapter records for the base model loaded from ``source`` (None: none can be named)."""
    if source is None:
        return None
    path = Path(source)
    if path.exists():
        resolved = path.resolve()
        for name, checkpoint in EMBEDDED.items():
            if resolved == checkpoint:
                return name
        if resolved.name == EMBEDDED_BASE and (resolved.parent / "adapter_config.json").is_file():
            return None  # another adapter's own base: the new adapter carries a copy of its own
        snapshot = _HF_SNAPSHOT.search(resolved.as_posix())
        if snapshot:
            return f"{snapshot['org']}/{snapshot['name']}"
        return str(resolved)
    return source


def resolve_base(recorded: str | None, adapter_dir, override: str | None = None) -> str:
    """The path or hub id to load an adapter's base from: ``override``, else what the adapter recorded."""
    adapter_dir = Path(adapter_dir)
    if override is not None:
        return resolve_spec(override)
    if not recorded:
        raise ValueError(
            f"adapter {str(adapter_dir)!r}: adapter_config.json does not name its base model; pass base_model="
        )
    if recorded == EMBEDDED_BASE or (adapter_dir / recorded / "config.json").is_file():
        return str(adapter_dir / recorded)
    if recorded in EMBEDDED:
        return resolve_spec(recorded)
    if Path(recorded).is_absolute() and not Path(recorded).exists():
        raise FileNotFoundError(
            f"adapter {str(adapter_dir)!r}: its base model {recorded!r} is not on this machine; "
            "pass base_model=<checkpoint folder or hub id> (CLI: --base-model)"
        )
    return recorded


def resolve_spec(spec: str) -> str:
    """'tiny' and 'tiny-photo' become the embedded checkpoints' folders; anything else is returned as given."""
    if spec not in EMBEDDED:
        return spec
    checkpoint = EMBEDDED[spec]
    if not (checkpoint / "config.json").is_file():
        raise FileNotFoundError(
            f"model {spec!r}: the embedded checkpoint is missing at {checkpoint}; run `make {_MAKE_TARGET[spec]}`"
        )
    return str(checkpoint)
