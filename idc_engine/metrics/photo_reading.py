"""Did the caption state the right edit? Readings of photo-edits captions.

Every photo-edits reference is one of a known set of templates, so a caption can be read back into
(kind, colour, place, detail) — detail being the added shape, the style, the global look or the local
change — and compared with the truth that the generator stored in ``metadata["edit"]``. A caption that
matches no template reads as None (unread). "Exact" follows the preset's target: kind, colour and place
right; "exact with detail" also asks for the shape / style / look / local change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from idc_engine.data.pair import IDCPair
from idc_engine.data.photo_edits import (
    ADD_SHAPES,
    GLOBAL_TEMPLATES,
    GRID,
    LOCAL_TEMPLATES,
    STYLE_NAMES,
    TEMPLATES,
)
from idc_engine.synth.procedural import NAMED_COLORS


@dataclass(frozen=True)
class EditReading:
    kind: str
    color: str | None = None
    place: str | None = None
    detail: str | None = None  # shape (add), style, global look or local change

    def core(self) -> tuple[str, str | None, str | None]:
        return self.kind, self.color, self.place


def _alternatives(words) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_COLOR = _alternatives(NAMED_COLORS)
_PLACE = _alternatives(GRID)
_SLOTS = {
    "{a_color}": rf"an? (?P<color>{_COLOR})",
    "{color}": rf"(?P<color>{_COLOR})",
    "{shape}": rf"(?P<shape>{_alternatives(ADD_SHAPES)})",
    "{where}": rf"(?:in|at|on) the (?P<place>{_PLACE})",
    "{from_where}": rf"from the (?P<place>{_PLACE})",
    "{style}": rf"(?P<style>{_alternatives(STYLE_NAMES.values())})",
}


def _pattern(template: str) -> re.Pattern:
    pattern = re.escape(template)
    for slot, regex in _SLOTS.items():
        pattern = pattern.replace(re.escape(slot), regex)
    return re.compile(pattern)


def _patterns() -> list[tuple[str, str | None, re.Pattern]]:
    found = [(kind, None, _pattern(t)) for kind, templates in TEMPLATES.items() for t in templates]
    found += [("global", look, _pattern(t)) for look, templates in GLOBAL_TEMPLATES.items() for t in templates]
    found += [("local", change, _pattern(t)) for change, templates in LOCAL_TEMPLATES.items() for t in templates]
    return found


_PATTERNS = _patterns()
_STYLE_OF = {noun: style for style, noun in STYLE_NAMES.items()}


def _normalise(caption: str) -> str:
    text = caption.lower().replace("centre", "center").replace("grey", "gray").replace("colour", "color")
    return " ".join(text.replace(".", " ").split())


@lru_cache(maxsize=65536)
def read_edit(caption: str | None) -> EditReading | None:
    """The edit ``caption`` states, or None when it is not worded like a photo-edits template."""
    if not caption:
        return None
    text = _normalise(caption)
    for kind, detail, pattern in _PATTERNS:
        match = pattern.fullmatch(text)
        if match:
            fields = match.groupdict()
            if kind == "style":
                detail = _STYLE_OF[fields["style"]]
            elif kind == "add":
                detail = fields["shape"]
            return EditReading(kind, fields.get("color"), fields.get("place"), detail)
    return None


def truth(pair: IDCPair) -> EditReading:
    """The edit a photo-edits pair really carries (``metadata["edit"]``)."""
    edit = pair.metadata.get("edit") if isinstance(pair.metadata, dict) else None
    if not isinstance(edit, dict) or "kind" not in edit:
        raise ValueError(f"pair {pair.id!r}: metadata has no photo-edits 'edit' record (kind, color, place)")
    detail = edit.get("shape") if edit["kind"] == "add" else edit.get("effect")
    return EditReading(edit["kind"], edit.get("color"), edit.get("place"), detail)


def readable(pairs: list[IDCPair]) -> bool:
    """Whether every pair carries a photo-edits truth (so captions of it can be read back)."""
    return bool(pairs) and all(isinstance(p.metadata, dict) and isinstance(p.metadata.get("edit"), dict) for p in pairs)


def reading_accuracy(predictions: dict[str, str], pairs: list[IDCPair]) -> dict[str, dict[str, float]]:
    """Per category (and "all"): shares of pairs with the right kind, right (kind, colour, place), right with
    the detail too, and unread; plus, on unchanged pairs, the share called a change (anything but "none"),
    and in "all", the share of changed pairs captioned as no change (what a no-change decision can cost).
    Where the edits have a place, ``place``: the share of captions that name it, whatever kind they read
    (whether a model localises apart from whether it tells a painted area from an added shape)."""
    rows: dict[str, list[tuple[bool, bool, bool, bool]]] = {}
    placed: dict[str, list[bool]] = {}
    changed_said_none: list[bool] = []
    for pair in pairs:
        if pair.id not in predictions:
            raise ValueError(f"predictions: no caption for pair {pair.id!r}")
        real, read = truth(pair), read_edit(predictions[pair.id])
        outcome = (
            read is not None and read.kind == real.kind,
            read is not None and read.core() == real.core(),
            read == real,
            read is None,
        )
        for key in ("all", real.kind):
            rows.setdefault(key, []).append(outcome)
            if real.place is not None:
                placed.setdefault(key, []).append(read is not None and read.place == real.place)
        if real.kind != "none":
            changed_said_none.append(read is not None and read.kind == "none")
    order = ["all"] + [k for k in (*TEMPLATES, "global", "local") if k in rows and k != "all"]
    order += sorted(k for k in rows if k not in order)
    table = {
        key: {
            "type": sum(o[0] for o in rows[key]) / len(rows[key]),
            "exact": sum(o[1] for o in rows[key]) / len(rows[key]),
            "exact_detail": sum(o[2] for o in rows[key]) / len(rows[key]),
            "unread": sum(o[3] for o in rows[key]) / len(rows[key]),
            "count": len(rows[key]),
        }
        for key in order
    }
    for key, hits in placed.items():
        table[key]["place"] = sum(hits) / len(hits)
    if "none" in table:
        table["none"]["called_a_change"] = 1.0 - table["none"]["type"]
    if changed_said_none:
        table["all"]["changed_said_no_change"] = sum(changed_said_none) / len(changed_said_none)
    return table


def format_reading(tables: dict[str, dict[str, dict[str, float]]]) -> str:
    """One text table: exact (kind, colour, place) / kind-right percentages per category for each system,
    then the share of edits placed right, of unchanged pairs called a change and of changed pairs captioned
    as no change."""
    names = list(tables)
    categories = list(tables[names[0]])
    lines = [f"{'right edit (exact / kind)':<28}{'pairs':>7}" + "".join(f"{n[:18]:>20}" for n in names)]
    for category in categories:
        count = int(tables[names[0]][category]["count"])
        cells = []
        for name in names:
            row = tables[name].get(category)
            cells.append(f"{row['exact'] * 100:>4.0f}% / {row['type'] * 100:>3.0f}%" if row else "-")
        lines.append(f"{category:<28}{count:>7}" + "".join(f"{c:>20}" for c in cells))
    # The two errors a no-change decision trades against each other.
    unchanged = [f"{n} {t['none']['called_a_change']:.0%}" for n, t in tables.items() if "none" in t]
    hidden = [
        f"{n} {t['all']['changed_said_no_change']:.0%}"
        for n, t in tables.items()
        if "changed_said_no_change" in t.get("all", {})
    ]
    placed = [f"{n} {t['all']['place']:.0%}" for n, t in tables.items() if "place" in t.get("all", {})]
    if placed:
        lines.append("edits placed right (whatever kind was read): " + ", ".join(placed))
    if unchanged:
        lines.append("unchanged pairs called a change: " + ", ".join(unchanged))
    if hidden:
        lines.append("changed pairs captioned as no change: " + ", ".join(hidden))
    return "\n".join(lines)
