"""The review queues: which pair a reviewer gets next, leased to them so that nobody else gets it.

Three queues (``QUEUES``): ``review`` (unreviewed pairs with a caption in the chosen field, least
confident first), ``flagged`` and ``resolve`` (blind reviews that disagreed, for a lead). Each is
limited to the samples it is given (the App's current view) and reads the record on the ``modified``
slice, whatever slice is active. *Next* leases the pair it returns (``idc_review_lease``) for
``ReviewConfig.lease_s``; a claim is one atomic update whose filter says "free, expired or mine", so
two reviewers asking at once get two different pairs. A skipped pair is offered to the same reviewer
again only once the rest of their queue is done.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from fiftyone_plugin.captioning import confidence_field
from fiftyone_plugin.dataset import PAIR_ID
from fiftyone_plugin.review import (
    DEFAULT_CONFIG,
    DISPUTED,
    FLAGGED,
    LEASE_FIELD,
    QUEUES,
    REVIEW_FIELD,
    SKIPS_FIELD,
    UNREVIEWED,
    VOTES_FIELD,
    ReviewConfig,
    _collection,
    _embedded,
    _find,
    _now,
    _reviewer,
    _slice_filter,
    ensure_review_fields,
    ensure_review_indexes,
    modified_samples,
    review_record,
)


def _queue_filter(queue: str, caption_field: str | None) -> dict:
    if queue == "review":
        if caption_field is None:
            raise ValueError("caption_field: the review queue needs the caption field to review")
        return {f"{REVIEW_FIELD}.status": {"$in": [None, UNREVIEWED]}, caption_field: {"$type": "string"}}
    if queue == "flagged":
        return {f"{REVIEW_FIELD}.status": FLAGGED}
    if queue == "resolve":
        return {f"{REVIEW_FIELD}.status": DISPUTED}
    raise ValueError(f"queue must be one of {QUEUES}, got {queue!r}")


def _available(reviewer: str, now: datetime) -> dict:
    """Not leased to someone else (a lease that has run out counts as none), not reviewed blind by me."""
    return {
        "$and": [
            {
                "$or": [
                    {LEASE_FIELD: None},
                    {f"{LEASE_FIELD}.until": {"$lt": now}},
                    {f"{LEASE_FIELD}.reviewer": reviewer},
                ]
            },
            {f"{VOTES_FIELD}.reviewer": {"$ne": reviewer}},
        ]
    }


def queue_view(samples, caption_field: str | None, queue: str = "review"):
    """A queue's pairs as modified samples of ``samples`` (the App's current view): ``review`` (unreviewed
    pairs that have a caption in ``caption_field``, least confident first), ``flagged`` or ``resolve``
    (oldest decision first). The record is read on the modified slice whatever slice is active, at
    query time (a view built before the first review filters too).

    A caption without a confidence comes first: nothing says the model was sure of it. (It is also
    the order of the confidence index, which keeps the queue fast at 100,000 pairs.)
    """
    modified = modified_samples(samples)
    if queue == "review" and not modified.has_field(caption_field):
        raise ValueError(f"caption_field: the modified slice has no field {caption_field!r}")
    return modified.mongo(
        [{"$match": _queue_filter(queue, caption_field)}, {"$sort": dict(_order(queue, caption_field))}]
    )


def _order(queue: str, caption_field: str | None) -> list[tuple[str, int]]:
    if queue == "review":
        return [(confidence_field(caption_field), 1), ("_id", 1)]
    return [(f"{REVIEW_FIELD}.reviewed_at", 1), ("_id", 1)]


def queue_count(samples, caption_field: str | None, queue: str = "review") -> int:
    """How many pairs the queue holds in ``samples`` (counted without sorting them)."""
    modified = modified_samples(samples)
    return modified.mongo([{"$match": _queue_filter(queue, caption_field)}]).count()


def review_queue(samples, caption_field: str):
    """The review queue's pairs as modified samples, least confident first."""
    return queue_view(samples, caption_field)


def _candidates(modified, match: dict, sort: list, limit: int) -> list[tuple]:
    view = modified.mongo([{"$match": match}, {"$sort": dict(sort)}, {"$limit": limit}])
    ids, pairs = view.values(["id", PAIR_ID])
    return list(zip(ids, pairs))


def next_in_queue(
    samples,
    caption_field: str | None,
    after_pair: str | None = None,
    *,
    reviewer: str | None = None,
    queue: str = "review",
    config: ReviewConfig = DEFAULT_CONFIG,
) -> str | None:
    """Lease the next pair of a queue to ``reviewer`` and return its id (None: the queue is empty).

    The queue is limited to ``samples`` (the App's current view: a category, a split, a tag). A pair
    leased to another reviewer whose lease has not run out is not offered; the reviewer's lease on
    ``after_pair`` (the pair being left) is released and that pair is not offered now. Pairs the
    reviewer skipped come after all the others, oldest skip first (the queue has gone round).
    """
    from bson import ObjectId

    reviewer = _reviewer(reviewer)
    dataset = samples._dataset
    ensure_review_fields(dataset)
    ensure_review_indexes(dataset, caption_field if queue == "review" else None)
    collection = _collection(dataset)
    if after_pair is not None:
        release(dataset, after_pair, reviewer=reviewer)
    modified = modified_samples(samples)
    now = _now()
    base = {**_queue_filter(queue, caption_field), **_available(reviewer, now)}
    if after_pair is not None:
        base[PAIR_ID] = {"$ne": after_pair}
    not_skipped = {f"{SKIPS_FIELD}.reviewer": {"$ne": reviewer}}
    phases = [({**base, **not_skipped}, _order(queue, caption_field))]
    lease = _embedded(reviewer=reviewer, until=now + timedelta(seconds=config.lease_s))
    for match, sort in phases:
        # Candidates taken by others between the query and the claim are leased now: the next query
        # leaves them out. Bounded, so that a store that refuses every claim cannot spin forever.
        for _ in range(config.retries):
            candidates = _candidates(modified, match, sort, config.candidates)
            for sample_id, pair_id in candidates:
                claimed = collection.find_one_and_update(
                    {"_id": ObjectId(sample_id), **_queue_filter(queue, caption_field), **_available(reviewer, now)},
                    {"$set": {LEASE_FIELD: lease}},
                    projection={PAIR_ID: 1},
                )
                if claimed is not None:
                    return pair_id
            if len(candidates) < config.candidates:
                break
    # Gone round: the pairs this reviewer skipped, oldest skip first.
    skipped = modified.mongo([{"$match": {**base, f"{SKIPS_FIELD}.reviewer": reviewer}}])
    ids, pair_ids, skips = skipped.values(["id", PAIR_ID, SKIPS_FIELD], _raw=True)
    order = sorted(
        zip(ids, pair_ids, skips),
        key=lambda row: max(s["at"] for s in row[2] if s["reviewer"] == reviewer),
    )
    for sample_id, pair_id, _ in order:
        claimed = collection.find_one_and_update(
            {"_id": ObjectId(sample_id), **_queue_filter(queue, caption_field), **_available(reviewer, now)},
            {"$set": {LEASE_FIELD: lease}},
            projection={PAIR_ID: 1},
        )
        if claimed is not None:
            return pair_id
    return None


def skip(dataset, pair_id: str, *, reviewer: str | None = None) -> dict:
    """The reviewer passes on this pair for now: it is not offered to them again until their queue has
    gone round, and their lease on it ends (another reviewer may take it)."""
    reviewer = _reviewer(reviewer)
    ensure_review_fields(dataset)
    doc = _find(dataset, pair_id, {"_id": 1})
    now = _now()
    keep_others = {
        "$filter": {"input": {"$ifNull": [f"${SKIPS_FIELD}", []]}, "cond": {"$ne": ["$$this.reviewer", reviewer]}}
    }
    mine = [{"$literal": _embedded(reviewer=reviewer, at=now)}]
    lease_kept = {"$cond": [{"$eq": [f"${LEASE_FIELD}.reviewer", reviewer]}, "$$REMOVE", f"${LEASE_FIELD}"]}
    _collection(dataset).update_one(
        {"_id": doc["_id"]},
        [
            {
                "$set": {
                    SKIPS_FIELD: {"$concatArrays": [keep_others, mine]},
                    LEASE_FIELD: lease_kept,
                    "last_modified_at": now,
                }
            }
        ],
    )
    return review_record(dataset, pair_id)


def release(dataset, pair_id: str, *, reviewer: str | None = None) -> bool:
    """End the reviewer's lease on a pair (if they hold it); True when there was one."""
    reviewer = _reviewer(reviewer)
    result = _collection(dataset).update_one(
        {PAIR_ID: pair_id, **_slice_filter(dataset), f"{LEASE_FIELD}.reviewer": reviewer},
        {"$unset": {LEASE_FIELD: ""}},
    )
    return result.modified_count == 1


def renew(dataset, pair_id: str, *, reviewer: str | None = None, config: ReviewConfig = DEFAULT_CONFIG) -> bool:
    """Extend the reviewer's lease on a pair they hold (a heartbeat while they look at it)."""
    reviewer = _reviewer(reviewer)
    until = _now() + timedelta(seconds=config.lease_s)
    result = _collection(dataset).update_one(
        {PAIR_ID: pair_id, **_slice_filter(dataset), f"{LEASE_FIELD}.reviewer": reviewer},
        {"$set": {f"{LEASE_FIELD}.until": until}},
    )
    return result.modified_count == 1
