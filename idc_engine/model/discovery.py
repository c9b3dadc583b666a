"""Models a user can pick on this machine, each with what it is for.

The embedded ``tiny`` preset only knows 64-pixel scenes of coloured shapes: offered as the shapes
demo model, never as a captioner of photographs. The embedded ``tiny-photo`` preset reads structural
edits of photographs (what kind, which colour, where; no object names): on photographs it never saw it
names the kind of edit on 78 % of pairs and kind, colour and place on 66 % (docs/photo_preset.md). It is
offered for every dataset that is not shapes-change, labelled with that measurement. Beside them:
BLIP-2 checkpoints in the Hugging Face cache, and folders written by ``idc train`` (adapters or full
checkpoints) under the given roots.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from idc_engine.model.base_reference import TINY, TINY_PHOTO, TINY_PHOTO_CHECKPOINT, base_reference

TINY_DESCRIPTION = "shapes demo model (embedded, 1.9 M parameters): knows only 64-pixel scenes of coloured shapes"
TINY_PHOTO_DESCRIPTION = (
    "photo-edits model (embedded, 2 M parameters), trained from scratch to name the kind of edit of a photograph "
    "(a shape or text added, an area or the background repainted, a style or global look, a region removed, "
    "blurred or darkened), its colour and place; it knows no object names. On photographs it never saw it gets "
    "the kind right on 78 % of pairs, kind, colour and place on 66 % and the place of 78 % of edits made in one "
    "place, and calls no unchanged pair a change (benchmarks/photo_preset.py): drafts to review; it confuses "
    "local edits that look alike (an added shape and a repainted area, a removal and a blurred region)"
)
TRAINING_RECORD = "training.json"


@dataclass(frozen=True)
class FoundModel:
    spec: str  # what load_model takes
    description: str


def hub_cache() -> Path:
    from huggingface_hub.constants import HF_HUB_CACHE

    return Path(HF_HUB_CACHE)


def cached_blip2(cache: Path | None = None) -> list[FoundModel]:
    """BLIP-2 checkpoints with a snapshot in the Hugging Face cache (loadable offline by hub id)."""
    cache = cache or hub_cache()
    found = []
    for folder in sorted(cache.glob("models--*")) if cache.is_dir() else []:
        name = folder.name[len("models--") :].replace("--", "/")
        snapshots = [s for s in (folder / "snapshots").glob("*") if (s / "config.json").is_file()]
        if not snapshots:
            continue
        try:
            config = json.loads((snapshots[0] / "config.json").read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if config.get("model_type") == "blip-2":
            found.append(FoundModel(name, f"BLIP-2 checkpoint in the Hugging Face cache ({name})"))
    return found


def trained_models(roots, depth: int = 4) -> list[FoundModel]:
    """Folders written by ``idc train`` (they hold a training record) under ``roots``, newest first."""
    found = []
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            continue
        for current, folders, files in os.walk(root):
            level = len(Path(current).relative_to(root).parts)
            folders[:] = [f for f in folders if not f.startswith(".") and level < depth]
            if TRAINING_RECORD in files and ("adapter_config.json" in files or "config.json" in files):
                found.append(Path(current))
    found.sort(key=lambda p: (p / TRAINING_RECORD).stat().st_mtime, reverse=True)
    return [FoundModel(str(p.resolve()), _describe_trained(p)) for p in found]


def _describe_trained(folder: Path) -> str:
    try:
        record = json.loads((folder / TRAINING_RECORD).read_text())
    except (OSError, json.JSONDecodeError):
        return "trained by idc"
    kind = "LoRA adapter" if (folder / "adapter_config.json").is_file() else "fine-tuned checkpoint"
    base = base_reference(record.get("base_model")) or "a model built from a config"
    when = record.get("created", "")[:10]
    return f"{kind} trained by idc on {record.get('train_pairs', '?')} pairs from {base} ({when})"


def local_models(roots=(), shapes: bool = False) -> list[FoundModel]:
    """Everything loadable here: trained folders under ``roots``, cached BLIP-2 checkpoints, the presets.

    ``tiny-photo`` is offered unless the dataset is shapes-change (``shapes``); ``tiny`` always, last.
    """
    presets = [FoundModel(TINY, TINY_DESCRIPTION)]
    if not shapes and (TINY_PHOTO_CHECKPOINT / "config.json").is_file():
        presets.insert(0, FoundModel(TINY_PHOTO, TINY_PHOTO_DESCRIPTION))
    seen, models = set(), []
    for model in [*trained_models(roots), *cached_blip2(), *presets]:
        if model.spec not in seen:
            seen.add(model.spec)
            models.append(model)
    return models
