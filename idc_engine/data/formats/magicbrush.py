"""MagicBrush (Zhang et al., NeurIPS 2023): multi-turn, mask-guided real image edits.

Annotations: the HF release ``osunlp/MagicBrush`` is parquet (``data/train-*.parquet``, 8807 rows;
``data/dev-*.parquet``, 528 rows) with columns ``img_id``, ``turn_index``, ``source_img``,
``mask_img``, ``instruction`` and ``target_img``. ``annotations`` is one parquet file or a folder
searched recursively for ``*.parquet``; each file's split comes from ``split=`` or its name
(``train`` -> train, ``dev`` -> validation, ``test`` -> test).

Images are embedded as HF ``Image`` structs (``{"bytes": ..., "path": ...}``) or raw bytes. They
are written to ``images_dir`` as ``<pair id>-source``, ``-target`` and (with ``write_masks``)
``-mask`` plus the suffix their bytes reveal (PNG, JPEG, ...). Files that exist are kept unless
``overwrite``, so a second import is cheap. A struct without bytes whose ``path`` is a file (relative
to the parquet file's folder) is used in place; a row with neither is counted in ``missing``.

Each row is one edit turn: ``source_img`` is the input of that turn (the previous turn's output
from turn 2 on) and ``instruction`` the request, used as the single caption. Pair ids are
``<img_id>-<turn_index>``; ``metadata`` keeps ``img_id``, ``turn_index`` and the mask path.
MagicBrush has no change types, so ``category`` is None.

Reading needs a parquet engine: ``pyarrow`` (read in batches, so a shard's images are never all in
memory) or, failing that, pandas with one of its engines.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from numbers import Integral
from pathlib import Path
from typing import Any

from idc_engine.data.formats._common import PairCollector, UniqueIds, clean_captions, engine_split, split_from_name
from idc_engine.data.formats.result import AnnotationError, ImportResult

COLUMNS = ("img_id", "turn_index", "source_img", "mask_img", "instruction", "target_img")
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", ".png"),
    (b"\xff\xd8\xff", ".jpg"),
    (b"GIF87a", ".gif"),
    (b"GIF89a", ".gif"),
    (b"BM", ".bmp"),
    (b"II*\x00", ".tif"),
    (b"MM\x00*", ".tif"),
)


def read_magicbrush(
    annotations: str | os.PathLike,
    images_dir: str | os.PathLike,
    *,
    split: str | None = None,
    write_masks: bool = True,
    overwrite: bool = False,
    batch_size: int = 64,
) -> ImportResult:
    """Read MagicBrush parquet files, writing their images under ``images_dir``."""
    root = Path(annotations).expanduser()
    if root.is_dir():
        files = sorted(root.rglob("*.parquet"))
        if not files:
            raise FileNotFoundError(f"MagicBrush folder {root} holds no .parquet file")
    elif root.is_file():
        files = [root]
    else:
        raise FileNotFoundError(f"MagicBrush parquet file {root} does not exist")
    plan = []
    for path in files:
        file_split = engine_split(split, "magicbrush") if split is not None else split_from_name(path.name)
        if file_split is None:
            raise ValueError(f"magicbrush: cannot tell the split of {path.name}; pass split='train', 'dev' or 'test'")
        plan.append((path, file_split))
    collector = PairCollector("magicbrush")
    ids = UniqueIds([])  # (img_id, turn) does not repeat in the release; a repeat still gets a suffix
    for path, file_split in plan:
        rows = _parquet_rows(path, batch_size)
        add_rows(collector, rows, path, file_split, images_dir, ids=ids, write_masks=write_masks, overwrite=overwrite)
    return collector.result


def add_rows(
    collector: PairCollector,
    rows: Iterable[dict[str, Any]],
    source: Path,
    split: str,
    images_dir: str | os.PathLike,
    *,
    ids: UniqueIds | None = None,
    write_masks: bool = True,
    overwrite: bool = False,
) -> None:
    """Turn MagicBrush rows (dicts with the release's columns) into pairs, writing their images.

    Kept apart from the parquet reading so that any row source (another parquet reader, the HF
    ``datasets`` rows as dicts) can feed it.
    """
    images_dir = Path(images_dir).expanduser().absolute()
    ids = ids if ids is not None else UniqueIds([])
    for i, row in enumerate(rows):
        label = f"{source.name}[{i}]"
        absent = [c for c in COLUMNS if c not in row and not (c == "mask_img" and not write_masks)]
        if absent:
            collector.skip(label, f"row lacks {', '.join(absent)}")
            continue
        img_id, turn = str(row["img_id"]).strip(), row["turn_index"]
        if not img_id or not isinstance(turn, Integral) or isinstance(turn, bool):
            collector.skip(label, f"bad img_id {row['img_id']!r} or turn_index {turn!r}")
            continue
        turn = int(turn)
        base = f"{img_id}-{turn}"
        pair_id, _ = ids.assign(base)
        extra = {"source_id": base} if pair_id != base else {}
        if not clean_captions(row["instruction"])[0]:
            collector.skip(pair_id, f"{split} pair has no usable caption (instruction {row['instruction']!r})")
            continue
        stem = images_dir / re.sub(r"[^\w.-]", "_", pair_id)  # one file set per pair, never outside images_dir
        paths, problems = {}, []
        roles = ("source", "target", "mask") if write_masks else ("source", "target")
        for role in roles:
            found, problem = _materialise(row[f"{role}_img"], Path(f"{stem}-{role}"), source.parent, overwrite)
            paths[role] = found
            if problem is not None and role != "mask":
                problems.append(f"{'reference' if role == 'source' else 'modified'} image: {problem}")
        metadata = {"img_id": img_id, "turn_index": turn, **extra}
        if paths.get("mask") is not None:
            metadata["mask"] = str(paths["mask"])
        if problems:
            collector.result.missing.append((pair_id, "; ".join(problems)))
            continue
        collector.add(pair_id, paths["source"], paths["target"], row["instruction"], split, None, metadata)


def _materialise(value: Any, stem: Path, base: Path, overwrite: bool) -> tuple[Path | None, str | None]:
    """Write an embedded image next to ``stem`` and return its path, or ``(None, problem)``."""
    data, ref = value, None
    if isinstance(value, dict):
        data, ref = value.get("bytes"), value.get("path")
    if isinstance(data, (bytes, bytearray, memoryview)) and len(data):
        data = bytes(data)
        suffix = next((s for magic, s in _SIGNATURES if data.startswith(magic)), None)
        if suffix is None and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            suffix = ".webp"
        if suffix is None:
            return None, f"embedded bytes for {stem.name} are not a known image format"
        path = stem.with_name(stem.name + suffix)
        if overwrite or not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".part")
            tmp.write_bytes(data)
            tmp.replace(path)
        return path, None
    if isinstance(ref, str) and ref and (base / ref).is_file():
        return base / ref, None
    return None, f"{stem.name} has no embedded bytes" + (f" and {ref} does not exist" if ref else "")


def _parquet_rows(path: Path, batch_size: int) -> Iterator[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        pq = None
    if pq is not None:
        try:
            handle = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises its own error types for corrupt files
            raise AnnotationError(path, f"not a readable parquet file ({exc})") from None
        for batch in handle.iter_batches(batch_size=batch_size):
            yield from batch.to_pylist()
        return
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("reading MagicBrush parquet files needs pyarrow (pip install pyarrow)") from None
    try:
        frame = pd.read_parquet(path)
    except ImportError as exc:
        raise ImportError(f"reading MagicBrush parquet files needs pyarrow (pip install pyarrow): {exc}") from None
    except Exception as exc:
        raise AnnotationError(path, f"not a readable parquet file ({exc})") from None
    yield from frame.to_dict("records")
