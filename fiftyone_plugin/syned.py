"""Syned variants added to an IDC dataset, each pair tagged ``synthetic`` and pointing to its source.

The engine's ``augment`` writes the variants (images, captions, provenance) under ``out_dir``; their
pairs join the dataset as groups of their own (the source's reference image beside the edited one),
with ``source_pair`` on both slices, so that ``dataset.match(F("source_pair") == pair_id)`` shows an
original's variants. A re-run adds only the variants the dataset does not hold yet.
"""

from __future__ import annotations

from pathlib import Path

from fiftyone import ViewField as F

from fiftyone_plugin.captioning import Cancelled
from fiftyone_plugin.dataset import PAIR_ID, add_pairs, dataset_to_pairs, write_pair_values
from idc_engine.data.manifest import read_manifest
from idc_engine.synth.augment import SYNTHETIC, SynedConfig, augment, load_editor, load_variator

SYNTHETIC_TAG = "synthetic"
SOURCE_FIELD = "source_pair"


def augment_samples(
    samples,
    out_dir,
    config: SynedConfig | None = None,
    editor: str = "procedural",
    variator: str = "template",
    progress=None,
    cancelled=None,
    editor_settings: dict | None = None,
) -> dict:
    """Augment the pairs of ``samples`` (their ``config.splits``) and add the variants to the dataset."""
    config = config or SynedConfig()
    dataset = samples._dataset

    def on_pair(done, total):
        if cancelled is not None and cancelled():
            raise Cancelled(f"augmentation cancelled after {done} of {total} pairs; re-run to resume from {out_dir}")
        if progress is not None:
            progress(done / max(total, 1), f"{done}/{total} pairs augmented")

    loaded = load_editor(editor, settings=editor_settings)
    report = augment(dataset_to_pairs(samples), out_dir, config, loaded, load_variator(variator), progress=on_pair)
    added = add_variants(dataset, read_manifest(Path(out_dir) / SYNTHETIC))
    return {
        "added": added,
        "accepted": report.accepted,
        "variants": report.variants,
        "rejected": dict(report.rejected),
        "caption_rejections": dict(report.caption_rejections),
        "caption_fallbacks": report.caption_fallbacks,
        "skipped": len(report.skipped_sources),
        "editors": dict(report.editors),
        "skipped_examples": [f"{pair}: {why}" for pair, why in report.skipped_sources[:3]],
        "out_dir": str(Path(out_dir).resolve()),
    }


def add_variants(dataset, synthetic) -> int:
    """Add the Syned pairs ``synthetic`` that ``dataset`` does not hold yet, each tagged ``synthetic``
    with ``source_pair`` on both slices; return how many were added (a re-run adds none)."""
    ids = [p.id for p in synthetic]
    present = set(dataset.select_group_slices("modified").match(F(PAIR_ID).is_in(ids)).distinct(PAIR_ID))
    new = [p for p in synthetic if p.id not in present]
    if new:
        add_pairs(dataset, new)
        new_ids = [p.id for p in new]
        dataset.select_group_slices().match(F(PAIR_ID).is_in(new_ids)).tag_samples(SYNTHETIC_TAG)
        write_pair_values(dataset, SOURCE_FIELD, {p.id: p.metadata["source_pair"] for p in new})
    return len(new)
