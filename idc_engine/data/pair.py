"""The unit of IDC data: one original image, its edited version and what changed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SPLITS = ("train", "validation", "test")


@dataclass
class IDCPair:
    """One (reference, modified) image pair with its reference captions.

    ``reference`` is the original image and ``modified`` the edited one. ``captions`` holds every
    human (or synthetic) description of the change; CIDEr needs several per test pair.
    ``metadata`` carries dataset-specific extras such as the changed object's box.
    """

    id: str
    reference: Path
    modified: Path
    captions: list[str]
    split: str = "train"
    category: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        self.id = str(self.id)
        self.reference = Path(self.reference)
        self.modified = Path(self.modified)
        if isinstance(self.captions, str):
            self.captions = [self.captions]
        self.captions = list(self.captions)
        problem = validate_pair_fields(self.id, self.captions, self.split, self.category)
        if problem is not None:
            field_name, message = problem
            raise ValueError(f"pair {self.id!r}: {field_name}: {message}")


def validate_pair_fields(pair_id, captions, split, category) -> tuple[str, str] | None:
    """Return ``(field, problem)`` for the first invalid field, or ``None`` when all are valid."""
    if not isinstance(pair_id, str) or not pair_id.strip():
        return "id", f"must be a non-empty string, got {pair_id!r}"
    if not isinstance(captions, list) or not captions:
        return "captions", f"must be a non-empty list of strings, got {captions!r}"
    for i, caption in enumerate(captions):
        if not isinstance(caption, str) or not caption.strip():
            return "captions", f"caption {i} must be a non-empty string, got {caption!r}"
    if split not in SPLITS:
        return "split", f"must be one of {', '.join(SPLITS)}, got {split!r}"
    if category is not None and (not isinstance(category, str) or not category.strip()):
        return "category", f"must be a non-empty string or null, got {category!r}"
    return None


def split_pairs(pairs: list[IDCPair], split: str) -> list[IDCPair]:
    """The pairs of one split, in manifest order."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    return [p for p in pairs if p.split == split]
