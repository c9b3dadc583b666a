"""Evaluate captions of a split against references and baselines; format the tables."""

from __future__ import annotations

from dataclasses import dataclass, field

from idc_engine.data.loading import load_pairs
from idc_engine.data.pair import IDCPair, with_references
from idc_engine.metrics.baselines import BaselineConfig, choose_mean_sentence, nearest_neighbour
from idc_engine.metrics.captions import MAIN_METRICS, METRICS, CaptionScores, category_table, score_captions
from idc_engine.metrics.change_level import (
    NOT_READABLE,
    ChangeLevel,
    ChangeReader,
    choose_reader,
    format_change_level,
    score_changes,
)
from idc_engine.metrics.change_reading import format_reading, readable, reading_accuracy


@dataclass
class SystemResult:
    """One captioner's captions and scores on the evaluated pairs."""

    name: str
    predictions: dict[str, str]
    scores: CaptionScores
    table: dict[str, dict[str, float]]
    note: str = ""
    reading: dict[str, dict[str, float]] | None = None  # exact readings, on shapes-change references
    change_level: ChangeLevel | None = None  # change by change, where a reader reads the references


@dataclass
class EvalReport:
    systems: dict[str, SystemResult] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)  # pairs without a prediction, not scored
    unreferenced: list[str] = field(default_factory=list)  # pairs without reference captions, not scored

    def to_dict(self) -> dict:
        return {
            "left_out": {"count": len(self.left_out), "pairs": self.left_out[:20]},
            "unreferenced": {"count": len(self.unreferenced), "pairs": self.unreferenced[:20]},
            "systems": self._systems_dict(),
        }

    def _systems_dict(self) -> dict:
        return {
            name: {
                "note": s.note,
                "table": s.table,
                "change_reading": s.reading,
                "change_level": s.change_level.to_dict() if s.change_level else None,
                "change_level_by_category": s.change_level.by_category if s.change_level else None,
                "change_flags": s.change_level.per_sample if s.change_level else None,
                "per_sample": s.scores.per_sample,
                "predictions": s.predictions,
            }
            for name, s in self.systems.items()
        }


def score_system(
    name: str, predictions: dict[str, str], pairs: list[IDCPair], note: str = "", reader: ChangeReader | None = None
) -> SystemResult:
    """Caption metrics of ``predictions``, and change by change with ``reader`` (by default the
    registered reader that reads every pair's references, if one does)."""
    references = {p.id: p.captions for p in pairs}
    categories = {p.id: p.category for p in pairs}
    scores = score_captions(predictions, references, METRICS)
    table = category_table(scores, predictions, references, categories)
    reading = reading_accuracy(predictions, pairs) if readable(pairs) else None
    reader = reader or choose_reader(pairs)
    level = score_changes(predictions, pairs, reader) if reader else None
    return SystemResult(name, predictions, scores, table, note, reading, level)


def evaluate(
    pairs: list[IDCPair],
    predictions: dict[str, str],
    train_pairs: list[IDCPair] | None = None,
    baselines: BaselineConfig | None = None,
    nearest: bool = True,
    validation_pairs: list[IDCPair] | None = None,
) -> EvalReport:
    """Score ``predictions`` on ``pairs``; with ``train_pairs``, add the two baselines on the same references.

    The mean sentence is chosen among frequent training captions on ``validation_pairs`` when given
    (and not empty), else on ``train_pairs``. Pairs without reference captions are left out of
    every system's scores and listed in ``unreferenced``; of the others, those without a prediction
    are left out and listed in ``left_out``. The baselines draw only on training and validation
    pairs that have references.
    """
    pairs, unreferenced = with_references(pairs)
    if not pairs:
        raise ValueError(f"pairs: none of the {len(unreferenced)} pairs has reference captions to score against")
    left_out = [p.id for p in pairs if not isinstance(predictions.get(p.id), str)]
    pairs = [p for p in pairs if isinstance(predictions.get(p.id), str)]
    if not pairs:
        raise ValueError(f"predictions: none of the {len(left_out)} pairs has a caption")
    report = EvalReport(left_out=left_out, unreferenced=[p.id for p in unreferenced])
    report.systems["model"] = score_system("model", {p.id: predictions[p.id] for p in pairs}, pairs)
    train_pairs = with_references(train_pairs or [])[0]
    validation_pairs = with_references(validation_pairs or [])[0]
    if train_pairs:
        baselines = baselines or BaselineConfig()
        selection = [p.captions for p in validation_pairs] if validation_pairs else None
        chosen = choose_mean_sentence([p.captions for p in train_pairs], selection, baselines)
        sentence = chosen.sentence
        note = f"always: {sentence!r} (chosen on {chosen.split} among {chosen.candidates} training captions)"
        report.systems["mean_sentence"] = score_system(
            "mean_sentence", {p.id: sentence for p in pairs}, pairs, note=note
        )
        if nearest:
            kept_train, train_images, _ = load_pairs(train_pairs, skip_bad=True)
            kept, images, _ = load_pairs(pairs, skip_bad=True)
            answers = nearest_neighbour(train_images, [p.captions for p in kept_train], images, baselines)
            neighbour = {p.id: a for p, a in zip(kept, answers)}
            scored = [p for p in pairs if p.id in neighbour]
            report.systems["nearest_neighbour"] = score_system(
                "nearest_neighbour", neighbour, scored, note="caption of the closest training pair"
            )
    return report


def format_report(report: EvalReport, main: str = "CIDEr-D", scale: float = 100.0) -> str:
    """Two text tables: main metrics per system, and ``main`` per category for every system."""
    names = list(report.systems)
    levels = {n: report.systems[n].change_level for n in names}
    changes = any(levels.values())
    extra = ("exact", "false change", "change F1") if changes else ()
    lines = [f"{'system':<20}" + "".join(f"{m:>10}" for m in MAIN_METRICS) + "".join(f"{c:>14}" for c in extra)]
    for name in names:
        row = report.systems[name].table["all"]
        line = f"{name:<20}" + "".join(f"{row[m] * scale:>10.1f}" for m in MAIN_METRICS)
        if changes:
            summary = levels[name].summary if levels[name] else {}
            line += "".join(f"{_percent(summary.get(key)):>14}" for key in ("exact", "false_change_rate", "f1"))
        lines.append(line)
    categories = list(report.systems[names[0]].table)
    lines.append("")
    header = f"{main + ' by category':<20}{'pairs':>7}" + "".join(f"{n[:18]:>20}" for n in names)
    if "mean_sentence" in report.systems:
        header += f"{'model/mean':>12}"
    lines.append(header)
    for category in categories:
        cells = [report.systems[n].table.get(category, {}).get(main) for n in names]
        count = int(report.systems[names[0]].table[category]["count"])
        line = f"{category:<20}{count:>7}" + "".join(
            f"{c * scale:>20.1f}" if c is not None else f"{'-':>20}" for c in cells
        )
        if "mean_sentence" in report.systems:
            base = report.systems["mean_sentence"].table[category][main]
            ratio = cells[0] / base if base else float("inf")
            line += f"{ratio:>11.2f}x"
        lines.append(line)
    for name in names:
        if report.systems[name].note:
            lines.append(f"{name}: {report.systems[name].note}")
    if report.left_out:
        lines.append(f"left out: {len(report.left_out)} pairs without a prediction (first: {report.left_out[0]!r})")
    if report.unreferenced:
        lines.append(
            f"left out: {len(report.unreferenced)} pairs without reference captions (first: {report.unreferenced[0]!r})"
        )
    readings = {n: report.systems[n].reading for n in names if report.systems[n].reading is not None}
    if readings:
        lines += ["", format_reading(readings)]
    lines += ["", format_change_level(levels) if changes else NOT_READABLE]
    return "\n".join(lines)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"
