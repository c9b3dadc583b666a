"""Change by change: did a caption state the changes that were made, only those, and invent nothing?

CIDEr-D rewards shared words: "the purple triangle moved" for a pair where nothing changed still
shares n-grams with its references. Following SPOT-THE-SHIFT (2026), a caption is scored here as the
set of changes it states against the set of changes the pair holds:

- **false-change rate**: unchanged pairs whose caption states a change; **true-negative rate**:
  unchanged pairs whose caption says that nothing changed. A caption that cannot be read is neither
  (it is counted as ``unread``), so the two rates and the unread share of unchanged pairs sum to 1.
- **precision / recall / F1** over changes, pooled over all pairs (micro): a stated change that the
  pair holds is a true positive, one it does not hold a false positive, a change of the pair that the
  caption leaves out a false negative. A pair with two changes described half counts one of each
  (precision 1, recall 0.5); an unread caption finds nothing (false negatives only). F1 is 0 when
  nothing was found (also when nothing was stated), None only when nothing was stated or there to find.
- **hallucination rate**: captions (read, on pairs whose contents are known) naming an object that is
  in neither image.

Readers. A :class:`ChangeReader` turns a caption into a set of hashable changes (``frozenset()``
means "no change", ``None`` that the caption cannot be read), gives the truth set of a pair from its
references or metadata, the objects in either image of a pair (``None``: unknown, so hallucinations
are not measured) and the objects one change names. :func:`choose_reader` picks the first registered
reader that reads the truth of every evaluated pair; where none does (free-text references), no
change-level figure is computed and reports say so in words. :data:`PHOTO_EDITS_READER` reads
photo-edits captions (an edit is its kind, colour and place; no hallucinations). :data:`SHAPES_READER` reads
shapes-change captions (changes are :class:`~idc_engine.metrics.change_reading.ChangeReading`,
objects are (colour, shape)). A reader for another benchmark — say photo edits named by (edit
type, colour, place) — implements the same four methods and is added with :func:`register_reader`.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from idc_engine.data.pair import IDCPair
from idc_engine.metrics.change_reading import ChangeReading, read_changes, truth_changes
from idc_engine.metrics.photo_reading import read_edit
from idc_engine.metrics.photo_reading import truth as edit_truth

Change = Hashable


@runtime_checkable
class ChangeReader(Protocol):
    name: str

    def read(self, caption: str | None) -> frozenset | None:
        """The changes ``caption`` states (``frozenset()``: it says nothing changed), or None if unreadable."""

    def truth(self, pair: IDCPair) -> frozenset | None:
        """The changes ``pair`` holds, or None when its references and metadata do not say."""

    def present(self, pair: IDCPair) -> frozenset | None:
        """The objects in either image of ``pair``, or None when unknown."""

    def named(self, change: Change) -> frozenset:
        """The objects ``change`` names (each must be in one of the images)."""


class ShapesChangeReader:
    """Reads shapes-change captions: one template per change, two changes joined by "and"."""

    name = "shapes-change"

    def read(self, caption: str | None) -> frozenset | None:
        return read_changes(caption)

    def truth(self, pair: IDCPair) -> frozenset | None:
        return truth_changes(pair)

    def present(self, pair: IDCPair) -> frozenset | None:
        metadata = pair.metadata or {}
        scenes = [metadata.get("objects_reference"), metadata.get("objects_modified")]
        if any(not isinstance(scene, list) for scene in scenes):
            return None
        try:
            return frozenset((o["color"], o["shape"]) for scene in scenes for o in scene)
        except (KeyError, TypeError):
            return None

    def named(self, change: ChangeReading) -> frozenset:
        named = {(change.color, change.shape)}
        if change.new_color is not None:
            named.add((change.new_color, change.shape))
        return frozenset(named)


SHAPES_READER = ShapesChangeReader()


class PhotoEditsReader:
    """Reads photo-edits captions (``idc_engine.metrics.photo_reading``): one edit per pair, a change being
    its (kind, colour, place), the preset's "exact". What is in a photograph is not known: no hallucinations."""

    name = "photo-edits"

    def read(self, caption: str | None) -> frozenset | None:
        reading = read_edit(caption)
        if reading is None:
            return None
        return frozenset() if reading.kind == "none" else frozenset({reading.core()})

    def truth(self, pair: IDCPair) -> frozenset | None:
        if not (isinstance(pair.metadata, dict) and isinstance(pair.metadata.get("edit"), dict)):
            return None
        try:
            real = edit_truth(pair)
        except ValueError:
            return None
        return frozenset() if real.kind == "none" else frozenset({real.core()})

    def present(self, pair: IDCPair) -> frozenset | None:
        return None

    def named(self, change) -> frozenset:
        return frozenset()


PHOTO_EDITS_READER = PhotoEditsReader()
_READERS: list[ChangeReader] = [SHAPES_READER, PHOTO_EDITS_READER]


def register_reader(reader: ChangeReader, first: bool = False):
    """Make ``reader`` a candidate of :func:`choose_reader` (``first``: ahead of those registered)."""
    if not isinstance(reader, ChangeReader):
        raise TypeError(f"reader: {reader!r} lacks a name or one of read, truth, present, named")
    if any(r.name == reader.name for r in _READERS):
        raise ValueError(f"reader: a reader named {reader.name!r} is already registered")
    _READERS.insert(0, reader) if first else _READERS.append(reader)


def registered_readers() -> list[ChangeReader]:
    return list(_READERS)


def choose_reader(pairs: list[IDCPair], readers: list[ChangeReader] | None = None) -> ChangeReader | None:
    """The first reader that reads the truth of every pair, or None (free text: no change-level scores)."""
    if not pairs:
        return None
    for reader in readers if readers is not None else _READERS:
        if all(reader.truth(p) is not None for p in pairs):
            return reader
    return None


@dataclass(frozen=True)
class PairOutcome:
    """One caption against one pair."""

    truth: frozenset
    read: frozenset | None
    hallucinated: bool | None  # None: caption unread, or the pair's objects unknown

    @property
    def unchanged(self) -> bool:
        return not self.truth

    @property
    def false_change(self) -> bool | None:
        """On an unchanged pair: True when the caption states a change, False when it says none; else None."""
        if not self.unchanged or self.read is None:
            return None
        return bool(self.read)

    @property
    def exact(self) -> bool:
        return self.read == self.truth

    def counts(self) -> tuple[int, int, int]:
        """(true positives, false positives, false negatives) of the stated changes."""
        read = self.read or frozenset()
        return len(read & self.truth), len(read - self.truth), len(self.truth - read)


def outcome(reader: ChangeReader, pair: IDCPair, caption: str | None) -> PairOutcome:
    truth = reader.truth(pair)
    if truth is None:
        raise ValueError(f"pair {pair.id!r}: reader {reader.name!r} cannot read its references")
    read = reader.read(caption)
    present = reader.present(pair)
    hallucinated = None
    if read is not None and present is not None:
        hallucinated = any(not reader.named(change) <= present for change in read)
    return PairOutcome(truth, read, hallucinated)


def _rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def summarize(outcomes: list[PairOutcome]) -> dict:
    """The change-level figures of a set of outcomes (rates are None where nothing was measured)."""
    tp = fp = fn = 0
    for o in outcomes:
        a, b, c = o.counts()
        tp, fp, fn = tp + a, fp + b, fn + c
    unchanged = [o for o in outcomes if o.unchanged]
    changed = [o for o in outcomes if not o.unchanged]
    checked = [o for o in outcomes if o.hallucinated is not None]
    precision, recall = _rate(tp, tp + fp), _rate(tp, tp + fn)
    f1 = None
    if precision is not None and recall is not None:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    elif tp + fp + fn:
        # Changes were stated or were there to find, and none was found: a captioner that never states a
        # change (precision undefined) scores 0, not "not measured".
        f1 = 0.0
    true_negatives = sum(o.false_change is False for o in unchanged)
    false_changes = sum(o.false_change is True for o in unchanged)
    hallucinated = sum(bool(o.hallucinated) for o in checked)
    return {
        "pairs": len(outcomes),
        "unchanged_pairs": len(unchanged),
        "changed_pairs": len(changed),
        "true_negatives": true_negatives,
        "false_changes": false_changes,
        "true_negative_rate": _rate(true_negatives, len(unchanged)),
        "false_change_rate": _rate(false_changes, len(unchanged)),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "true_positives": tp,
        "false_positives": fp,
        "false_negatives": fn,
        "exact": _rate(sum(o.exact for o in outcomes), len(outcomes)),
        "exact_changed": _rate(sum(o.exact for o in changed), len(changed)),
        "hallucinated": hallucinated,
        "hallucination_checked": len(checked),
        "hallucination_rate": _rate(hallucinated, len(checked)),
        "unread": sum(o.read is None for o in outcomes),
    }


@dataclass
class ChangeLevel:
    """Change-level scores of one system: overall, per category, and each pair's flags."""

    reader: str
    summary: dict
    by_category: dict[str, dict] = field(default_factory=dict)
    per_sample: dict[str, dict] = field(default_factory=dict)  # id -> false_change, hallucinated, exact

    def to_dict(self) -> dict:
        return {"reader": self.reader, **self.summary}


def score_changes(predictions: dict[str, str], pairs: list[IDCPair], reader: ChangeReader) -> ChangeLevel:
    """Score each pair's caption in ``predictions`` change by change with ``reader``."""
    outcomes: dict[str, PairOutcome] = {}
    groups: dict[str, list[PairOutcome]] = {}
    for pair in pairs:
        if pair.id not in predictions:
            raise ValueError(f"predictions: no caption for pair {pair.id!r}")
        result = outcome(reader, pair, predictions[pair.id])
        outcomes[pair.id] = result
        groups.setdefault(pair.category or "uncategorised", []).append(result)
    return ChangeLevel(
        reader=reader.name,
        summary=summarize(list(outcomes.values())),
        by_category={k: summarize(groups[k]) for k in sorted(groups)},
        per_sample={
            pid: {"false_change": o.false_change, "hallucinated": o.hallucinated, "exact": o.exact}
            for pid, o in outcomes.items()
        },
    )


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def format_change_level(levels: dict[str, ChangeLevel | None]) -> str:
    """One text table: each system's change-level figures."""
    columns = (
        ("exact", "exact"),
        ("true_negative_rate", "no-change right"),
        ("false_change_rate", "false change"),
        ("precision", "precision"),
        ("recall", "recall"),
        ("f1", "F1"),
        ("hallucination_rate", "hallucinated"),
    )
    lines = [f"{'change by change':<20}" + "".join(f"{label:>16}" for _, label in columns)]
    for name, level in levels.items():
        if level is None:
            continue
        lines.append(f"{name:<20}" + "".join(f"{_percent(level.summary[key]):>16}" for key, _ in columns))
    first = next(level for level in levels.values() if level is not None)
    counts = first.summary
    lines.append(
        f"({counts['unchanged_pairs']} unchanged and {counts['changed_pairs']} changed pairs, read by the "
        f"{first.reader} reader; false change = unchanged pairs captioned as a change)"
    )
    return "\n".join(lines)


NOT_READABLE = (
    "change by change: not measured: the references of these pairs are free text that no change reader "
    "understands, so false-change rate, change-level precision / recall / F1 and hallucinations cannot be "
    "counted (CIDEr-D and the other caption metrics above still apply)"
)
