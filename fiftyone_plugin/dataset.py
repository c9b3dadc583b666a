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
SOURCE_FIELD, VARIANT_FIELD = "source_pair", "syned_variant"  # a Syned variant's source pair and its id
# What a pair is made of, beside FiftyOne's own fields: never overwritten by a computed value (a caption).
PAIR_FIELDS = (GROUP_FIELD, PAIR_ID, CAPTIONS, CATEGORY, METADATA, SOURCE_FIELD, VARIANT_FIELD)


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
    nothing already stored changes. A pair without references stores ``captions`` as ``[]``.
    """
    check_grouped(dataset)
    existing = set(dataset.select_group_slices(MODIFIED).distinct(PAIR_ID)) if len(dataset) else set()
    clash = next((p.id for p in pairs if p.id in existing), None)
    if clash is not None:
        raise ValueError(f"pairs: pair id {clash!r} is already in dataset {dataset.name!r}")
    declare_pair_fields(dataset)
    added = 0
    for start in range(0, len(pairs), batch_size):
        samples = []
        for pair in pairs[start : start + batch_size]:
            group = fo.Group()
            samples += [pair_sample(pair, slice_name, group) for slice_name in (REFERENCE, MODIFIED)]
        dataset.add_samples(samples, progress=False)
        added += len(samples) // 2
        if progress is not None:
            progress(added, len(pairs))
    if added:
        # Reviews and the review queue find a pair by its id: without this index each look-up scans.
        dataset.create_index(PAIR_ID)
    return added


def pair_sample(pair: IDCPair, slice_name: str, group: fo.Group, tags=(), **fields) -> fo.Sample:
    """The sample of ``pair`` on ``slice_name`` (of ``group``), with ``tags`` beside its split and ``fields``."""
    return fo.Sample(
        filepath=str(Path(pair.reference if slice_name == REFERENCE else pair.modified).resolve()),
        group=group.element(slice_name),
        tags=[pair.split, *tags],
        **{
            PAIR_ID: pair.id,
            CAPTIONS: list(pair.captions),
            CATEGORY: pair.category,
            METADATA: pair.metadata or None,
        },
        **fields,
    )


def index_unique_per_slice(dataset, field: str):
    """A unique index on (``field``, slice) over the samples that have ``field``: a second sample of
    one slice with the same value is refused by the database, whoever tries to add it."""
    dataset.create_index(
        [(field, 1), (f"{GROUP_FIELD}.name", 1)],
        unique=True,
        partialFilterExpression={field: {"$type": "string"}},
    )


def declare_pair_fields(dataset):
    """Declare the text fields before any value is added: inferred from a first batch of pairs without
    captions or category, ``captions`` would be a list of unknown type (and stay one) and ``category``
    would be absent, and the App's sidebar could not filter on either."""
    schema = dataset.get_field_schema()
    if CAPTIONS not in schema:
        dataset.add_sample_field(CAPTIONS, fo.ListField, subfield=fo.StringField)
    if CATEGORY not in schema:
        dataset.add_sample_field(CATEGORY, fo.StringField)


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
    return _pairs_of_modified(dataset, samples.select_group_slices(MODIFIED))


def pairs_of_samples(dataset, sample_ids: list[str]) -> dict[str, IDCPair]:
    """modified sample id -> its pair, read from the database now (a group added a moment ago is found).

    Raises naming the dataset when it is not an IDC dataset, and the sample and its slice when a
    sample is not on the modified slice (captioning a reference against itself would be meaningless).
    """
    check_grouped(dataset)
    view = dataset.select_group_slices().select(sample_ids)
    for sample_id, slice_name in zip(*view.values(["id", f"{GROUP_FIELD}.name"])):
        if slice_name != MODIFIED:
            raise ValueError(
                f"sample {sample_id}: is on the {slice_name!r} slice of dataset {dataset.name!r}; BLIP2IDC "
                f"captions each {MODIFIED!r} sample against its reference: apply it to "
                f"dataset.select_group_slices({MODIFIED!r})"
            )
    pairs = _pairs_of_modified(dataset, view)
    ids = view.values("id")
    return dict(zip(ids, pairs))


# Beyond this many groups, one scan of the reference slice is cheaper than a query naming each group.
_MAX_GROUPS_PER_QUERY = 5000


def _pairs_of_modified(dataset, modified) -> list[IDCPair]:
    # A field no pair has a value for (no category, no metadata) may be absent from the schema.
    fields = [f"{GROUP_FIELD}.id", PAIR_ID, "filepath", "tags", CAPTIONS, CATEGORY, METADATA]
    present = [f for f in fields if modified.has_field(f)]
    found = dict(zip(present, modified.values(present)))
    count = len(found[PAIR_ID])
    group_ids, pair_ids, mod_paths, tags, captions, categories, metadata = (
        found.get(f, [None] * count) for f in fields
    )
    reference = dataset.select_group_slices(REFERENCE)
    if len(group_ids) <= _MAX_GROUPS_PER_QUERY:
        reference = reference.match({f"{GROUP_FIELD}._id": {"$in": [ObjectId(g) for g in group_ids]}})
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


def samples_of_pairs(dataset, pair_ids) -> dict[str, list[str]]:
    """pair id -> the ids of its samples on both slices."""
    both = dataset.select_group_slices([REFERENCE, MODIFIED]).match({PAIR_ID: {"$in": list(pair_ids)}})
    found: dict[str, list[str]] = {}
    for sample_id, pair_id in zip(*both.values(["id", PAIR_ID])):
        found.setdefault(pair_id, []).append(sample_id)
    return found


def write_pair_values(dataset, field: str, values_by_pair: dict[str, object]):
    """Write ``field`` on both samples of each pair, so the App's group view shows it on either slice."""
    if not values_by_pair:
        return
    samples = samples_of_pairs(dataset, values_by_pair)
    dataset.set_values(
        field, {sid: values_by_pair[pid] for pid, sids in samples.items() for sid in sids}, key_field="id"
    )
