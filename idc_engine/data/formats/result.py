"""What an importer hands back: the usable pairs and an account of every record it could not use.

Public IDC releases ship annotations and images separately, and a local copy is often partial (a
failed download, a subset of the images). An importer therefore never stops at the first gap: it
keeps every pair whose images exist, lists the others in ``missing``, lists malformed records in
``skipped`` and leaves dataset-level observations (leakage between splits, ids that repeat) in
``notes``, so the caller can judge the import from :meth:`ImportResult.summary`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from idc_engine.data.pair import SPLITS, IDCPair
from idc_engine.errors import IDCError


class AnnotationError(IDCError, ValueError):
    """An annotation file cannot be read as a whole; the message names the file and the problem."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclass
class ImportResult:
    """Pairs read from a public dataset, plus the records left out and why.

    ``missing`` holds ``(pair id, problem)`` for pairs whose image files do not exist; ``skipped``
    holds ``(record, reason)`` for records that are malformed or have no usable caption.
    """

    pairs: list[IDCPair] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    format_name: str = ""

    def split_counts(self) -> dict[str, int]:
        """Number of pairs per split, in the order train, validation, test (and unlabeled, when any)."""
        counts = Counter(p.split for p in self.pairs)
        return {s: counts[s] for s in SPLITS if s != "unlabeled" or counts[s]}

    def summary(self, examples: int = 3) -> str:
        """A few lines for a log: counts, the first missing and skipped records, and the notes."""
        splits = ", ".join(f"{s} {n}" for s, n in self.split_counts().items())
        name = f"{self.format_name}: " if self.format_name else ""
        lines = [
            f"{name}{len(self.pairs)} pairs ({splits}); {len(self.missing)} missing images; "
            f"{len(self.skipped)} skipped records"
        ]
        for label, items in (("missing", self.missing), ("skipped", self.skipped)):
            for item_id, problem in items[:examples]:
                lines.append(f"  {label} {item_id}: {problem}")
            if len(items) > examples:
                lines.append(f"  ... and {len(items) - examples} more {label}")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)
