"""JSONL manifests of IDC pairs.

One JSON object per line::

    {"id": "000001", "reference": "images/000001_a.png", "modified": "images/000001_b.png",
     "captions": ["the red circle turned blue", ...], "split": "test", "category": "color",
     "metadata": {"boxes": {...}}}

``captions`` may be omitted or ``[]``: a pair nobody has described yet (it can be captioned and
reviewed; training and evaluation leave it out and count it). ``split`` defaults to ``train``, or to
``test`` for such a pair. The writer always writes both fields, so a manifest read back is the same.

Image paths are stored relative to the manifest's folder when they lie under it, so a manifest and
its images can be moved together.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from idc_engine.data.pair import IDCPair, default_split, validate_pair_fields
from idc_engine.errors import ManifestError

REQUIRED_FIELDS = ("id", "reference", "modified")
OPTIONAL_FIELDS = ("captions", "split", "category", "metadata")


def read_manifest(path: str | os.PathLike) -> list[IDCPair]:
    """Read and validate a JSONL manifest; the first bad line raises :class:`ManifestError`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest {path} does not exist")
    root = path.parent
    pairs: list[IDCPair] = []
    seen: dict[str, int] = {}
    with path.open("rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            line = _decode(path, line_number, raw)
            if not line.strip():
                continue
            pair = _parse_line(path, line_number, line, root)
            if pair.id in seen:
                raise ManifestError(
                    path, line_number, "id", f"duplicate id {pair.id!r}, first seen on line {seen[pair.id]}"
                )
            seen[pair.id] = line_number
            pairs.append(pair)
    return pairs


def _decode(path: Path, line_number: int, raw: bytes) -> str:
    """UTF-8 text of one line; a byte-order mark (as some Windows editors write) is accepted on line 1."""
    if line_number == 1 and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(
            path, line_number, None, f"not UTF-8 text (byte {raw[exc.start]:#04x} at column {exc.start + 1})"
        ) from None


def _parse_line(path: Path, line_number: int, line: str, root: Path) -> IDCPair:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ManifestError(path, line_number, None, f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(record, dict):
        raise ManifestError(path, line_number, None, f"expected a JSON object, got {type(record).__name__}")
    for name in REQUIRED_FIELDS:
        if name not in record:
            raise ManifestError(path, line_number, name, "missing")
    unknown = sorted(set(record) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
    if unknown:
        raise ManifestError(path, line_number, unknown[0], "unknown field")
    for name in ("reference", "modified"):
        if not isinstance(record[name], str) or not record[name].strip():
            raise ManifestError(path, line_number, name, f"must be a non-empty path string, got {record[name]!r}")
    metadata = record.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ManifestError(path, line_number, "metadata", f"must be an object, got {metadata!r}")
    pair_id = record["id"]
    if isinstance(pair_id, int) and not isinstance(pair_id, bool):
        pair_id = str(pair_id)
    captions = record.get("captions", [])
    split = record.get("split", default_split(captions))
    problem = validate_pair_fields(pair_id, captions, split, record.get("category"))
    if problem is not None:
        raise ManifestError(path, line_number, *problem)
    return IDCPair(
        id=pair_id,
        reference=_resolve(root, record["reference"]),
        modified=_resolve(root, record["modified"]),
        captions=captions,
        split=split,
        category=record.get("category"),
        metadata=metadata,
    )


def _resolve(root: Path, value: str) -> Path:
    candidate = Path(value)
    return Path(os.path.normpath(candidate if candidate.is_absolute() else root / candidate))


def _relative(root: Path, image: Path) -> str:
    try:
        return Path(os.path.relpath(Path(image).resolve(), root.resolve())).as_posix()
    except ValueError:  # a different drive on Windows
        return str(Path(image).resolve())


def pair_to_record(pair: IDCPair, root: Path) -> dict:
    record = {
        "id": pair.id,
        "reference": _relative(root, pair.reference),
        "modified": _relative(root, pair.modified),
        "captions": list(pair.captions),
        "split": pair.split,
    }
    if pair.category is not None:
        record["category"] = pair.category
    if pair.metadata:
        record["metadata"] = pair.metadata
    return record


def write_manifest(pairs: list[IDCPair], path: str | os.PathLike) -> Path:
    """Write ``pairs`` atomically: a crash mid-write leaves any previous manifest intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ids = [p.id for p in pairs]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise ValueError(f"pairs: duplicate id {duplicate!r}; manifest ids must be unique")
    root = path.parent
    fd, tmp = tempfile.mkstemp(dir=root, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for pair in pairs:
                handle.write(json.dumps(pair_to_record(pair, root), ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
