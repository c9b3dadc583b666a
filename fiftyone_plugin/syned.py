"""Syned variants added to an IDC dataset, each pair tagged ``synthetic`` and pointing to its source.

The engine's ``augment`` writes the variants (images, captions, provenance) under ``out_dir``; their
pairs join the dataset as groups of their own (the source's reference image beside the edited one),
with ``source_pair`` on both slices, so that ``dataset.match(F("source_pair") == pair_id)`` shows an
original's variants.

Adding is idempotent and safe to interrupt anywhere: each variant has a deterministic id
(``syned_variant``: source pair, variant index and the run's seed) and a deterministic group id, a
unique index on (``syned_variant``, slice) lets the database refuse a second copy, and every sample
is added whole (tag, ``source_pair`` and id written with it). The reference samples of a batch go in
first, then the modified ones, so an interrupted run leaves at most reference samples without their
partner, which the next run completes; nothing is added twice.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import fiftyone as fo
from bson import ObjectId
from pymongo.errors import BulkWriteError

from fiftyone_plugin import faults
from fiftyone_plugin.captioning import Cancelled
from fiftyone_plugin.dataset import (
    GROUP_FIELD,
    MODIFIED,
    PAIR_ID,
    REFERENCE,
    SOURCE_FIELD,
    VARIANT_FIELD,
    check_grouped,
    dataset_to_pairs,
    declare_pair_fields,
    index_unique_per_slice,
    pair_sample,
)
from fiftyone_plugin.writeback import declare_fields
from idc_engine.data.manifest import read_manifest
from idc_engine.synth.augment import SYNTHETIC, SynedConfig, augment, load_editor, load_variator

SYNTHETIC_TAG = "synthetic"
# A concurrent writer may add some of the same samples between our look and our insert: look again.
_INSERT_TRIES = 5


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
    added = add_variants(dataset, read_manifest(Path(out_dir) / SYNTHETIC), config.seed)
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


def variant_id(source_pair: str, variant: int, seed: int) -> str:
    """The deterministic id of variant ``variant`` of ``source_pair`` made by a Syned run of ``seed``."""
    return f"{source_pair}--syn{variant}--seed{seed}"


def prepare_for_variants(dataset):
    """Declare the variants' fields and their unique index (before several workers add variants)."""
    check_grouped(dataset)
    declare_pair_fields(dataset)
    declare_fields(dataset, {SOURCE_FIELD: (fo.StringField, {}), VARIANT_FIELD: (fo.StringField, {})}, of_pairs=True)
    index_unique_per_slice(dataset, VARIANT_FIELD)


def add_variants(dataset, synthetic, seed: int) -> int:
    """Add the Syned pairs ``synthetic`` (made by a run of ``seed``) that ``dataset`` does not hold
    whole yet; return how many pairs were completed (a re-run completes none)."""
    prepare_for_variants(dataset)
    by_id = {variant_id(p.metadata["source_pair"], p.metadata["variant"], seed): p for p in synthetic}
    by_id = _without_earlier_copies(dataset, by_id)
    _add_missing(dataset, by_id, REFERENCE)
    faults.boundary("variants.between_slices")
    return _add_missing(dataset, by_id, MODIFIED)


def _without_earlier_copies(dataset, by_id: dict) -> dict:
    """Leave out variants whose pair id is present without a variant id (added before variants had
    one); refuse those present under another run's id (another seed) rather than mix the two. Both
    slices are looked at: a run stopped between them left its references alone."""
    pair_ids = [p.id for p in by_id.values()]
    present = dataset.select_group_slices([REFERENCE, MODIFIED]).match({PAIR_ID: {"$in": pair_ids}})
    earlier: dict[str, set] = {}
    for pair_id, key, slice_name in zip(*present.values([PAIR_ID, VARIANT_FIELD, f"{GROUP_FIELD}.name"])):
        earlier.setdefault(pair_id, set()).add((key, slice_name))
    kept = {}
    for key, pair in by_id.items():
        found = earlier.get(pair.id, set())
        other = next((k for k, _ in sorted(found, key=str) if k not in (None, key)), None)
        if other is not None:
            raise ValueError(
                f"pair {pair.id!r}: dataset {dataset.name!r} already holds it as Syned variant {other!r}, "
                f"not {key!r}; a run with another seed needs a dataset of its own (or delete those variants first)"
            )
        if (None, MODIFIED) not in found:
            kept[key] = pair
    return kept


def _add_missing(dataset, by_id: dict, slice_name: str) -> int:
    """Add the ``slice_name`` sample of every variant that lacks one; return how many this call added."""
    added = 0
    for _ in range(_INSERT_TRIES):
        holding = dataset.select_group_slices(slice_name).match({VARIANT_FIELD: {"$in": list(by_id)}})
        present = set(holding.values(VARIANT_FIELD))
        missing = [key for key in by_id if key not in present]
        if not missing:
            return added
        # FiftyOne inserts in batches sized by their latency (several on a busy machine): count each batch
        # that went in, so that a clash in a later batch does not lose the count of the earlier ones.
        inserted = 0
        try:
            samples = [_variant_sample(by_id[key], key, slice_name) for key in missing]
            for ids in dataset.add_samples(samples, progress=False, generator=True):
                inserted += len(ids)
            return added + inserted
        except ValueError as exc:
            refused = exc.__cause__
            if "E11000" not in str(exc) or not isinstance(refused, BulkWriteError):
                raise
            # Another writer added one of them a moment ago; those before it went in: look again.
            added += inserted + refused.details.get("nInserted", 0)
    raise RuntimeError(f"{slice_name} samples of {len(by_id)} variants: still clashing after {_INSERT_TRIES} tries")


def _variant_sample(pair, key: str, slice_name: str) -> fo.Sample:
    # Both slices of a variant share a group id derived from its id: a reference added by one attempt
    # and the modified sample added by the next still form one group.
    group = fo.Group(id=str(ObjectId(hashlib.sha256(key.encode()).digest()[:12])))
    fields = {SOURCE_FIELD: pair.metadata["source_pair"], VARIANT_FIELD: key}
    return pair_sample(pair, slice_name, group, tags=[SYNTHETIC_TAG], **fields)
