"""Captions written back to IDC datasets: one path for the operator and for ``apply_model``.

The engine's ``caption_idc_pairs`` captions the pairs (a pair whose image cannot be read is skipped
and counted, never its whole batch); ``write_captions`` stores each caption on both slices of its pair,
with the model's confidence beside it in ``<field>_confidence``. It is the one writer of captions: the
one-worker operator, ``apply_model`` and the sharded workers (with a job mark) all go through it.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import fiftyone as fo

from fiftyone_plugin.dataset import dataset_to_pairs
from fiftyone_plugin.writeback import JobMark, declare_fields, write_pairs
from idc_engine.inference.caption import CaptionResult, GenerationConfig, caption_idc_pairs


class Cancelled(Exception):
    """Raised from a progress callback when the user cancelled the operation."""


def confidence_field(label_field: str) -> str:
    return f"{label_field}_confidence"


CAPTION_SOURCES = "idc_caption_sources"  # dataset.info key: caption field -> the model that wrote it


def caption_fields(label_field: str, mark: JobMark | None = None) -> dict[str, tuple]:
    """The fields a caption run writes, for ``declare_fields``."""
    fields = {label_field: (fo.StringField, {}), confidence_field(label_field): (fo.FloatField, {})}
    if mark is not None:
        fields[mark.field] = (fo.StringField, {})
    return fields


def write_captions(
    dataset, label_field: str, result: CaptionResult, model_spec: str | None = None, mark: JobMark | None = None
) -> int:
    """Store every caption of ``result`` (and its confidence) on both slices of its pair, and which
    model wrote the field (``caption_source``), so that retraining can start from it.

    With ``mark`` (a sharded job), each sample is written only where the job's mark is absent, in the
    same update that sets it (``fiftyone_plugin.writeback``). Returns how many samples were written.
    """
    declare_fields(dataset, caption_fields(label_field, mark))
    confidences = confidence_field(label_field)
    values = {
        pair_id: {label_field: caption, confidences: round(result.confidences[pair_id], 5)}
        for pair_id, caption in result.captions.items()
    }
    written = write_pairs(dataset, values, mark=mark)
    if model_spec is not None and result.captions:
        record_caption_source(dataset, label_field, model_spec)
    return written


def read_caption_file(path) -> CaptionResult:
    """The captions of an ``idc caption`` output (JSONL of ``id``, ``caption``, ``confidence``), ready
    for ``write_captions``; a line without a confidence is named."""
    result = CaptionResult()
    with open(path) as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            record = json.loads(line)
            if "confidence" not in record:
                raise ValueError(f"{path}, line {number} (pair {record.get('id')!r}): no 'confidence'")
            result.captions[record["id"]] = record["caption"]
            result.confidences[record["id"]] = record["confidence"]
    return result


def record_caption_source(dataset, label_field: str, model_spec):
    sources = dict(dataset.info.get(CAPTION_SOURCES) or {})
    sources[label_field] = {"model": str(model_spec), "at": datetime.now(timezone.utc).isoformat()}
    dataset.info[CAPTION_SOURCES] = sources
    dataset.save()


def caption_source(dataset, label_field: str) -> str | None:
    """The model (path, hub id, adapter folder or 'tiny') that last wrote ``label_field``, if known."""
    return (dataset.info.get(CAPTION_SOURCES) or {}).get(label_field, {}).get("model")


def caption_samples(
    samples,
    model,
    label_field: str = "idc_caption",
    generation: GenerationConfig | None = None,
    progress=None,
    cancelled=None,
) -> dict:
    """Caption every pair in ``samples`` and write ``label_field`` on both slices of its group.

    Captions are written in one go after all are computed, so a cancelled run writes nothing.
    """
    if not label_field.isidentifier():
        raise ValueError(f"label_field must be a valid identifier, got {label_field!r}")
    pairs = dataset_to_pairs(samples)

    def on_batch(done, total):
        if cancelled is not None and cancelled():
            raise Cancelled(f"captioning cancelled after {done} of {total} pairs; nothing was written")
        if progress is not None:
            progress(done / max(total, 1), f"{done}/{total} pairs")

    result = caption_idc_pairs(model, pairs, generation or GenerationConfig(), progress=on_batch)
    write_captions(samples._dataset, label_field, result, model_spec=getattr(model, "spec", None))
    return {
        "captioned": len(result.captions),
        "skipped": result.report.skipped_count,
        "skipped_examples": [reason for _, reason in result.report.skipped[:3]],
        "label_field": label_field,
    }
