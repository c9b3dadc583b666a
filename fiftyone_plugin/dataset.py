"""IDC pairs as grouped FiftyOne datasets.

Each pair is one group (field ``group``) with two image slices: ``reference`` (the original) and
``modified`` (the edit), ``modified`` being the default slice. Both samples carry the pair id
(``pair_id``), the reference captions (``captions``), the change ``category`` and the pair's extra
metadata (``idc_metadata``); the split is a sample tag (``train``, ``validation`` or ``test``).
"""

from __future__ import annotations

from pathlib import Path

import fiftyone as fo
from bson import ObjectId

from idc_engine.data.pair import SPLITS, IDCPair

GROUP_FIELD = "group"
REFERENCE, MODIFIED = "reference", "modified"
PAIR_ID, CAPTIONS, CATEGORY, METADATA = "pair_id", "captions", "category", "idc_metadata"


def new_dataset(name: str | None = None, persistent: bool = False, overwrite: bool = False) -> fo.Dataset:
    dataset = fo.Dataset(name, persistent=persistent, overwrite=overwrite)
    dataset.add_group_field(GROUP_FIELD, default=MODIFIED)
    dataset.add_group_slice(REFERENCE, "image")
    dataset.add_group_slice(MODIFIED, "image")
    dataset.default_group_slice = MODIFIED
    return dataset


def add_pairs(dataset: fo.Dataset, pairs: list[IDCPair], batch_size: int = 1000, progress=None) -> int:
    """Add one group per pair; return how many were added.

    Pair ids already in the dataset are refused (naming the first), so nothing is duplicated and
    nothing already stored changes.
    """
    check_grouped(dataset)
    existing = set(dataset.select_group_slices(MODIFIED).distinct(PAIR_ID)) if len(dataset) else set()
    clash = next((p.id for p in pairs if p.id in existing), None)
    if clash is not None:
        raise ValueError(f"pairs: pair id {clash!r} is already in dataset {dataset.name!r}")
    added = 0
    for start in range(0, len(pairs), batch_size):
        samples = []
        for pair in pairs[start : start + batch_size]:
            group = fo.Group()
            for slice_name, path in ((REFERENCE, pair.reference), (MODIFIED, pair.modified)):
                samples.append(
                    fo.Sample(
                        filepath=str(Path(path).resolve()),
                        group=group.element(slice_name),
                        tags=[pair.split],
                        **{
                            PAIR_ID: pair.id,
                            CAPTIONS: list(pair.captions),
                            CATEGORY: pair.category,
                            METADATA: pair.metadata or None,
                        },
                    )
                )
        dataset.add_samples(samples, progress=False)
        added += len(samples) // 2
        if progress is not None:
            progress(added, len(pairs))
    return added


def pairs_to_dataset(
    pairs: list[IDCPair], name: str | None = None, persistent: bool = False, overwrite: bool = False
) -> fo.Dataset:
    dataset = new_dataset(name, persistent=persistent, overwrite=overwrite)
    add_pairs(dataset, pairs)
    return dataset


def check_grouped(dataset):
    if dataset.media_type != "group" or set(dataset.group_slices or []) < {REFERENCE, MODIFIED}:
        raise ValueError(
            f"dataset {dataset.name!r}: not an IDC dataset; it needs group slices {REFERENCE!r} and {MODIFIED!r}"
        )


def split_of(tags: list[str], pair_id: str) -> str:
    splits = [t for t in tags if t in SPLITS]
    if len(splits) != 1:
        raise ValueError(f"pair {pair_id!r}: needs exactly one split tag of {SPLITS}, has {splits or tags}")
    return splits[0]


def dataset_to_pairs(samples) -> list[IDCPair]:
    """The IDC pairs of a grouped dataset or view (one per group present in the view's modified slice)."""
    dataset = samples._dataset
    check_grouped(dataset)
    modified = samples.select_group_slices(MODIFIED)
    group_ids, pair_ids, mod_paths, captions, categories, metadata, tags = modified.values(
        [f"{GROUP_FIELD}.id", PAIR_ID, "filepath", CAPTIONS, CATEGORY, METADATA, "tags"]
    )
    reference = dataset.select_group_slices(REFERENCE)
    ref_paths = dict(zip(*reference.values([f"{GROUP_FIELD}.id", "filepath"])))
    pairs = []
    for gid, pid, mod, caps, category, meta, sample_tags in zip(
        group_ids, pair_ids, mod_paths, captions, categories, metadata, tags
    ):
        if gid not in ref_paths:
            raise ValueError(f"pair {pid!r}: group {gid} has no {REFERENCE!r} sample")
        pairs.append(
            IDCPair(
                id=pid,
                reference=ref_paths[gid],
                modified=mod,
                captions=list(caps or []),
                split=split_of(sample_tags, pid),
                category=category,
                metadata=dict(meta or {}),
            )
        )
    return pairs


def reference_paths(dataset) -> dict[str, str]:
    """group id -> filepath of its reference sample."""
    return dict(zip(*dataset.select_group_slices(REFERENCE).values([f"{GROUP_FIELD}.id", "filepath"])))


def reference_samples(dataset, group_ids) -> dict[str, str]:
    """group id -> id of its reference sample, for the given groups."""
    groups = [ObjectId(g) for g in group_ids]
    reference = dataset.select_group_slices(REFERENCE).match({f"{GROUP_FIELD}._id": {"$in": groups}})
    ids, gids = reference.values(["id", f"{GROUP_FIELD}.id"])
    return dict(zip(gids, ids))


def mirror_to_reference(dataset, field: str, values_by_group: dict[str, object]):
    """Write ``field`` on each group's reference sample, so the App's group view shows it on both."""
    if not values_by_group:
        return
    references = reference_samples(dataset, values_by_group)
    dataset.set_values(field, {sid: values_by_group[gid] for gid, sid in references.items()}, key_field="id")
