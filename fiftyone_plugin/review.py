"""Review records: a reviewer accepts, edits or flags each pair's caption, and can undo any of it.

One record per pair, on its ``modified`` sample only (the group's default slice), so that the App's
sidebar counts and filters each pair once::

    idc_review          {status, caption, source_field, flag_reason, reviewed_at}
    idc_review_history  [{action, at, previous: <the record before the action>}, ...]

``status`` is one of ``unreviewed``, ``accepted``, ``edited``, ``flagged``. The reference captions
(``captions``) are never touched: an accepted or edited caption lives in the record, and becomes a
reference only where asked (``reviewed_pairs``: training on corrections, evaluating against them).
"""

from __future__ import annotations

from datetime import datetime, timezone

import fiftyone as fo
from fiftyone import ViewField as F

from fiftyone_plugin.captioning import confidence_field
from fiftyone_plugin.dataset import MODIFIED, PAIR_ID, check_grouped, dataset_to_pairs
from idc_engine.data.pair import IDCPair

REVIEW_FIELD = "idc_review"
HISTORY_FIELD = "idc_review_history"
UNREVIEWED, ACCEPTED, EDITED, FLAGGED = "unreviewed", "accepted", "edited", "flagged"
STATUSES = (UNREVIEWED, ACCEPTED, EDITED, FLAGGED)
REVIEWED = (ACCEPTED, EDITED)  # statuses whose caption can serve as a reference


def ensure_review_fields(dataset):
    """Declare the record's fields up front, so the App's sidebar offers them before the first review."""
    if not dataset.has_sample_field(REVIEW_FIELD):
        dataset.add_sample_field(REVIEW_FIELD, fo.EmbeddedDocumentField, embedded_doc_type=fo.DynamicEmbeddedDocument)
        for name in ("status", "caption", "source_field", "flag_reason"):
            dataset.add_sample_field(f"{REVIEW_FIELD}.{name}", fo.StringField)
        dataset.add_sample_field(f"{REVIEW_FIELD}.reviewed_at", fo.DateTimeField)
    if not dataset.has_sample_field(HISTORY_FIELD):
        dataset.add_sample_field(
            HISTORY_FIELD, fo.ListField, subfield=fo.EmbeddedDocumentField, embedded_doc_type=fo.DynamicEmbeddedDocument
        )


def pair_of_sample(dataset, sample_id: str) -> str:
    """The pair id of a sample on either slice (the App's modal reports the active slice's sample)."""
    check_grouped(dataset)
    found = dataset.select_group_slices().select(sample_id).values(PAIR_ID)
    if not found:
        raise ValueError(f"sample_id {sample_id!r}: no such sample in dataset {dataset.name!r}")
    return found[0]


def _modified_sample(dataset, pair_id: str):
    check_grouped(dataset)
    found = list(dataset.select_group_slices(MODIFIED).match(F(PAIR_ID) == pair_id).limit(1))
    if not found:
        raise ValueError(f"pair_id {pair_id!r}: no such pair in dataset {dataset.name!r}")
    return found[0]


def _as_dict(record) -> dict:
    if record is None:
        return {"status": UNREVIEWED, "caption": None, "source_field": None, "flag_reason": None, "reviewed_at": None}
    return {
        k: record[k] if k in record else None
        for k in ("status", "caption", "source_field", "flag_reason", "reviewed_at")
    }


def review_record(dataset, pair_id: str) -> dict:
    """The pair's current record (``unreviewed`` when none) and how many actions can be undone."""
    sample = _modified_sample(dataset, pair_id)
    record = _as_dict(sample[REVIEW_FIELD] if sample.has_field(REVIEW_FIELD) else None)
    history = sample[HISTORY_FIELD] if sample.has_field(HISTORY_FIELD) else None
    return {**record, "undoable": len(history or [])}


def _apply(dataset, pair_id: str, action: str, **values) -> dict:
    ensure_review_fields(dataset)
    sample = _modified_sample(dataset, pair_id)
    previous = sample[REVIEW_FIELD]
    now = datetime.now(timezone.utc)
    history = list(sample[HISTORY_FIELD] or [])
    history.append(fo.DynamicEmbeddedDocument(action=action, at=now, previous=previous))
    record = {"caption": None, "source_field": None, "flag_reason": None, **values, "reviewed_at": now}
    sample[REVIEW_FIELD] = fo.DynamicEmbeddedDocument(**record)
    sample[HISTORY_FIELD] = history
    sample.save()
    return review_record(dataset, pair_id)


def accept(dataset, pair_id: str, source_field: str) -> dict:
    """Accept the caption the model wrote in ``source_field`` as this pair's reviewed caption."""
    sample = _modified_sample(dataset, pair_id)
    caption = sample[source_field] if sample.has_field(source_field) else None
    if not isinstance(caption, str) or not caption.strip():
        raise ValueError(f"source_field {source_field!r}: pair {pair_id!r} has no caption there to accept")
    return _apply(dataset, pair_id, "accept", status=ACCEPTED, caption=caption, source_field=source_field)


def edit(dataset, pair_id: str, caption: str, source_field: str | None = None) -> dict:
    """Replace the caption (of ``source_field``, if it came from one) by the reviewer's own words."""
    if not isinstance(caption, str) or not caption.strip():
        raise ValueError(f"caption: an edited caption must be a non-empty string, got {caption!r}")
    return _apply(dataset, pair_id, "edit", status=EDITED, caption=caption.strip(), source_field=source_field)


def flag(dataset, pair_id: str, reason: str, source_field: str | None = None) -> dict:
    """Flag the pair (a wrong caption nobody has fixed yet, a broken pair ...), saying why."""
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError(f"reason: a flag needs a reason, got {reason!r}")
    return _apply(dataset, pair_id, "flag", status=FLAGGED, flag_reason=reason.strip(), source_field=source_field)


def undo(dataset, pair_id: str) -> dict:
    """Restore the record as it was before the last action; the undone action leaves no trace."""
    sample = _modified_sample(dataset, pair_id)
    history = list(sample[HISTORY_FIELD] or []) if sample.has_field(HISTORY_FIELD) else []
    if not history:
        raise ValueError(f"pair_id {pair_id!r}: nothing to undo")
    last = history.pop()
    sample[REVIEW_FIELD] = last["previous"]
    sample[HISTORY_FIELD] = history
    sample.save()
    return review_record(dataset, pair_id)


def review_counts(samples) -> dict[str, int]:
    """Pairs of ``samples`` per review status (each pair once)."""
    modified = samples.select_group_slices(MODIFIED)
    counts = dict.fromkeys(STATUSES, 0)
    if samples._dataset.has_sample_field(REVIEW_FIELD):
        statuses = modified.values(f"{REVIEW_FIELD}.status")
    else:
        statuses = [None] * len(modified)
    for status in statuses:
        counts[status or UNREVIEWED] += 1
    return counts


def queue_view(samples, caption_field: str):
    """The review queue as a grouped view: unreviewed pairs that have a caption in ``caption_field``,
    least confident first (pairs captioned without a confidence come last)."""
    if not samples.select_group_slices(MODIFIED).has_field(caption_field):
        raise ValueError(f"caption_field: the modified slice has no field {caption_field!r}")
    view = samples.match(F(caption_field).type() == "string")
    if samples._dataset.has_sample_field(REVIEW_FIELD):
        status = F(f"{REVIEW_FIELD}.status")
        view = view.match((status == None) | (status == UNREVIEWED))  # noqa: E711
    confidence = confidence_field(caption_field)
    if samples._dataset.has_sample_field(confidence):
        # Missing confidences sort last: mapped above any log-probability (which is <= 0).
        view = view.sort_by(F(confidence).if_else(F(confidence), 1.0))
    return view


def review_queue(samples, caption_field: str):
    """The review queue's pairs as modified samples, least confident first."""
    return queue_view(samples, caption_field).select_group_slices(MODIFIED)


def next_in_queue(samples, caption_field: str, after_pair: str | None = None) -> str | None:
    """The pair id at the head of the review queue (skipping ``after_pair``), or None when it is empty."""
    queue = review_queue(samples, caption_field)
    if after_pair is not None:
        queue = queue.match(F(PAIR_ID) != after_pair)
    first = queue.limit(1).values(PAIR_ID)
    return first[0] if first else None


def reviewed_pairs(samples, keep_references: bool = False) -> list[IDCPair]:
    """Accepted and edited pairs of ``samples``, their reviewed caption as the reference.

    With ``keep_references`` the source dataset's references follow it; by default the reviewer's
    caption stands alone (it is what the model should learn to say).
    """
    if not samples._dataset.has_sample_field(REVIEW_FIELD):
        return []
    modified = samples.select_group_slices(MODIFIED)
    reviewed = dict(zip(*modified.values([PAIR_ID, f"{REVIEW_FIELD}.caption"])))
    statuses = dict(zip(*modified.values([PAIR_ID, f"{REVIEW_FIELD}.status"])))
    chosen = []
    for pair in dataset_to_pairs(samples):
        if statuses.get(pair.id) in REVIEWED and reviewed.get(pair.id):
            captions = [reviewed[pair.id]] + (pair.captions if keep_references else [])
            chosen.append(
                IDCPair(pair.id, pair.reference, pair.modified, captions, pair.split, pair.category, pair.metadata)
            )
    return chosen
