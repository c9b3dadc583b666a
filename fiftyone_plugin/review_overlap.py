"""Overlap and agreement: a share of the pairs is reviewed blind by several reviewers.

The lead chooses the share and how many reviewers (``set_overlap``); the chosen pairs (a hash of
each pair id, so the choice is stable as pairs are added) carry ``idc_review_overlap = k``. Their
reviews are votes (``idc_review_votes``: their decisions sealed in the execution store, so neither the
App nor the panel shows them to the other reviewers) until k are in; the record
then takes their common decision, or ``disputed`` goes to the *resolve* queue for a lead.
``agreement_report`` is what the grid panel shows, per pair and per reviewer.
"""

from __future__ import annotations

import hashlib

from fiftyone_plugin.dataset import PAIR_ID
from fiftyone_plugin.review import (
    DEFAULT_CONFIG,
    DISPUTED,
    OVERLAP_FIELD,
    REVIEW_FIELD,
    STORE,
    UNREVIEWED,
    VOTES_FIELD,
    ReviewConfig,
    _collection,
    _declared,
    ensure_review_fields,
    modified_samples,
)


def overlap_settings(dataset) -> dict:
    """The dataset's overlap: ``{share, reviewers}`` (share 0: nobody reviews blind)."""
    from fiftyone.operators.store import ExecutionStore

    stored = ExecutionStore.create(STORE, dataset._doc.id).get("overlap") or {}
    return {
        "share": stored.get("share", DEFAULT_CONFIG.overlap_share),
        "reviewers": stored.get("reviewers", DEFAULT_CONFIG.overlap_reviewers),
    }


def in_overlap(pair_id: str, share: float) -> bool:
    """Whether a pair is among the ``share`` reviewed blind: a hash of its id, stable as pairs are added."""
    digest = hashlib.sha256(f"overlap:{pair_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def set_overlap(samples, share: float, reviewers: int = 2) -> dict:
    """Have ``share`` of the pairs of ``samples`` reviewed blind by ``reviewers`` reviewers each.

    Pairs already reviewed keep their record (they are not reviewed again); returns how many pairs
    are in the overlap now.
    """
    from fiftyone.operators.store import ExecutionStore

    config = ReviewConfig(overlap_share=share, overlap_reviewers=reviewers)
    dataset = samples._dataset
    ensure_review_fields(dataset)
    ids, pair_ids = _ids_and_pairs(samples)
    chosen = [i for i, p in zip(ids, pair_ids) if in_overlap(p, config.overlap_share)]
    collection = _collection(dataset)
    unsettled = {f"{REVIEW_FIELD}.status": {"$in": [None, UNREVIEWED]}}
    # Pairs whose blind reviews have begun keep them; the others follow the new share. Only pairs
    # that leave the overlap are unset: a pair that stays blind is never open to a single reviewer's
    # decision, even between these two writes or when the process stops between them.
    not_begun = {f"{VOTES_FIELD}.0": {"$exists": False}}
    collection.update_many(
        {"_id": {"$in": ids, "$nin": chosen}, OVERLAP_FIELD: {"$gt": 0}, **unsettled, **not_begun},
        {"$unset": {OVERLAP_FIELD: ""}},
    )
    if chosen:
        collection.update_many(
            {"_id": {"$in": chosen}, **unsettled, **not_begun}, {"$set": {OVERLAP_FIELD: config.overlap_reviewers}}
        )
    ExecutionStore.create(STORE, dataset._doc.id).set(
        "overlap", {"share": config.overlap_share, "reviewers": config.overlap_reviewers}
    )
    return {"pairs": len(ids), "overlap": collection.count_documents({"_id": {"$in": ids}, OVERLAP_FIELD: {"$gt": 0}})}


def _ids_and_pairs(samples):
    from bson import ObjectId

    ids, pair_ids = modified_samples(samples).values(["id", PAIR_ID])
    return [ObjectId(i) for i in ids], pair_ids


def agreement_report(samples) -> dict:
    """Agreement of the blind reviews of ``samples``: per pair, per reviewer, and overall."""
    modified = modified_samples(samples)
    if not _declared(samples._dataset, VOTES_FIELD):
        return {"pairs": [], "reviewers": {}, "settled": 0, "agreed": 0, "pending": 0, "rate": None}
    overlap = modified.mongo([{"$match": {OVERLAP_FIELD: {"$gt": 0}}}])
    found = overlap.values([PAIR_ID, VOTES_FIELD, REVIEW_FIELD], _raw=True)  # raw: plain dicts
    rows, reviewers = [], {}
    pending = 0
    for pair_id, votes, record in zip(*found):
        record = record or {}
        agreement = record.get("agreement")
        if agreement is None:
            pending += 1
            continue
        rows.append(
            {
                "pair_id": pair_id,
                "agree": bool(agreement["agree"]),
                "similarity": agreement["similarity"],
                "reviewers": list(agreement["reviewers"]),
                "statuses": [v["status"] for v in votes or []],
                "resolved": record.get("status") != DISPUTED,
            }
        )
        for name in agreement["reviewers"]:
            counts = reviewers.setdefault(name, {"pairs": 0, "agreed": 0})
            counts["pairs"] += 1
            counts["agreed"] += int(bool(agreement["agree"]))
    for counts in reviewers.values():
        counts["rate"] = counts["agreed"] / counts["pairs"]
    agreed = sum(r["agree"] for r in rows)
    return {
        "pairs": rows,
        "reviewers": reviewers,
        "settled": len(rows),
        "agreed": agreed,
        "pending": pending,
        "rate": agreed / len(rows) if rows else None,
    }
