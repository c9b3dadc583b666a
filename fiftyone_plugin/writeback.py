"""The one writer of what is computed for pairs (captions, confidences, heatmaps, regions) and of job marks.

Each sample is written by one atomic update of its own document. Given a :class:`JobMark`, that update
also sets ``<field>_job = job`` and applies only where the mark is not there yet, so a sample is
written at most once per job however many attempts of the job overlap. The modified samples are
written before the reference samples, and a pair is finished once its reference carries the mark
(:func:`unfinished_pairs`): an attempt stopped between the two slices leaves a pair that the next
attempt finishes. Values the two slices share (a caption) reach the reference from what its modified
sample holds after the write, so both slices agree even when two attempts computed the same pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import fiftyone.core.labels as fol
from bson import ObjectId
from pymongo import UpdateOne

from fiftyone_plugin import faults
from fiftyone_plugin.dataset import GROUP_FIELD, MODIFIED, PAIR_FIELDS, PAIR_ID, REFERENCE


def job_field(field_name: str) -> str:
    """The field that marks which job wrote ``field_name`` on a sample."""
    return f"{field_name}_job"


@dataclass(frozen=True)
class JobMark:
    """Write only where ``field`` is not ``job`` yet, and set it in the same update."""

    field: str
    job: str


def declare_fields(dataset, wanted: dict[str, tuple], of_pairs: bool = False):
    """Declare ``{name: (field class, kwargs)}`` where absent. Raw writes need declared fields, and
    fields declared before several workers write cannot clash as two workers adding one would.

    Raw writes skip FiftyOne's validation, so this refuses, before anything is written, a field that
    holds something else: one of FiftyOne's own or of the pairs' own fields (unless ``of_pairs``: the
    code that adds pairs declaring them), or a field of another type.
    """
    schema = dataset.get_field_schema()
    if set(wanted) - set(schema):
        dataset.reload()  # another process (a worker, the queueing operator) may have declared them
        schema = dataset.get_field_schema()
    for name, (kind, kwargs) in wanted.items():
        if not of_pairs:
            check_writable(dataset, name)
        if name not in schema:
            dataset.add_sample_field(name, kind, **kwargs)
            continue
        found, document = schema[name], kwargs.get("embedded_doc_type")
        if type(found) is not kind or (document is not None and found.document_type is not document):
            held = found.document_type.__name__ if getattr(found, "document_type", None) else type(found).__name__
            wants = document.__name__ if document is not None else kind.__name__
            raise ValueError(
                f"field {name!r}: holds {type(found).__name__} values ({held}) on dataset {dataset.name!r}, "
                f"not {wants}; write to a field of its own"
            )


def check_writable(dataset, name: str):
    """Refuse ``name`` as a field for computed values when it holds FiftyOne's or the pairs' own data."""
    from fiftyone.core.sample import get_default_sample_fields

    if name in PAIR_FIELDS or name in get_default_sample_fields(include_private=True):
        raise ValueError(
            f"field {name!r}: holds the pairs' own data on dataset {dataset.name!r} (FiftyOne's fields and "
            f"{', '.join(PAIR_FIELDS)}); write to a field of its own"
        )


def samples_by_slice(dataset, pair_ids) -> dict[str, dict[str, list[str]]]:
    """pair id -> {slice name: sample ids} over the groups that hold the pair's modified sample.

    A reference sample in a group without a modified one (left by an add stopped between its two
    slices) carries a pair's id but is no pair's: found by pair id alone, it could take the pair's
    values and mark while the pair's own reference never got them.
    """
    modified = dataset.select_group_slices(MODIFIED).match({PAIR_ID: {"$in": list(pair_ids)}})
    found: dict[str, dict[str, list[str]]] = {}
    pair_of_group = {}
    for sample_id, group_id, pair_id in zip(*modified.values(["id", f"{GROUP_FIELD}.id", PAIR_ID])):
        found.setdefault(pair_id, {}).setdefault(MODIFIED, []).append(sample_id)
        pair_of_group[group_id] = pair_id
    for sample_id, group_id in zip(*_references_of(dataset, pair_of_group).values(["id", f"{GROUP_FIELD}.id"])):
        found[pair_of_group[group_id]].setdefault(REFERENCE, []).append(sample_id)
    return found


def _references_of(dataset, group_ids):
    return dataset.select_group_slices(REFERENCE).match(
        {f"{GROUP_FIELD}._id": {"$in": [ObjectId(g) for g in group_ids]}}
    )


def unfinished_pairs(dataset, pair_ids, mark: JobMark) -> set[str]:
    """The pairs of ``pair_ids`` whose reference sample (of the group of their modified sample) does not
    carry ``mark`` yet (it is written last)."""
    modified = dataset.select_group_slices(MODIFIED).match({PAIR_ID: {"$in": list(pair_ids)}})
    pair_of_group = dict(zip(*modified.values([f"{GROUP_FIELD}.id", PAIR_ID])))
    unmarked = _references_of(dataset, pair_of_group).match({mark.field: {"$ne": mark.job}})
    return {pair_of_group[group_id] for group_id in unmarked.values(f"{GROUP_FIELD}.id")}


def write_pairs(
    dataset,
    modified: dict[str, dict],
    reference: dict[str, dict] | None = None,
    mark: JobMark | None = None,
) -> int:
    """Write ``{pair id: {field: value}}`` to the modified sample of each pair, then ``reference`` to
    its reference sample; ``reference=None``: the same values on both (read back from the modified
    sample when marked). Returns how many samples were written (a marked sample is not written twice).
    """
    pair_ids = set(modified) | set(reference or {})
    if not pair_ids:
        return 0
    _check_values(dataset, [*modified.values(), *(reference or {}).values()])
    ids = samples_by_slice(dataset, pair_ids)
    written = _update(dataset, _by_sample(ids, MODIFIED, modified), mark)
    faults.boundary("pairs.between_slices")
    if reference is None:
        reference = _marked_values(dataset, modified, mark) if mark is not None else modified
    written += _update(dataset, _by_sample(ids, REFERENCE, reference), mark)
    return written


def _check_values(dataset, value_dicts: list[dict]):
    """Refuse, before anything is written, a field that holds the pairs' own data, and a label whose
    type its field does not hold: found at the reference slice, it would leave the modified one written."""
    schema = dataset.get_field_schema()
    checked = set()
    for values in value_dicts:
        for name, value in values.items():
            if name not in checked:
                check_writable(dataset, name)
                checked.add(name)
            held = getattr(schema.get(name), "document_type", None)
            if isinstance(value, fol.Label) and held is not None and not isinstance(value, held):
                raise ValueError(
                    f"field {name!r}: holds {held.__name__} values on dataset {dataset.name!r}, not "
                    f"{type(value).__name__}; write to a field of its own"
                )


def _by_sample(ids, slice_name, values_by_pair) -> dict[str, dict]:
    return {sample: v for p, v in values_by_pair.items() for sample in ids.get(p, {}).get(slice_name, [])}


def _marked_values(dataset, modified: dict[str, dict], mark: JobMark) -> dict[str, dict]:
    """What the modified samples of these pairs hold now, for those that carry ``mark`` (whichever
    attempt wrote them)."""
    fields = sorted({name for values in modified.values() for name in values})
    view = dataset.select_group_slices(MODIFIED).match({PAIR_ID: {"$in": list(modified)}, mark.field: mark.job})
    if not fields:
        return {pair_id: {} for pair_id in view.values(PAIR_ID)}
    columns = view.values([PAIR_ID, *fields])
    return {row[0]: dict(zip(fields, row[1:])) for row in zip(*columns)}


def _update(dataset, values_by_sample: dict[str, dict], mark: JobMark | None) -> int:
    if not values_by_sample:
        return 0
    schema = dataset.get_field_schema()
    now = datetime.now(timezone.utc)
    updates = []
    for sample_id, values in values_by_sample.items():
        document = {name: _to_mongo(schema, name, value) for name, value in values.items()}
        where = {"_id": ObjectId(sample_id)}
        if mark is not None:
            document[mark.field] = mark.job
            where[mark.field] = {"$ne": mark.job}
        updates.append(UpdateOne(where, {"$set": {**document, "last_modified_at": now}}))
    return dataset._sample_collection.bulk_write(updates, ordered=False).modified_count


def _to_mongo(schema, name: str, value):
    if name not in schema:
        raise ValueError(f"field {name!r}: not declared on the dataset; declare_fields() it before writing")
    if not isinstance(value, fol.Label):
        return value
    return schema[name].to_mongo(value)
