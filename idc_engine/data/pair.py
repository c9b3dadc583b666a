"""The unit of IDC data: one original image, its edited version and what changed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# "unlabeled": pairs nobody has described yet (two folders of images), kept apart from the test split so
# that reviewing and training on them never touches a benchmark's test pairs.
SPLITS = ("train", "validation", "test", "unlabeled")


@dataclass
class IDCPair:
    """One (reference, modified) image pair with its reference captions.

    ``reference`` is the original image and ``modified`` the edited one. ``captions`` holds every
    human (or synthetic) description of the change; CIDEr needs several per test pair. It may be
    empty: a pair nobody has described yet can be captioned, reviewed and shown, but training and
    evaluation leave it out (and count it). ``split`` defaults to ``"train"`` for a described pair
    and to ``"test"`` for one without references, which is there to be captioned, not trained on.
    ``metadata`` carries dataset-specific extras such as the changed object's box.
    """

    id: str
    reference: Path
    modified: Path
    captions: list[str] = field(default_factory=list)
    split: str | None = None
    category: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        self.id = str(self.id)
        self.reference = Path(self.reference)
        self.modified = Path(self.modified)
        if isinstance(self.captions, str):
            self.captions = [self.captions]
        if isinstance(self.captions, (tuple, list)):
            self.captions = list(self.captions)
        if self.split is None:
            self.split = default_split(self.captions)
        problem = validate_pair_fields(self.id, self.captions, self.split, self.category)
        if problem is not None:
            field_name, message = problem
            raise ValueError(f"pair {self.id!r}: {field_name}: {message}")

    @property
    def has_references(self) -> bool:
        """Whether the pair has at least one reference caption (training and evaluation need one)."""
        return bool(self.captions)


def default_split(captions) -> str:
    """The split of a pair that names none: ``train``, or ``test`` when it has no references yet."""
    return "train" if captions else "test"


def validate_pair_fields(pair_id, captions, split, category) -> tuple[str, str] | None:
    """Return ``(field, problem)`` for the first invalid field, or ``None`` when all are valid."""
    if not isinstance(pair_id, str) or not pair_id.strip():
        return "id", f"must be a non-empty string, got {pair_id!r}"
    if not isinstance(captions, list):
        return "captions", f"must be a non-empty list of strings, or [] for a pair not described yet, got {captions!r}"
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


def with_references(pairs: list[IDCPair]) -> tuple[list[IDCPair], list[IDCPair]]:
    """``(pairs that have reference captions, pairs that have none)``, each in the given order."""
    return [p for p in pairs if p.has_references], [p for p in pairs if not p.has_references]
