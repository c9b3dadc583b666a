"""Attention heatmaps and difference regions written back to IDC datasets.

One path, ``heatmaps_for_pairs``, serves the operator (``compute_heatmaps``) and ``apply_model``: it
stores a ``fo.Heatmap`` (8-bit, range [0, 255]) on both slices of each pair, each map at its own
image's size, and ``fo.Detections`` of the difference regions on the modified slice, labelled with
the object the caption names where it can be parsed.
"""

from __future__ import annotations

import fiftyone as fo

from fiftyone_plugin.dataset import GROUP_FIELD, MODIFIED, PAIR_ID, REFERENCE, dataset_to_pairs
from idc_engine.attention.maps import AttentionConfig, attention_maps
from idc_engine.attention.regions import RegionConfig, aligned_change_map, map_regions, pixel_regions
from idc_engine.data.loading import load_pairs

REGION_SOURCES = ("attention", "pixels")


def heatmap(values) -> fo.Heatmap:
    """A [0, 1] map stored as 8 bits (range [0, 255]): a quarter of the float size in the database."""
    return fo.Heatmap(map=(values.clip(0.0, 1.0) * 255.0 + 0.5).astype("uint8"), range=[0, 255])


def detections(regions) -> fo.Detections:
    return fo.Detections(
        detections=[
            fo.Detection(label=r.label or "change", bounding_box=r.box, confidence=round(r.score, 4)) for r in regions
        ]
    )


def heatmaps_for_pairs(
    dataset,
    model,
    pairs,
    captions: dict[str, str] | None = None,
    kind: str = "qformer",
    heatmap_field: str = "idc_attention",
    regions_field: str | None = "idc_regions",
    region_source: str = "attention",
    batch_size: int = 8,
    progress=None,
    cancelled=None,
) -> dict:
    """Compute ``kind`` maps for ``pairs`` (IDCPairs of ``dataset``) and write them, and regions, back.

    A pair whose image cannot be read is skipped and counted. Nothing is written until every pair
    is done, so a cancelled run leaves the dataset unchanged.
    """
    if region_source not in REGION_SOURCES:
        raise ValueError(f"region_source must be one of {REGION_SOURCES}, got {region_source!r}")
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

    index = {p.id: i for i, p in enumerate(pairs)}
    both = dataset.select_group_slices([REFERENCE, MODIFIED]).match({PAIR_ID: {"$in": list(index)}})
    heatmaps, regions = {}, {}
    for sid, slice_name, pid in zip(*both.values(["id", f"{GROUP_FIELD}.name", PAIR_ID])):
        reference_map, modified_map = maps[index[pid]].maps[kind]
        heatmaps[sid] = heatmap(reference_map if slice_name == REFERENCE else modified_map)
        if regions_field and slice_name == MODIFIED:
            caption = captions.get(pid)
            if region_source == "attention":
                found = map_regions(aligned_change_map(reference_map, modified_map), caption, RegionConfig())
            else:
                found = pixel_regions(*images[index[pid]], caption, RegionConfig())
            regions[sid] = detections(found)
    if heatmaps:
        dataset.set_values(heatmap_field, heatmaps, key_field="id")
    if regions:
        dataset.set_values(regions_field, regions, key_field="id")
    return {
        "pairs": len(pairs),
        "skipped": report.skipped_count,
        "skipped_examples": [reason for _, reason in report.skipped[:3]],
        "kind": kind,
        "regions": sum(len(d.detections) for d in regions.values()),
    }


def compute_heatmaps(
    samples,
    model,
    kind: str = "qformer",
    heatmap_field: str = "idc_attention",
    regions_field: str | None = "idc_regions",
    region_source: str = "attention",
    caption_field: str | None = "idc_caption",
    batch_size: int = 8,
    progress=None,
    cancelled=None,
) -> dict:
    """Heatmaps (and regions) for every pair in ``samples``, regions named from ``caption_field``."""
    modified = samples.select_group_slices(MODIFIED)
    captions = {}
    if caption_field and modified.has_field(caption_field):
        captions = {p: c for p, c in zip(*modified.values([PAIR_ID, caption_field])) if isinstance(c, str)}
    return heatmaps_for_pairs(
        samples._dataset,
        model,
        dataset_to_pairs(samples),
        captions,
        kind=kind,
        heatmap_field=heatmap_field,
        regions_field=regions_field,
        region_source=region_source,
        batch_size=batch_size,
        progress=progress,
        cancelled=cancelled,
    )
