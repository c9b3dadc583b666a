"""Attention heatmaps and difference regions written back to IDC datasets.

``compute_heatmaps`` stores a ``fo.Heatmap`` (8-bit, range [0, 255]) on both slices of each group, each map at
its own image's size, and ``fo.Detections`` of the difference regions on the modified slice,
labelled with the object the caption names where it can be parsed.
"""

from __future__ import annotations

import fiftyone as fo

from fiftyone_plugin.dataset import GROUP_FIELD, MODIFIED, REFERENCE, dataset_to_pairs
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
    """Compute ``kind`` maps for every pair in ``samples`` and write them (and regions) back.

    Nothing is written until every pair is done, so a cancelled run leaves the dataset unchanged.
    """
    if region_source not in REGION_SOURCES:
        raise ValueError(f"region_source must be one of {REGION_SOURCES}, got {region_source!r}")
    dataset = samples._dataset
    pairs = dataset_to_pairs(samples)
    pairs, images, report = load_pairs(pairs, skip_bad=True)
    captions = {}
    if caption_field and samples.select_group_slices(MODIFIED).has_field(caption_field):
        captions = dict(zip(*samples.select_group_slices(MODIFIED).values(["pair_id", caption_field])))
    config = AttentionConfig(kinds=(kind,), batch_size=batch_size)
    maps = []
    for start in range(0, len(images), batch_size):
        if cancelled is not None and cancelled():
            raise RuntimeError(f"cancelled after {start} of {len(images)} pairs; nothing was written")
        maps.extend(attention_maps(model, images[start : start + batch_size], config))
        if progress is not None:
            progress(len(maps) / max(len(images), 1), f"{len(maps)}/{len(images)} pairs")

    both = dataset.select_group_slices([REFERENCE, MODIFIED])
    ids, slices, pair_ids = both.values(["id", f"{GROUP_FIELD}.name", "pair_id"])
    index = {p.id: i for i, p in enumerate(pairs)}
    heatmaps, regions = {}, {}
    for sid, slice_name, pid in zip(ids, slices, pair_ids):
        if pid not in index:
            continue
        reference_map, modified_map = maps[index[pid]].maps[kind]
        heatmaps[sid] = heatmap(reference_map if slice_name == REFERENCE else modified_map)
        if regions_field and slice_name == MODIFIED:
            caption = captions.get(pid)
            if region_source == "attention":
                found = map_regions(aligned_change_map(reference_map, modified_map), caption, RegionConfig())
            else:
                found = pixel_regions(*images[index[pid]], caption, RegionConfig())
            regions[sid] = detections(found)
    dataset.set_values(heatmap_field, heatmaps, key_field="id")
    if regions_field:
        dataset.set_values(regions_field, regions, key_field="id")
    return {
        "pairs": len(pairs),
        "skipped": report.skipped_count,
        "kind": kind,
        "regions": sum(len(d.detections) for d in regions.values()),
    }
