"""Did the caption state the right change? Exact readings of shapes-change captions.

CIDEr rewards shared n-grams, so "the red circle was removed" for a red circle that was added still
scores well: the object words match. On shapes-change every reference is one of a known set of
templates, so a caption can be read back into (change, colour, shape, new colour) and compared with
the truth read from the references: the share of pairs whose change type is right, and whose whole
reading (type and object, and the new colour for recolourings) is right. A pair holding two changes
is described by two templates joined with "and"; its reading is the set of both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from idc_engine.data.pair import IDCPair
from idc_engine.data.shapes_change import CHANGE_TYPES, COLORS, SHAPES, TEMPLATES


@dataclass(frozen=True)
class ChangeReading:
    change: str
    color: str | None = None
    shape: str | None = None
    new_color: str | None = None


def _template_pattern(template: str) -> re.Pattern:
    colors = "|".join(COLORS)
    pattern = re.escape(template)
    for name, choices in (("new_color", colors), ("color", colors), ("shape", "|".join(SHAPES))):
        pattern = pattern.replace(re.escape("{" + name + "}"), f"(?P<{name}>{choices})")
    return re.compile(pattern)


_PATTERNS = [(change, _template_pattern(t)) for change in CHANGE_TYPES for t in TEMPLATES[change]]


# Every scored system is read against the same references: each caption is parsed once.
@lru_cache(maxsize=65536)
def read_change(caption: str | None) -> ChangeReading | None:
    """The change ``caption`` states, or None when it is not worded like a shapes-change template."""
    if not caption:
        return None
    text = " ".join(caption.lower().replace(".", " ").split())
    for change, pattern in _PATTERNS:
        match = pattern.fullmatch(text)
        if match:
            return ChangeReading(change, **match.groupdict())
    return None


def read_changes(caption: str | None) -> frozenset | None:
    """The set of changes ``caption`` states: one template per change, joined by "and";
    ``frozenset()`` when it says nothing changed; None when it does not read as templates."""
    if not caption:
        return None
    text = " ".join(caption.lower().replace(".", " ").split())
    readings = [read_change(part) for part in text.split(" and ")]
    if any(r is None for r in readings):
        return None
    if any(r.change == "none" for r in readings):
        # "there is no change and the red circle moved" contradicts itself: not a reading.
        return frozenset() if len(readings) == 1 else None
    return frozenset(readings)


def truth_changes(pair: IDCPair) -> frozenset | None:
    """The changes of a shapes-change pair, read from its first readable reference (None: none reads)."""
    for caption in pair.captions:
        reading = read_changes(caption)
        if reading is not None:
            return reading
    return None


def _types(changes: frozenset) -> list[str]:
    return sorted(c.change for c in changes) or ["none"]


def exactly_right(pair: IDCPair, caption: str | None) -> bool:
    """Whether ``caption`` states exactly the changes of a shapes-change pair (types, colours, shapes)."""
    truth = truth_changes(pair)
    if truth is None:
        raise ValueError(f"pair {pair.id!r}: no reference caption reads as a shapes-change template")
    return read_changes(caption) == truth


def readable(pairs: list[IDCPair]) -> bool:
    """Whether every pair's references state shapes-change changes (so its captions can be read back)."""
    return bool(pairs) and all(truth_changes(p) is not None for p in pairs)


def reading_accuracy(predictions: dict[str, str], pairs: list[IDCPair]) -> dict[str, dict[str, float]]:
    """Per category (and "all"): share of pairs with the right change types, and entirely right; and unread."""
    rows: dict[str, list[tuple[bool, bool, bool]]] = {}
    for pair in pairs:
        if pair.id not in predictions:
            raise ValueError(f"predictions: no caption for pair {pair.id!r}")
        truth, read = truth_changes(pair), read_changes(predictions[pair.id])
        if truth is None:
            raise ValueError(f"pair {pair.id!r}: no reference caption reads as a shapes-change template")
        outcome = (read is not None and _types(read) == _types(truth), read == truth, read is None)
        for key in ("all", pair.category or "uncategorised"):
            rows.setdefault(key, []).append(outcome)
    order = ["all"] + sorted(k for k in rows if k != "all")
    return {
        key: {
            "type": sum(o[0] for o in outcomes) / len(outcomes),
            "exact": sum(o[1] for o in outcomes) / len(outcomes),
            "unread": sum(o[2] for o in outcomes) / len(outcomes),
            "count": len(outcomes),
        }
        for key, outcomes in ((k, rows[k]) for k in order)
    }


def format_reading(tables: dict[str, dict[str, dict[str, float]]]) -> str:
    """One text table: exact / type-right percentages per category for each system."""
    names = list(tables)
    categories = list(tables[names[0]])
    lines = [f"{'right change (exact / type)':<28}{'pairs':>7}" + "".join(f"{n[:18]:>20}" for n in names)]
    for category in categories:
        count = int(tables[names[0]][category]["count"])
        cells = []
        for name in names:
            row = tables[name].get(category)
            cells.append(f"{row['exact'] * 100:>4.0f}% / {row['type'] * 100:>3.0f}%" if row else "-")
        lines.append(f"{category:<28}{count:>7}" + "".join(f"{c:>20}" for c in cells))
    return "\n".join(lines)
