"""Attention heatmaps and difference regions written back to IDC datasets.

One path serves the operator (``compute_heatmaps``), ``apply_model`` and the sharded workers:
``heatmap_values`` computes a ``fo.Heatmap`` (8-bit, range [0, 255]) for both slices of each pair, each
map at its own image's size, and ``fo.Detections`` of the difference regions on the modified slice,
labelled with the object the caption names where it can be parsed; ``write_heatmaps`` writes them
(with a job mark, once per job). ``heatmaps_for_pairs`` does both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import fiftyone as fo

from fiftyone_plugin.dataset import MODIFIED, PAIR_ID, dataset_to_pairs
from fiftyone_plugin.writeback import JobMark, declare_fields, write_pairs
from idc_engine.attention.maps import AttentionConfig, attention_maps
from idc_engine.attention.regions import (
    RegionConfig,
    aligned_change_map,
    map_regions,
    pixel_regions,
    region_source_for,
)
from idc_engine.data.loading import LoadReport, load_pairs


def heatmap(values) -> fo.Heatmap:
    """A [0, 1] map stored as 8 bits (range [0, 255]): a quarter of the float size in the database."""
    return fo.Heatmap(map=(values.clip(0.0, 1.0) * 255.0 + 0.5).astype("uint8"), range=[0, 255])


def detections(regions) -> fo.Detections:
    return fo.Detections(
        detections=[
            fo.Detection(label=r.label or "change", bounding_box=r.box, confidence=round(r.score, 4)) for r in regions
        ]
    )


@dataclass
class PairHeatmaps:
    """What ``heatmap_values`` computed: the values of each slice by pair id, and what was skipped."""

    modified: dict[str, dict] = field(default_factory=dict)
    reference: dict[str, dict] = field(default_factory=dict)
    report: LoadReport | None = None
    regions: int = 0


def heatmap_fields(heatmap_field: str, regions_field: str | None, mark: JobMark | None = None) -> dict[str, tuple]:
    """The fields a heatmap run writes, for ``declare_fields``."""
    fields = {heatmap_field: (fo.EmbeddedDocumentField, {"embedded_doc_type": fo.Heatmap})}
    if regions_field:
        fields[regions_field] = (fo.EmbeddedDocumentField, {"embedded_doc_type": fo.Detections})
    if mark is not None:
        fields[mark.field] = (fo.StringField, {})
    return fields


def heatmap_values(
    model,
    pairs,
    captions: dict[str, str] | None = None,
    kind: str = "qformer",
    heatmap_field: str = "idc_attention",
    regions_field: str | None = "idc_regions",
    region_source: str = RegionConfig.source,
    batch_size: int = 8,
    progress=None,
    cancelled=None,
) -> PairHeatmaps:
    """Compute ``kind`` maps for ``pairs`` (each slice's map at its own image's size) and, if
    ``regions_field``, the difference regions on the modified slice (from ``region_source``, see
    ``region_source_for``). A pair whose image cannot be read is skipped and counted in the report."""
    source = region_source_for(region_source, model.config.encoding)
    captions = captions or {}
    pairs, images, report = load_pairs(pairs, skip_bad=True)
    config = AttentionConfig(kinds=(kind,), batch_size=batch_size)
    maps = []
    for start in range(0, len(images), batch_size):
        if cancelled is not None and cancelled():
            raise RuntimeError(f"cancelled after {start} of {len(images)} pairs; nothing was written")
        maps.extend(attention_maps(model, images[start : start + batch_size], config))
        if progress is not None:
            progress(len(maps) / max(len(images), 1), f"{len(maps)}/{len(images)} pairs")

    result = PairHeatmaps(report=report)
    for pair, pair_images, pair_maps in zip(pairs, images, maps):
        reference_map, modified_map = pair_maps.maps[kind]
        result.reference[pair.id] = {heatmap_field: heatmap(reference_map)}
        result.modified[pair.id] = {heatmap_field: heatmap(modified_map)}
        if regions_field:
            caption = captions.get(pair.id)
            if source == "attention":
                found = map_regions(aligned_change_map(reference_map, modified_map), caption, RegionConfig())
            else:
                found = pixel_regions(*pair_images, caption, RegionConfig())
            result.modified[pair.id][regions_field] = detections(found)
            result.regions += len(found)
    return result


def write_heatmaps(
    dataset, computed: PairHeatmaps, heatmap_field: str, regions_field: str | None, mark: JobMark | None = None
) -> int:
    """Write computed maps (and regions) to both slices; with ``mark``, once per job (see ``write_pairs``)."""
    declare_fields(dataset, heatmap_fields(heatmap_field, regions_field, mark))
    return write_pairs(dataset, computed.modified, computed.reference, mark=mark)


def heatmaps_for_pairs(
    dataset,
    model,
    pairs,
    captions: dict[str, str] | None = None,
    kind: str = "qformer",
    heatmap_field: str = "idc_attention",
    regions_field: str | None = "idc_regions",
    region_source: str = RegionConfig.source,
    batch_size: int = 8,
    progress=None,
    cancelled=None,
) -> dict:
    """Compute ``kind`` maps for ``pairs`` (IDCPairs of ``dataset``) and write them, and regions, back.

    A pair whose image cannot be read is skipped and counted. Nothing is written until every pair
    is done, so a cancelled run leaves the dataset unchanged.
    """
    computed = heatmap_values(
        model, pairs, captions, kind, heatmap_field, regions_field, region_source, batch_size, progress, cancelled
    )
    write_heatmaps(dataset, computed, heatmap_field, regions_field)
    report = computed.report
    return {
        "pairs": len(computed.modified),
        "skipped": report.skipped_count,
        "skipped_examples": [reason for _, reason in report.skipped[:3]],
        "kind": kind,
        "regions": computed.regions,
    }


def captions_of(samples, caption_field: str | None) -> dict[str, str]:
    """pair id -> caption in ``caption_field`` (regions are named from it), where there is one."""
    modified = samples.select_group_slices(MODIFIED)
    if not caption_field or not modified.has_field(caption_field):
        return {}
    return {p: c for p, c in zip(*modified.values([PAIR_ID, caption_field])) if isinstance(c, str)}


def compute_heatmaps(
    samples,
    model,
    kind: str = "qformer",
    heatmap_field: str = "idc_attention",
    regions_field: str | None = "idc_regions",
    region_source: str = RegionConfig.source,
    caption_field: str | None = "idc_caption",
    batch_size: int = 8,
    progress=None,
    cancelled=None,
) -> dict:
    """Heatmaps (and regions) for every pair in ``samples``, regions named from ``caption_field``."""
    return heatmaps_for_pairs(
        samples._dataset,
        model,
        dataset_to_pairs(samples),
        captions_of(samples, caption_field),
        kind=kind,
        heatmap_field=heatmap_field,
        regions_field=regions_field,
        region_source=region_source,
        batch_size=batch_size,
        progress=progress,
        cancelled=cancelled,
    )
