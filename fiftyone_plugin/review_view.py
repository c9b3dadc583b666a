"""What the IDC Review panel shows, computed from the dataset (the panel itself only lays it out).

Kept apart from the panel so that it is tested without a browser: a pair's summary in the modal and
the inputs that belong to it, the per-category chart and the change-level figures of an evaluation
run, the views the grid buttons set (worst pairs, false changes), the agreement of blind reviews and
the heatmap / regions overlay drawn over the two images.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
import urllib.parse

import fiftyone as fo
from bson import ObjectId
from fiftyone import ViewField as F

from fiftyone_plugin.captioning import confidence_field
from fiftyone_plugin.dataset import CAPTIONS, CATEGORY, MODIFIED, PAIR_ID, REFERENCE
from fiftyone_plugin.evaluation import PER_SAMPLE
from fiftyone_plugin.review import UNREVIEWED, review_counts, review_record

SYSTEMS = {"model": "BLIP2IDC", "mean_sentence": "mean sentence", "nearest_neighbour": "nearest neighbour"}
IDC_EVALUATION = "idc_captions"  # the config type of idc's evaluation runs
NOT_IDC = (
    "This panel reviews IDC datasets: groups with a 'reference' and a 'modified' image slice. Import pairs with "
    "*IDC: import a dataset* first."
)
CHANGE_LEVEL = (  # the contract of evaluation results' change_level: key, label, shown x100
    ("true_negative_rate", "true-negative rate"),
    ("false_change_rate", "false changes"),
    ("hallucination_rate", "hallucinations"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("f1", "F1"),
)


def is_idc_dataset(dataset) -> bool:
    return (
        dataset is not None
        and dataset.media_type == "group"
        and {REFERENCE, MODIFIED} <= set(dataset.group_slices or [])
    )


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


def idc_evaluations(dataset) -> list[str]:
    """The dataset's evaluation runs that are idc's (a detection run cannot be charted as captions)."""
    keys = []
    for key in dataset.list_evaluations():
        try:
            kind = dataset.get_evaluation_info(key).config.type
        except Exception:  # a run of another library whose config class is not importable here
            continue
        if kind == IDC_EVALUATION:
            keys.append(key)
    return keys


def _fields_of_type(dataset, kind) -> list[str]:
    schema = dataset.get_field_schema(flat=False)
    return sorted(n for n, f in schema.items() if isinstance(f, fo.EmbeddedDocumentField) and f.document_type is kind)


def pair_key(pair_id: str) -> str:
    """A short name for a pair's own panel inputs: text typed for one pair lives under its key only."""
    return hashlib.sha1(pair_id.encode()).hexdigest()[:12]


def pair_summary(dataset, sample_id: str, eval_key: str | None = None, reviewer: str | None = None) -> dict:
    """Everything the modal shows for the pair of ``sample_id`` (a sample of either slice)."""
    collection = dataset._sample_collection
    group = dataset.group_field
    found = collection.find_one({"_id": ObjectId(sample_id)}, {f"{group}._id": 1, f"{group}.name": 1})
    if found is None:
        raise ValueError(f"sample {sample_id}: no such sample in dataset {dataset.name!r}")
    docs = {d[group]["name"]: d for d in collection.find({f"{group}._id": found[group]["_id"]})}
    reference, modified = docs.get(REFERENCE), docs.get(MODIFIED)
    if reference is None or modified is None:
        raise ValueError(f"sample {sample_id}: its group lacks a {REFERENCE!r} or {MODIFIED!r} sample")
    pair_id = modified[PAIR_ID]
    captions = {}
    for field in caption_fields(dataset):
        value = modified.get(field)
        if isinstance(value, str):
            captions[field] = {"caption": value, "confidence": modified.get(confidence_field(field))}
    scores = {}
    if eval_key:
        for metric, suffix in PER_SAMPLE.items():
            value = modified.get(f"{eval_key}_{suffix}")
            if value is not None:
                scores[metric] = value
    heatmaps = [f for f in _fields_of_type(dataset, fo.Heatmap) if modified.get(f)]
    regions = [f for f in _fields_of_type(dataset, fo.Detections) if modified.get(f)]
    return {
        "pair_id": pair_id,
        "slice": found[group]["name"],
        "modified_sample": str(modified["_id"]),
        "group_id": str(found[group]["_id"]),
        "paths": {"reference": reference["filepath"], "modified": modified["filepath"]},
        "images": {"reference": media_url(reference["filepath"]), "modified": media_url(modified["filepath"])},
        "category": modified.get(CATEGORY),
        "references": list(modified.get(CAPTIONS) or []),
        "captions": captions,
        "review": review_record(dataset, pair_id, reviewer=reviewer),  # a blind reviewer sees only their own
        "scores": scores,
        "heatmaps": heatmaps,
        "regions": regions,
        "docs": {"reference": reference, "modified": modified},
    }


def panel_inputs(summary: dict, caption_field: str | None) -> dict:
    """What the pair's inputs start with: the caption box shows the pair's reviewed caption, else its
    caption in ``caption_field``, else nothing; the flag reason always starts empty."""
    review = summary["review"]
    if review["status"] in ("accepted", "edited") and review["caption"]:
        caption = review["caption"]
    elif caption_field in summary["captions"]:
        caption = summary["captions"][caption_field]["caption"]
    else:
        caption = ""
    return {"caption": caption, "reason": ""}


def shown_pair(summary: dict, caption_field: str | None) -> dict:
    """What an action on this pair carries: the pair, the record's version and the caption the
    reviewer was shown in ``caption_field`` (``None``: there was none), and when it was shown."""
    shown = summary["captions"].get(caption_field) if caption_field else None
    return {
        "pair_id": summary["pair_id"],
        "key": pair_key(summary["pair_id"]),
        "version": summary["review"]["version"],
        "caption_field": caption_field,
        "shown_caption": shown["caption"] if shown else None,
        "shown_at": time.time(),
        "sample_id": summary["modified_sample"],
        "group_id": summary["group_id"],
    }


def _blind(review: dict, reviewer: str | None) -> bool:
    """A pair whose blind reviews are not all in: nobody sees the others' decisions yet."""
    return bool(review["overlap"]) and review["status"] == UNREVIEWED


def summary_markdown(summary: dict, eval_key: str | None, reviewer: str | None = None) -> str:
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
    undoable = review["undoable"]
    if _blind(review, reviewer):
        mine = [v for v in review["votes"] if v["reviewer"] == reviewer]
        state = f"blind review by {review['overlap']} reviewers, {len(review['votes'])} in"
        undoable = len(mine)  # the others' blind reviews are no business of this reviewer's Undo
        if mine:
            state += f"; yours: {mine[0]['status']}" + (f": {mine[0]['caption']}" if mine[0]["caption"] else "")
            state += f" ({mine[0]['flag_reason']})" if mine[0]["flag_reason"] else ""
    else:
        state = review["status"]
        if review["caption"]:
            state += f": {review['caption']}"
        if review["flag_reason"]:
            state += f" ({review['flag_reason']})"
        if review["reviewer"]:
            state += f" · by {review['reviewer']}"
        if review["agreement"]:
            agreement = review["agreement"]
            verdict = "agreed" if agreement["agree"] else "disagreed"
            state += f" · blind reviewers {verdict} (similarity {agreement['similarity']:.2f})"
            if review["votes"]:
                state += ": " + "; ".join(
                    f"{v['reviewer']} {v['status']}" + (f" '{v['caption']}'" if v["caption"] else "")
                    for v in review["votes"]
                )
    lines.append(f"**review:** {state} · version {review['version']} · {undoable} action(s) to undo")
    lease = review["lease"]
    if lease and lease["reviewer"] != reviewer:
        lines.append(f"*leased to {lease['reviewer']} until {lease['until']:%H:%M:%S} UTC*")
    if eval_key:
        scored = ", ".join(f"{m} {v * 100:.1f}" for m, v in summary["scores"].items()) or "not scored"
        lines.append(f"**{eval_key}:** {scored}")
    heatmaps, regions = ", ".join(summary["heatmaps"]) or "none", ", ".join(summary["regions"]) or "none"
    lines.append(f"**heatmaps:** {heatmaps} · **regions:** {regions}")
    return "\n\n".join(lines)


# ------------------------------------------------------------------------------------------- overlay
def _overlay_dir(dataset) -> str:
    return os.path.join(tempfile.gettempdir(), "idc-review-overlays", str(dataset._doc.id))


def overlay_images(dataset, summary: dict, heatmap_field: str | None, regions_field: str | None) -> dict:
    """The two images with the attention heatmap blended in and the difference regions boxed, as
    /media URLs of PNGs drawn on first use (kept per sample and label, so a new map draws anew)."""
    from PIL import Image, ImageDraw

    out = {}
    folder = _overlay_dir(dataset)
    os.makedirs(folder, exist_ok=True)
    for name in (REFERENCE, MODIFIED):
        doc = summary["docs"][name]
        heat = doc.get(heatmap_field) if heatmap_field else None
        boxes = ((summary["docs"][MODIFIED].get(regions_field) or {}).get("detections") or []) if regions_field else []
        stamp = repr((doc["filepath"], heat and heat.get("map"), [b.get("bounding_box") for b in boxes]))
        path = os.path.join(folder, f"{doc['_id']}-{hashlib.sha1(stamp.encode()).hexdigest()[:12]}.png")
        if not os.path.exists(path):
            image = Image.open(doc["filepath"]).convert("RGB")
            if heat is not None and heat.get("map") is not None:
                values = _heatmap_values(heat)
                if values is not None:
                    glow = Image.fromarray(_colour(values)).resize(image.size, Image.BILINEAR)
                    image = Image.blend(image, glow, 0.45)
            draw = ImageDraw.Draw(image)
            width, height = image.size
            for box in boxes:
                x, y, w, h = box["bounding_box"]
                draw.rectangle(
                    [x * width, y * height, (x + w) * width, (y + h) * height],
                    outline=(255, 255, 0),
                    width=max(1, width // 64),
                )
            tmp = f"{path}.{os.getpid()}.tmp.png"
            image.save(tmp)
            os.replace(tmp, path)  # a half-written overlay is never served
        out[name] = media_url(path)
    return out


def _heatmap_values(heat: dict):
    """The map as floats in [0, 1], from FiftyOne's stored heatmap (an encoded numpy array)."""
    import numpy as np
    from fiftyone.core.utils import deserialize_numpy_array

    stored = heat.get("map")
    values = deserialize_numpy_array(stored) if isinstance(stored, (bytes, bytearray)) else stored
    if values is None:
        return None
    values = np.asarray(values, dtype="float32")
    low, high = heat.get("range") or [float(values.min()), float(values.max())]
    return np.clip((values - low) / max(high - low, 1e-6), 0.0, 1.0)


def _colour(values):
    """A blue-to-red colour map (as in the App's heatmaps): uint8 RGB."""
    import numpy as np

    red = np.clip(1.5 - np.abs(4 * values - 3), 0, 1)
    green = np.clip(1.5 - np.abs(4 * values - 2), 0, 1)
    blue = np.clip(1.5 - np.abs(4 * values - 1), 0, 1)
    return (np.stack([red, green, blue], axis=-1) * 255).astype("uint8")


# ------------------------------------------------------------------------------------------- grid
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


def change_level(dataset, eval_key: str) -> dict | None:
    """The run's change-level figures (evaluation results' ``change_level``), None for free-text datasets."""
    results = dataset.load_evaluation_results(eval_key)
    level = getattr(results, "change_level", None)
    return level if isinstance(level, dict) and level.get("true_negative_rate") is not None else None


def change_chart(dataset, eval_key: str) -> list[dict]:
    """One bar trace: CIDEr-D beside the change-level rates (x100); empty when the run has none."""
    level = change_level(dataset, eval_key)
    if level is None:
        return []
    results = dataset.load_evaluation_results(eval_key)
    labels = ["CIDEr-D"] + [label for key, label in CHANGE_LEVEL if level.get(key) is not None]
    values = [round(100 * results.metrics.get("CIDEr-D", 0.0), 1)] + [
        round(100 * level[key], 1) for key, _ in CHANGE_LEVEL if level.get(key) is not None
    ]
    return [{"type": "bar", "name": eval_key, "x": labels, "y": values}]


def change_markdown(dataset, eval_key: str) -> str | None:
    level = change_level(dataset, eval_key)
    if level is None:
        return None
    results = dataset.load_evaluation_results(eval_key)
    cider = 100 * results.metrics.get("CIDEr-D", 0.0)
    unchanged = level.get("unchanged_pairs")
    return (
        f"**{eval_key}:** CIDEr-D {cider:.1f} · true-negative rate **{100 * level['true_negative_rate']:.1f}%**"
        f" on {unchanged} unchanged pairs · false changes {100 * (level.get('false_change_rate') or 0):.1f}%"
        " (click the bar, or *False changes*, to see them)"
    )


def false_change_view(samples, eval_key: str):
    """The pairs of ``samples`` that were unchanged but captioned as a change by ``eval_key``'s model."""
    field = f"{eval_key}_false_change"
    if not samples._dataset.has_sample_field(field):
        raise ValueError(f"eval_key {eval_key!r}: the run wrote no {field!r} (it has no change-level figures)")
    return samples.match(F(field) == True)  # noqa: E712


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


def agreement_markdown(report: dict, times: dict, overlap: dict) -> str:
    """The agreement view: blind reviews per reviewer and overall, and time per decision."""
    lines = [
        f"**overlap:** {100 * overlap['share']:.0f}% of pairs reviewed blind by {overlap['reviewers']} reviewers · "
        f"{report['settled']} settled, {report['pending']} waiting"
    ]
    if report["rate"] is not None:
        disputed = sum(1 for p in report["pairs"] if not p["agree"] and not p["resolved"])
        lines.append(f"**agreement:** {100 * report['rate']:.0f}% of {report['settled']} pairs · {disputed} to resolve")
    if report["reviewers"]:
        lines.append("| reviewer | blind pairs | agreed | rate |\n|---|---|---|---|")
        lines[-1] += "".join(
            f"\n| {name} | {c['pairs']} | {c['agreed']} | {100 * c['rate']:.0f}% |"
            for name, c in sorted(report["reviewers"].items())
        )
    if times:
        lines.append("| reviewer | decisions | median time per pair |\n|---|---|---|")
        lines[-1] += "".join(f"\n| {name} | {t['decisions']} | {t['median_s']:.1f} s |" for name, t in times.items())
    return "\n\n".join(lines)
