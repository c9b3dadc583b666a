"""What the IDC Review panel shows, computed from the dataset (the panel itself only lays it out).

Kept apart from the panel so that it is tested without a browser: a pair's summary in the modal,
the per-category chart and the views the grid buttons set (worst pairs, the review queue).
"""

from __future__ import annotations

import urllib.parse

import fiftyone as fo
from fiftyone import ViewField as F

from fiftyone_plugin.captioning import confidence_field
from fiftyone_plugin.dataset import CAPTIONS, CATEGORY, GROUP_FIELD, MODIFIED, PAIR_ID, REFERENCE
from fiftyone_plugin.evaluation import PER_SAMPLE
from fiftyone_plugin.review import review_counts, review_record

SYSTEMS = {"model": "BLIP2IDC", "mean_sentence": "mean sentence", "nearest_neighbour": "nearest neighbour"}


def media_url(path: str) -> str:
    """The App server's URL of a local image (relative: the App and /media share one server)."""
    return "/media?filepath=" + urllib.parse.quote(str(path), safe="")


def caption_fields(dataset) -> list[str]:
    """String fields of the modified slice that hold captions (not ids, paths or categories)."""
    schema = dataset.select_group_slices(MODIFIED).get_field_schema(flat=True)
    skip = {PAIR_ID, "filepath", CAPTIONS, CATEGORY}
    return sorted(
        name
        for name, kind in schema.items()
        if isinstance(kind, fo.StringField) and "." not in name and name not in skip
    )


def _fields_of_type(dataset, kind) -> list[str]:
    schema = dataset.get_field_schema(flat=False)
    return sorted(n for n, f in schema.items() if isinstance(f, fo.EmbeddedDocumentField) and f.document_type is kind)


def pair_summary(dataset, sample_id: str, eval_key: str | None = None) -> dict:
    """Everything the modal shows for the pair of ``sample_id`` (a sample of either slice)."""
    sample = dataset.select_group_slices().select(sample_id).first()
    group = dataset.get_group(sample[GROUP_FIELD].id)
    reference, modified = group.get(REFERENCE), group.get(MODIFIED)
    if reference is None or modified is None:
        raise ValueError(f"sample {sample_id}: its group lacks a {REFERENCE!r} or {MODIFIED!r} sample")
    pair_id = modified[PAIR_ID]
    captions = {}
    for field in caption_fields(dataset):
        value = modified[field] if modified.has_field(field) else None
        if isinstance(value, str):
            confidence = (
                modified.get_field(confidence_field(field)) if modified.has_field(confidence_field(field)) else None
            )
            captions[field] = {"caption": value, "confidence": confidence}
    scores = {}
    if eval_key:
        for metric, suffix in PER_SAMPLE.items():
            name = f"{eval_key}_{suffix}"
            if modified.has_field(name) and modified[name] is not None:
                scores[metric] = modified[name]
    heatmaps = [f for f in _fields_of_type(dataset, fo.Heatmap) if modified.has_field(f) and modified[f] is not None]
    regions = [f for f in _fields_of_type(dataset, fo.Detections) if modified.has_field(f) and modified[f] is not None]
    return {
        "pair_id": pair_id,
        "slice": sample[GROUP_FIELD].name,
        "modified_sample": modified.id,
        "images": {"reference": media_url(reference.filepath), "modified": media_url(modified.filepath)},
        "category": modified[CATEGORY] if modified.has_field(CATEGORY) else None,
        "references": list(modified[CAPTIONS] or []) if modified.has_field(CAPTIONS) else [],
        "captions": captions,
        "review": review_record(dataset, pair_id),
        "scores": scores,
        "heatmaps": heatmaps,
        "regions": regions,
    }


def summary_markdown(summary: dict, eval_key: str | None) -> str:
    review = summary["review"]
    lines = [f"**pair** `{summary['pair_id']}` · category **{summary['category'] or 'none'}**"]
    for field, value in summary["captions"].items():
        confidence = value["confidence"]
        sure = f" (confidence {confidence:.2f})" if isinstance(confidence, float) else ""
        lines.append(f"- `{field}`: {value['caption']}{sure}")
    if not summary["captions"]:
        lines.append("- no caption yet: run *IDC: caption the differences*")
    references = "; ".join(summary["references"][:3]) or "none (not described yet)"
    lines.append(f"**references:** {references}")
    state = review["status"]
    if review["caption"]:
        state += f": {review['caption']}"
    if review["flag_reason"]:
        state += f" ({review['flag_reason']})"
    lines.append(f"**review:** {state} · {review['undoable']} action(s) to undo")
    if eval_key:
        scored = ", ".join(f"{m} {v * 100:.1f}" for m, v in summary["scores"].items()) or "not scored"
        lines.append(f"**{eval_key}:** {scored}")
    heatmaps, regions = ", ".join(summary["heatmaps"]) or "none", ", ".join(summary["regions"]) or "none"
    lines.append(f"**heatmaps:** {heatmaps} · **regions:** {regions}")
    return "\n\n".join(lines)


def category_chart(dataset, eval_key: str) -> list[dict]:
    """Plotly bar traces: per-category CIDEr-D (x100) of the model and of the baselines of a run."""
    results = dataset.load_evaluation_results(eval_key)
    categories = sorted(results.per_category)
    traces = [
        {
            "type": "bar",
            "name": SYSTEMS["model"],
            "x": categories,
            "y": [round(100 * results.per_category[c]["CIDEr-D"], 1) for c in categories],
        }
    ]
    for name, baseline in (results.baselines or {}).items():
        table = baseline["table"]
        traces.append(
            {
                "type": "bar",
                "name": SYSTEMS.get(name, name),
                "x": categories,
                "y": [round(100 * table[c]["CIDEr-D"], 1) if c in table else None for c in categories],
            }
        )
    return traces


def category_view(samples, category: str):
    return samples.match(F(CATEGORY) == category)


def worst_pairs_view(samples, eval_key: str, count: int = 25):
    """The pairs with the lowest per-pair CIDEr-D of ``eval_key``, worst first."""
    field = f"{eval_key}_cider"
    return samples.match(F(field).exists()).sort_by(field).limit(count)


def progress_markdown(samples) -> str:
    counts = review_counts(samples)
    total = sum(counts.values())
    return "**review progress:** " + " · ".join(f"{status} {n}" for status, n in counts.items()) + f" of {total} pairs"
