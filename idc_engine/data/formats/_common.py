"""Helpers every importer shares: reading JSON, cleaning captions, unique ids, split names, image lookup.

They live in one place so that every dataset applies the same rules: a caption must hold a letter,
a repeated source id gets the same deterministic suffix, and a pair is checked for its images only
after its captions proved usable.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from idc_engine.data.formats.result import AnnotationError, ImportResult
from idc_engine.data.pair import IDCPair

# Source split names -> engine split names. "dev" is MagicBrush's, "valid" IER's, "val" the rest's.
SPLIT_NAMES = {
    "train": "train",
    "val": "validation",
    "valid": "validation",
    "validation": "validation",
    "dev": "validation",
    "test": "test",
    "unlabeled": "unlabeled",
    "unlabelled": "unlabeled",
}

_LETTER = re.compile(r"[^\W\d_]")


def load_json(path: str | os.PathLike, what: str) -> Any:
    """Parse a JSON file; a missing file or bad JSON raises an error that names the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    try:
        with path.open(encoding="utf-8-sig") as handle:
            return json.load(handle)
    except json.JSONDecodeError as exc:
        raise AnnotationError(path, f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except UnicodeDecodeError as exc:
        raise AnnotationError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def expect(value: Any, kind: type, path: Path, what: str) -> Any:
    """Return ``value`` if it is a ``kind``, else raise an :class:`AnnotationError` naming the file."""
    if not isinstance(value, kind):
        raise AnnotationError(path, f"expected {what}, got {type(value).__name__}")
    return value


def clean_captions(raw: Any) -> tuple[list[str], int]:
    """Strip and collapse whitespace; drop non-strings and captions with no letter.

    Returns the kept captions and how many were dropped. A caption with no letter is an empty
    string or list numbering ("1", "2") that annotators typed between their sentences.
    """
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        return [], 0
    kept = [" ".join(c.split()) for c in raw if isinstance(c, str) and _LETTER.search(c)]
    return kept, len(raw) - len(kept)


def split_from_name(name: str) -> str | None:
    """The engine split a file name points to (``val.json`` -> validation), or None if unclear."""
    found = {SPLIT_NAMES[t] for t in re.split(r"[^a-z]+", name.lower()) if t in SPLIT_NAMES}
    return found.pop() if len(found) == 1 else None


def engine_split(split: str, where: str) -> str:
    """Map a source or caller split name to an engine split; unknown names raise ``ValueError``."""
    try:
        return SPLIT_NAMES[str(split).lower()]
    except KeyError:
        raise ValueError(f"{where}: split must be one of {', '.join(SPLIT_NAMES)}, got {split!r}") from None


def first_existing(candidates: Sequence[Path]) -> Path | None:
    """The first candidate path that is a file, or None."""
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return None


class UniqueIds:
    """Deterministic unique pair ids: the n-th repeat of ``base`` (n >= 2) becomes ``base-n``.

    ``bases`` must hold every source id of the import, counted, so that a suffixed id never
    collides with a source id that appears later, and so that ids do not depend on which images
    happen to be present.
    """

    def __init__(self, bases: Iterable[str]):
        self._counts = Counter(bases)
        self._seen: Counter[str] = Counter()
        self._used: set[str] = set()

    def assign(self, base: str) -> tuple[str, dict[str, Any]]:
        """A fresh id for ``base`` and, when ``base`` repeats, metadata recording the original."""
        self._seen[base] += 1
        occurrence = self._seen[base]
        candidate, k = base, occurrence
        if occurrence > 1 or base in self._used:
            candidate = f"{base}-{k}"
            while candidate in self._used or candidate in self._counts:
                k += 1
                candidate = f"{base}-{k}"
        self._used.add(candidate)
        total = self._counts[base]
        extra = {"source_id": base, "occurrence": occurrence, "occurrences": total} if total > 1 else {}
        return candidate, extra


class PairCollector:
    """Builds an :class:`ImportResult` record by record, never raising on a bad record."""

    def __init__(self, format_name: str, check_images: bool = True):
        self.result = ImportResult(format_name=format_name)
        self.check_images = check_images

    def skip(self, record: str, reason: str) -> None:
        self.result.skipped.append((str(record), reason))

    def note(self, text: str) -> None:
        self.result.notes.append(text)

    def add(
        self,
        pair_id: str,
        reference: Path | Sequence[Path],
        modified: Path | Sequence[Path],
        raw_captions: Any,
        split: str,
        category: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> IDCPair | None:
        """Keep the pair, or record why not: no usable caption (skipped) or no image (missing).

        ``reference`` and ``modified`` may be lists of candidate paths; the first that exists wins.
        """
        captions, dropped = clean_captions(raw_captions)
        if not captions:
            count = len(raw_captions) if isinstance(raw_captions, list) else int(isinstance(raw_captions, str))
            self.skip(pair_id, f"{split} pair has no usable caption ({count} given, none with a letter)")
            return None
        metadata = dict(metadata or {})
        if dropped:
            metadata["dropped_captions"] = dropped
        paths, problems = [], []
        for role, given in (("reference", reference), ("modified", modified)):
            candidates = [Path(given)] if isinstance(given, (str, os.PathLike)) else [Path(c) for c in given]
            found = first_existing(candidates) if self.check_images else candidates[0]
            if found is None:
                tried = " or ".join(str(c) for c in candidates)
                problems.append(f"{role} image {tried} does not exist")
            paths.append(found or candidates[0])
        if problems:
            self.result.missing.append((pair_id, "; ".join(problems)))
            return None
        pair = IDCPair(pair_id, paths[0], paths[1], captions, split, category, metadata)
        self.result.pairs.append(pair)
        return pair


def coco_captions(data: Any, path: Path) -> tuple[dict[str, list[Any]], list[str], list[tuple[str, str]]]:
    """Group a COCO caption-eval file (``{"images": [...], "annotations": [...]}``) by image id.

    Returns the captions per image id in first-seen order, the ids listed under ``images`` that
    have no annotation, and ``(record, reason)`` for malformed annotations.
    """
    expect(data, dict, path, "a COCO caption object with an 'annotations' list")
    annotations = expect(data.get("annotations"), list, path, "an 'annotations' list")
    grouped: dict[str, list[Any]] = {}
    bad: list[tuple[str, str]] = []
    for i, ann in enumerate(annotations):
        if not isinstance(ann, dict) or "image_id" not in ann or "caption" not in ann:
            bad.append((f"{path.name}[annotations][{i}]", "annotation lacks 'image_id' or 'caption'"))
            continue
        grouped.setdefault(str(ann["image_id"]), []).append(ann["caption"])
    listed = [str(img.get("id")) for img in data.get("images") or [] if isinstance(img, dict)]
    uncaptioned = list(dict.fromkeys(i for i in listed if i not in grouped))
    return grouped, uncaptioned, bad


def check_pattern(option: str, pattern: str, **fields: Any) -> None:
    """Fail before any work if a caller's name pattern uses a field the dataset does not provide."""
    try:
        pattern.format(**fields)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(
            f"{option} must be a pattern using only {{{'}, {'.join(fields)}}}, got {pattern!r} ({exc!r})"
        ) from None
