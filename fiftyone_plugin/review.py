"""Review records: reviewers accept, edit or flag each pair's caption; several of them at once.

One record per pair, on its ``modified`` sample only (the group's default slice), so that the App's
sidebar counts and filters each pair once::

    idc_review          {status, caption, source_field, flag_reason, reviewer, reviewed_at, action, version,
                         agreement}
    idc_review_history  [{action, reviewer, at, version, seconds, previous, undoes}, ...]  (only appended to)
    idc_review_lease    {reviewer, until}          who *Next in queue* gave the pair to, until when
    idc_review_skips    [{reviewer, at}]           who skipped the pair, and when
    idc_review_overlap  k                          the pair is reviewed blind by k reviewers (absent: by one)
    idc_review_votes    [{reviewer, at, ballot}]   who reviewed it blind; once all k are in, also
                        {status, caption, flag_reason, source_field} of each

``status`` is one of ``unreviewed``, ``accepted``, ``edited``, ``flagged`` or ``disputed`` (blind
reviewers disagreed: a lead settles it). The reference captions (``captions``) are never touched: an
accepted or edited caption lives in the record, and becomes a reference only where asked
(``reviewed_pairs``: training on corrections, evaluating against them).

Why the writes go to MongoDB directly: FiftyOne's public API saves a sample by reading it, changing
it and writing it back, so two reviewers acting on one pair at once lose one of the two actions.
Every action here is *one* atomic update of the modified sample (through the dataset's own
collection, ``dataset._sample_collection``): the history is appended with ``$push``, and the update's
filter holds the record's ``version`` as the reviewer saw it (a compare-and-set). An action whose
version is stale changes nothing and raises :class:`ReviewConflict`, which says who changed the pair;
an action that returns has its entry in the history. Callers that do not pass the version they saw
(scripts) get the current one, retried until their action lands.

What a blind reviewer decided is kept off the sample until all k reviews are in: the App shows every
field of a sample to everyone, so the decision (a *ballot*) lives in the dataset's execution store
under a fresh key, and the sample's vote names only who voted, when, and that key. The ballot is
written before the vote that points to it; a process stopped between the two leaves an unused ballot
and no vote. Settling copies the ballots into the votes and the history, then deletes them. (Open-source
FiftyOne has no per-user permissions: anyone with Python access to the database can read the store.
Blind here means no reviewer sees another's decision in the App or the panel by accident.)
"""

from __future__ import annotations

import getpass
import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

import fiftyone as fo
from pymongo import ReturnDocument

from fiftyone_plugin.captioning import confidence_field
from fiftyone_plugin.dataset import MODIFIED, PAIR_ID, check_grouped, pairs_of_samples
from idc_engine.data.pair import IDCPair

REVIEW_FIELD = "idc_review"
HISTORY_FIELD = "idc_review_history"
LEASE_FIELD = "idc_review_lease"
SKIPS_FIELD = "idc_review_skips"
OVERLAP_FIELD = "idc_review_overlap"
VOTES_FIELD = "idc_review_votes"
UNREVIEWED, ACCEPTED, EDITED, FLAGGED, DISPUTED = "unreviewed", "accepted", "edited", "flagged", "disputed"
STATUSES = (UNREVIEWED, ACCEPTED, EDITED, FLAGGED, DISPUTED)
REVIEWED = (ACCEPTED, EDITED)  # statuses whose caption can serve as a reference
ACTIONS = {"accept": ACCEPTED, "edit": EDITED, "flag": FLAGGED}
QUEUES = ("review", "flagged", "resolve")  # unreviewed pairs, flagged pairs, blind reviews that disagreed
CONSENSUS = "overlap"  # the reviewer name of the action that settles a blind review
_RECORD_KEYS = ("status", "caption", "source_field", "flag_reason", "reviewer", "reviewed_at", "action", "version")
_EMBEDDED = "DynamicEmbeddedDocument"  # FiftyOne's class tag for embedded documents, needed in raw writes
STORE = "idc_review"  # the dataset's execution store: blind ballots, and the panel's overlap settings
_BALLOT_KEYS = ("status", "caption", "flag_reason", "source_field")


def _clone_with_the_dataset():
    """FiftyOne copies only the execution stores it is told of when a dataset is cloned: without this
    a clone made while blind reviews wait would have votes whose ballots are gone (withdrawn at
    settling), and lose the overlap settings."""
    try:
        from fiftyone.operators.store.clone import register_cloneable_store
    except ImportError:  # a FiftyOne that clones no stores: a clone's votes are withdrawn and asked again
        return
    register_cloneable_store(STORE)


_clone_with_the_dataset()


@dataclass(frozen=True)
class ReviewConfig:
    """Every default of the review loop."""

    lease_s: float = field(default=600.0, metadata={"help": "how long Next in queue holds a pair for one reviewer"})
    overlap_share: float = field(default=0.0, metadata={"help": "share of pairs reviewed blind by several reviewers"})
    overlap_reviewers: int = field(default=2, metadata={"help": "blind reviews per overlap pair (k >= 2)"})
    agreement_rouge_l: float = field(
        default=0.6, metadata={"help": "two edited captions agree when their ROUGE-L reaches this"}
    )
    retries: int = field(
        default=200, metadata={"help": "attempts of an action that names no version, under contention"}
    )
    candidates: int = field(default=20, metadata={"help": "queue pairs fetched per claim attempt"})

    def __post_init__(self):
        if not self.lease_s > 0:
            raise ValueError(f"lease_s must be positive, got {self.lease_s!r}")
        if not 0.0 <= self.overlap_share <= 1.0:
            raise ValueError(f"overlap_share must be in [0, 1], got {self.overlap_share!r}")
        if not isinstance(self.overlap_reviewers, int) or self.overlap_reviewers < 2:
            raise ValueError(f"overlap_reviewers must be an integer >= 2, got {self.overlap_reviewers!r}")
        if not 0.0 <= self.agreement_rouge_l <= 1.0:
            raise ValueError(f"agreement_rouge_l must be in [0, 1], got {self.agreement_rouge_l!r}")
        for name in ("retries", "candidates"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")


DEFAULT_CONFIG = ReviewConfig()


class ReviewConflict(ValueError):
    """The pair changed since the reviewer saw it; ``record`` is its state now (show it again)."""

    def __init__(self, message: str, record: dict | None = None):
        super().__init__(message)
        self.record = record


def default_reviewer() -> str:
    """Who acts when a script names nobody: ``IDC_REVIEWER``, else the operating-system user."""
    return os.environ.get("IDC_REVIEWER") or getpass.getuser()


def _reviewer(reviewer: str | None) -> str:
    name = default_reviewer() if reviewer is None else reviewer
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"reviewer: every action needs the reviewer's name, got {reviewer!r}")
    return name.strip()


def _now() -> datetime:
    # MongoDB keeps milliseconds: round here so that what is returned equals what is stored.
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _embedded(**values) -> dict:
    return {"_cls": _EMBEDDED, **values}


# ------------------------------------------------------------------------------------------- schema
_ENSURED: set[tuple[str, str]] = set()  # (collection, what) already declared or indexed by this process


def ensure_review_fields(dataset):
    """Declare the record's fields up front, so the App's sidebar offers them before the first review,
    and the indexes the panel and the queue look pairs up by."""
    check_grouped(dataset)
    if (dataset._sample_collection_name, "fields") in _ENSURED:
        return
    if not dataset.has_sample_field(VOTES_FIELD):
        dataset.reload()  # another process (the App's server, a reviewer's script) may have declared them
    embedded = {"embedded_doc_type": fo.DynamicEmbeddedDocument}
    if not dataset.has_sample_field(REVIEW_FIELD):
        dataset.add_sample_field(REVIEW_FIELD, fo.EmbeddedDocumentField, **embedded)
    subfields = {
        "status": fo.StringField,
        "caption": fo.StringField,
        "source_field": fo.StringField,
        "flag_reason": fo.StringField,
        "reviewer": fo.StringField,
        "action": fo.StringField,
        "reviewed_at": fo.DateTimeField,
        "version": fo.IntField,
    }
    for name, kind in subfields.items():
        if not dataset.has_sample_field(f"{REVIEW_FIELD}.{name}"):
            dataset.add_sample_field(f"{REVIEW_FIELD}.{name}", kind)
    for name in (HISTORY_FIELD, SKIPS_FIELD, VOTES_FIELD):
        if not dataset.has_sample_field(name):
            dataset.add_sample_field(name, fo.ListField, subfield=fo.EmbeddedDocumentField, **embedded)
    if not dataset.has_sample_field(LEASE_FIELD):
        dataset.add_sample_field(LEASE_FIELD, fo.EmbeddedDocumentField, **embedded)
        dataset.add_sample_field(f"{LEASE_FIELD}.reviewer", fo.StringField)
        dataset.add_sample_field(f"{LEASE_FIELD}.until", fo.DateTimeField)
    if not dataset.has_sample_field(OVERLAP_FIELD):
        dataset.add_sample_field(OVERLAP_FIELD, fo.IntField)
    ensure_review_indexes(dataset)
    _ENSURED.add((dataset._sample_collection_name, "fields"))


def ensure_review_indexes(dataset, caption_field: str | None = None):
    """Indexes on ``pair_id``, the review status and (for the queue's order) the caption's confidence.

    Without them every action and every *Next* scans the dataset (~0.3 s per 100,000 pairs).
    ``create_index`` returns at once when the index exists.
    """
    wanted = [PAIR_ID, [(f"{REVIEW_FIELD}.status", 1), (f"{dataset.group_field}.name", 1)], OVERLAP_FIELD]
    if caption_field is not None and dataset.has_sample_field(confidence_field(caption_field)):
        # The queue's order (least confident first, ties by id) read straight off the index.
        wanted.append([(f"{dataset.group_field}.name", 1), (confidence_field(caption_field), 1), ("id", 1)])
    for spec in wanted:
        _ensure_index(dataset, spec)


def _ensure_index(dataset, spec):
    key = (dataset._sample_collection_name, str(spec))
    if key not in _ENSURED:
        dataset.create_index(spec)
        _ENSURED.add(key)


# ------------------------------------------------------------------------------------------- reading
def _declared(dataset, name: str) -> bool:
    """Whether the dataset has the field, reloading once: another process may have declared it."""
    if not dataset.has_sample_field(name):
        dataset.reload()
    return dataset.has_sample_field(name)


def _collection(dataset):
    return dataset._sample_collection


def _slice_filter(dataset) -> dict:
    return {f"{dataset.group_field}.name": MODIFIED}


def _find(dataset, pair_id: str, projection=None) -> dict:
    check_grouped(dataset)
    _ensure_index(dataset, PAIR_ID)  # a dataset made before the index existed gets it on first use
    doc = _collection(dataset).find_one({PAIR_ID: pair_id, **_slice_filter(dataset)}, projection)
    if doc is None:
        raise ValueError(f"pair_id {pair_id!r}: no such pair in dataset {dataset.name!r}")
    return doc


def pair_of_sample(dataset, sample_id: str) -> str:
    """The pair id of a sample on either slice (the App's modal reports the active slice's sample)."""
    from bson import ObjectId
    from bson.errors import InvalidId

    check_grouped(dataset)
    try:
        found = _collection(dataset).find_one({"_id": ObjectId(sample_id)}, {PAIR_ID: 1})
    except (InvalidId, TypeError):
        found = None
    if found is None:
        raise ValueError(f"sample_id {sample_id!r}: no such sample in dataset {dataset.name!r}")
    return found[PAIR_ID]


def _record(doc: dict) -> dict:
    stored = doc.get(REVIEW_FIELD) or {}
    record = {key: stored.get(key) for key in _RECORD_KEYS}
    record["status"] = record["status"] or UNREVIEWED
    record["version"] = record["version"] or 0
    record["agreement"] = stored.get("agreement")
    return record


def _live_actions(history: list) -> list[int]:
    """Positions of the history's actions that can still be undone (not undone, not an undo).

    The history is only ever appended to: an undo is an entry naming the position it undid (``undoes``).
    """
    undone = {e.get("undoes") for e in history if e.get("action") == "undo"}
    return [i for i, e in enumerate(history) if e.get("action") != "undo" and i not in undone]


def _describe(doc: dict, pair_id: str) -> dict:
    history = doc.get(HISTORY_FIELD) or []
    live = _live_actions(history)
    lease = doc.get(LEASE_FIELD) or None
    votes = doc.get(VOTES_FIELD) or []
    last = history[live[-1]] if live else None
    return {
        "pair_id": pair_id,
        **_record(doc),
        "undoable": len(live),
        "last_action": {"action": last.get("action"), "reviewer": last.get("reviewer"), "at": last.get("at")}
        if last
        else None,
        "lease": {"reviewer": lease.get("reviewer"), "until": lease.get("until")} if lease else None,
        "overlap": doc.get(OVERLAP_FIELD) or 0,
        "votes": [{k: v.get(k) for k in ("reviewer", "at", "ballot", *_BALLOT_KEYS)} for v in votes],
    }


def review_record(dataset, pair_id: str, config: ReviewConfig = DEFAULT_CONFIG, reviewer: str | None = None) -> dict:
    """The pair's current record (``unreviewed``, version 0 when none), how many actions can be undone,
    the last of them, its lease, and its blind reviews (when it is an overlap pair): who reviewed it,
    and what they decided once all are in; before that, only ``reviewer``'s own decision.

    A blind review whose last vote was stored but not settled (its process died between the two
    writes) is settled here, so that no reader ever sees it stuck.
    """
    found = _describe(_find(dataset, pair_id), pair_id)
    if found["overlap"] and found["status"] == UNREVIEWED and len(found["votes"]) >= found["overlap"]:
        found = _settle(dataset, pair_id, config)
    if reviewer is not None and found["overlap"] and found["status"] == UNREVIEWED:
        for vote in found["votes"]:
            if vote["reviewer"] == reviewer and vote["status"] is None:
                vote.update(_open_ballot(dataset, pair_id, vote) or {})
    return found


# ------------------------------------------------------------------------------------------- ballots
def _store(dataset):
    from fiftyone.operators.store import ExecutionStore

    return ExecutionStore.create(STORE, dataset._doc.id)


def _ballot_key(pair_id: str, ballot: str) -> str:
    return f"ballot:{pair_id}:{ballot}"


def _open_ballot(dataset, pair_id: str, vote: dict) -> dict | None:
    """What a blind reviewer decided: on the vote itself once settled (or written before ballots
    existed), else in its ballot; None when the ballot is gone."""
    if vote.get("status") is not None:
        return {k: vote.get(k) for k in _BALLOT_KEYS}
    if not vote.get("ballot"):
        return None
    found = _store(dataset).get(_ballot_key(pair_id, vote["ballot"]))
    return {k: found.get(k) for k in _BALLOT_KEYS} if found else None


def _drop_ballot(dataset, pair_id: str, ballot: str | None):
    if ballot:
        _store(dataset).delete(_ballot_key(pair_id, ballot))


# ------------------------------------------------------------------------------------------- actions
def _conflict(dataset, pair_id: str, seen_version: int) -> ReviewConflict:
    now = review_record(dataset, pair_id)
    last = now["last_action"] or {}
    who = f"{last.get('reviewer') or 'someone'} ({last.get('action') or 'a change'} at {last.get('at')})"
    return ReviewConflict(
        f"pair {pair_id!r} changed since you saw it (version {seen_version}, now {now['version']}): last change by "
        f"{who}; its review is now {now['status']!r}. Look at it again before acting.",
        record=now,
    )


def _version_filter(version: int) -> dict:
    # A record written before versions existed (or none) is version 0.
    return {f"{REVIEW_FIELD}.version": {"$in": [None, 0]}} if version == 0 else {f"{REVIEW_FIELD}.version": version}


def _write(
    dataset,
    pair_id: str,
    build,
    expected_version: int | None,
    config: ReviewConfig,
) -> dict:
    """Apply ``build(doc) -> (filter extras, update)`` as one compare-and-set on the record's version.

    With ``expected_version``, a record whose version moved on raises :class:`ReviewConflict`.
    Without, the current version is read each time. Either way an update that lost only to a change
    that left the version alone (a blind vote, a lease) is tried again on the fresh document; one
    whose own guard fails on an unchanged document (the caption changed) raises.
    """
    ensure_review_fields(dataset)
    collection = _collection(dataset)
    for _ in range(config.retries):
        doc = _find(dataset, pair_id)
        version = _record(doc)["version"]
        if expected_version is not None and version != expected_version:
            raise _conflict(dataset, pair_id, expected_version)
        guard, update = build(doc, version)
        written = collection.find_one_and_update(
            {"_id": doc["_id"], **_version_filter(version), **guard},
            update,
            return_document=ReturnDocument.AFTER,
        )
        if written is not None:
            return _describe(written, pair_id)
        fresh = _find(dataset, pair_id)
        if _record(fresh)["version"] == version and _unchanged(doc, fresh):
            raise _guard_failure(dataset, pair_id, version, build)
    raise ReviewConflict(
        f"pair {pair_id!r}: {config.retries} attempts all lost to other reviewers' changes; try again",
        record=review_record(dataset, pair_id),
    )


def _unchanged(before: dict, after: dict) -> bool:
    """Whether nothing a guard looks at moved: the votes, the history's length, every other field."""
    skip = {LEASE_FIELD, "last_modified_at"}
    return {k: v for k, v in before.items() if k not in skip} == {k: v for k, v in after.items() if k not in skip}


def _guard_failure(dataset, pair_id, expected_version, build) -> ReviewConflict:
    """Why a single compare-and-set changed nothing: the version moved, or the action's own guard."""
    doc = _find(dataset, pair_id)
    if _record(doc)["version"] != expected_version:
        return _conflict(dataset, pair_id, expected_version)
    message = getattr(build, "guard_message", None)
    return ReviewConflict(
        message(doc) if message else f"pair {pair_id!r} changed; look again", review_record(dataset, pair_id)
    )


def _entry(action: str, reviewer: str, at: datetime, version: int, previous: dict | None, seconds, **extra) -> dict:
    entry = {"action": action, "reviewer": reviewer, "at": at, "version": version, "previous": previous}
    if seconds is not None:
        entry["seconds"] = round(float(seconds), 2)
    return _embedded(**entry, **extra)


def _stored_record(doc: dict) -> dict | None:
    record = doc.get(REVIEW_FIELD)
    return dict(record) if record else None


def _decide(
    dataset,
    pair_id: str,
    action: str,
    values: dict,
    reviewer: str,
    expected_version: int | None,
    seconds: float | None,
    config: ReviewConfig,
    guard=None,
) -> dict:
    """Accept, edit or flag: a record change, or, on an overlap pair not yet settled, a blind vote."""
    ballot = {}  # a blind decision: written to the store once, before any vote names it

    def build(doc, version):
        now = _now()
        extra_guard = guard(doc) if guard else {}
        if doc.get(OVERLAP_FIELD) and _record(doc)["status"] == UNREVIEWED:
            if len(doc.get(VOTES_FIELD) or []) >= doc[OVERLAP_FIELD]:
                # The last voter stopped before settling: settle now, and show the reviewer the outcome.
                raise ReviewConflict(
                    f"pair {pair_id!r}: its {doc[OVERLAP_FIELD]} blind reviews are all in, so it is settled on "
                    "them; nothing of yours was stored: look at it again before acting",
                    record=review_record(dataset, pair_id, config),
                )
            if not ballot:
                ballot["id"] = uuid.uuid4().hex
                decision = {"status": ACTIONS[action], "caption": None, "flag_reason": None, "source_field": None}
                decision.update({k: values[k] for k in _BALLOT_KEYS if k in values})
                _store(dataset).set(_ballot_key(pair_id, ballot["id"]), {"reviewer": reviewer, **decision})
            return _vote(doc, version, reviewer, now, seconds, extra_guard, ballot["id"])
        record = _embedded(
            status=ACTIONS[action],
            **{"caption": None, "source_field": None, "flag_reason": None, **values},
            reviewer=reviewer,
            reviewed_at=now,
            action=action,
            version=version + 1,
        )
        agreement = (doc.get(REVIEW_FIELD) or {}).get("agreement")
        if agreement is not None:  # a lead resolving blind reviews: how they agreed stays on the record
            record["agreement"] = agreement
        entry = _entry(action, reviewer, now, version + 1, _stored_record(doc), seconds, **values)
        update = {
            "$set": {REVIEW_FIELD: record, "last_modified_at": now},
            "$push": {HISTORY_FIELD: entry},
            "$unset": {LEASE_FIELD: ""},
        }
        return extra_guard, update

    build.guard_message = getattr(guard, "message", None)
    try:
        result = _write(dataset, pair_id, build, expected_version, config)
    except ValueError:  # refused (ReviewConflict too): no vote names the ballot. Other errors keep it,
        _drop_ballot(dataset, pair_id, ballot.get("id"))  # as the vote may have landed unreported.
        raise
    if ballot and all(v.get("ballot") != ballot["id"] for v in result["votes"]):
        _drop_ballot(dataset, pair_id, ballot["id"])  # the pair was settled meanwhile: a decision instead
    if result["overlap"] and result["status"] == UNREVIEWED and len(result["votes"]) >= result["overlap"]:
        result = _settle(dataset, pair_id, config)
    return result


def _vote(doc, version, reviewer, now, seconds, extra_guard, ballot):
    """A blind review of an overlap pair: who and when on the pair, what in the ballot; the record
    changes once k are in."""
    votes, k = doc.get(VOTES_FIELD) or [], doc[OVERLAP_FIELD]
    if any(v.get("reviewer") == reviewer for v in votes):
        raise ValueError(
            f"reviewer {reviewer!r}: you already reviewed pair {doc[PAIR_ID]!r} blind; it waits for "
            f"{k - len(votes)} more reviewer(s)"
        )
    vote = _embedded(reviewer=reviewer, at=now, ballot=ballot)
    guard = {
        **extra_guard,
        OVERLAP_FIELD: k,  # still blind: a lead lowering the share meanwhile makes it an ordinary decision
        f"{VOTES_FIELD}.reviewer": {"$ne": reviewer},
        f"{VOTES_FIELD}.{k - 1}": {"$exists": False},
    }
    entry = _entry("vote", reviewer, now, version, None, seconds, blind=True)
    update = {
        "$push": {VOTES_FIELD: vote, HISTORY_FIELD: entry},
        "$set": {"last_modified_at": now},
        "$unset": {LEASE_FIELD: ""},
    }
    return guard, update


def accept(
    dataset,
    pair_id: str,
    source_field: str,
    seen_caption: str | None = None,
    *,
    reviewer: str | None = None,
    expected_version: int | None = None,
    seconds: float | None = None,
    config: ReviewConfig = DEFAULT_CONFIG,
) -> dict:
    """Accept the caption in ``source_field`` as this pair's reviewed caption.

    ``seen_caption`` is the caption as the reviewer saw it: it is what is stored, and the action is
    refused when the field holds something else now (a captioning job finished meanwhile).
    """
    reviewer = _reviewer(reviewer)
    if seen_caption is not None and (not isinstance(seen_caption, str) or not seen_caption.strip()):
        raise ValueError(f"seen_caption: the caption you saw must be a non-empty string, got {seen_caption!r}")
    current = _find(dataset, pair_id, {source_field: 1}).get(source_field)
    if not isinstance(current, str) or not current.strip():
        raise ValueError(f"source_field {source_field!r}: pair {pair_id!r} has no caption there to accept")
    caption = current if seen_caption is None else seen_caption
    if caption != current:
        raise _stale(pair_id, source_field, caption, current, dataset)

    def guard(doc):
        return {source_field: caption}

    guard.message = lambda doc: str(_stale(pair_id, source_field, caption, doc.get(source_field), dataset))
    values = {"caption": caption, "source_field": source_field}
    return _decide(dataset, pair_id, "accept", values, reviewer, expected_version, seconds, config, guard)


def _stale(pair_id, source_field, seen, current, dataset) -> ReviewConflict:
    return ReviewConflict(
        f"pair {pair_id!r}: the caption in {source_field!r} changed since you saw it (you saw {seen!r}, it now reads "
        f"{current!r}); nothing was stored: read the new caption and accept or edit it",
        record=review_record(dataset, pair_id),
    )


def edit(
    dataset,
    pair_id: str,
    caption: str,
    source_field: str | None = None,
    *,
    reviewer: str | None = None,
    expected_version: int | None = None,
    seconds: float | None = None,
    config: ReviewConfig = DEFAULT_CONFIG,
) -> dict:
    """Replace the caption (of ``source_field``, if it came from one) by the reviewer's own words."""
    reviewer = _reviewer(reviewer)
    if not isinstance(caption, str) or not caption.strip():
        raise ValueError(f"caption: an edited caption must be a non-empty string, got {caption!r}")
    values = {"caption": caption.strip(), "source_field": source_field}
    return _decide(dataset, pair_id, "edit", values, reviewer, expected_version, seconds, config)


def flag(
    dataset,
    pair_id: str,
    reason: str,
    source_field: str | None = None,
    *,
    reviewer: str | None = None,
    expected_version: int | None = None,
    seconds: float | None = None,
    config: ReviewConfig = DEFAULT_CONFIG,
) -> dict:
    """Flag the pair (a wrong caption nobody has fixed yet, a broken pair ...), saying why."""
    reviewer = _reviewer(reviewer)
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError(f"reason: a flag needs a reason, got {reason!r}")
    values = {"flag_reason": reason.strip(), "source_field": source_field}
    return _decide(dataset, pair_id, "flag", values, reviewer, expected_version, seconds, config)


def undo(
    dataset,
    pair_id: str,
    *,
    reviewer: str | None = None,
    expected_version: int | None = None,
    anyone: bool = False,
    config: ReviewConfig = DEFAULT_CONFIG,
) -> dict:
    """Undo the reviewer's own last action on the pair: the record is restored as it was before it.

    Only the pair's last action can be undone (an older one may have been built upon); when that is
    another reviewer's, the undo is refused naming them, unless ``anyone`` (a lead). The undone
    action stays in the history, marked, and the undo is recorded after it.
    """
    reviewer = _reviewer(reviewer)
    withdrawn = {}  # the ballot of a blind review taken back

    def build(doc, version):
        withdrawn.clear()
        history = doc.get(HISTORY_FIELD) or []
        live = _live_actions(history)
        mine_blind = [i for i in live if history[i].get("blind") and history[i].get("reviewer") == reviewer]
        blind = bool(doc.get(OVERLAP_FIELD)) and _record(doc)["status"] == UNREVIEWED
        if blind and mine_blind and len(doc.get(VOTES_FIELD) or []) >= doc[OVERLAP_FIELD]:
            raise ValueError(
                f"pair_id {pair_id!r}: all {doc[OVERLAP_FIELD]} blind reviews are in, so the pair is settled on "
                "them; a lead acts on it instead of undoing"
            )
        if blind and mine_blind:
            withdrawn["ballot"] = next(
                (v.get("ballot") for v in doc.get(VOTES_FIELD) or [] if v.get("reviewer") == reviewer), None
            )
            return _unvote(doc, history, mine_blind[-1], reviewer)
        if blind and live:
            # The live actions are the other reviewers' blind reviews: naming whose and which would
            # show them before all are in (and undoing one here would leave its vote counted).
            raise ValueError(
                f"pair_id {pair_id!r}: you have no blind review of this pair to undo; the others' stay hidden "
                f"until all {doc[OVERLAP_FIELD]} are in"
            )
        if not live:
            raise ValueError(f"pair_id {pair_id!r}: nothing to undo")
        position = live[-1]
        last = history[position]
        if last.get("action") == "settle":
            raise ValueError(
                f"pair_id {pair_id!r}: the last action settled its blind reviews; a lead acts on it instead of undoing"
            )
        if last.get("reviewer") != reviewer and not anyone:
            raise ValueError(
                f"pair_id {pair_id!r}: the last action is {last.get('reviewer')!r}'s {last.get('action')} at "
                f"{last.get('at')}; only they can undo it (or a lead, with anyone=True)"
            )
        now = _now()
        restored = dict(last.get("previous") or {"_cls": _EMBEDDED, "status": UNREVIEWED})
        restored.update(version=version + 1, _cls=_EMBEDDED)
        entry = _entry(
            "undo", reviewer, now, version + 1, _stored_record(doc), None, undoes=position, undid=last.get("action")
        )
        update = {"$set": {REVIEW_FIELD: restored, "last_modified_at": now}, "$push": {HISTORY_FIELD: entry}}
        # The entry being marked must still be the last live one when the update lands.
        return {
            f"{HISTORY_FIELD}.{len(history) - 1}": {"$exists": True},
            f"{HISTORY_FIELD}.{len(history)}": {"$exists": False},
        }, update

    result = _write(dataset, pair_id, build, expected_version, config)
    _drop_ballot(dataset, pair_id, withdrawn.get("ballot"))
    return result


def _unvote(doc, history, position, reviewer):
    now = _now()
    entry = _entry(
        "undo", reviewer, now, _record(doc)["version"], None, None, undoes=position, undid=history[position]["action"]
    )
    update = {
        "$pull": {VOTES_FIELD: {"reviewer": reviewer}},
        "$push": {HISTORY_FIELD: entry},
        "$set": {"last_modified_at": now},
    }
    # Withdrawn only while the others' reviews are not all in: k votes are a decision (settled next).
    guard = {
        f"{VOTES_FIELD}.reviewer": reviewer,
        f"{VOTES_FIELD}.{doc[OVERLAP_FIELD] - 1}": {"$exists": False},
        f"{HISTORY_FIELD}.{len(history)}": {"$exists": False},
    }
    return guard, update


# ------------------------------------------------------------------------------------------- overlap
def caption_similarity(a: str | None, b: str | None) -> float:
    """ROUGE-L F-measure of two captions (lower-cased words), 1.0 for two identical ones."""
    from pycocoevalcap.rouge.rouge import Rouge

    if not a or not b:
        return 1.0 if a == b else 0.0
    return float(Rouge().calc_score([a.lower().strip()], [b.lower().strip()]))


def votes_agree(a: dict, b: dict, config: ReviewConfig = DEFAULT_CONFIG) -> tuple[bool, float]:
    """Whether two blind reviews agree: same status, for two edits captions at least
    ``agreement_rouge_l`` alike (ROUGE-L), for two accepts the very same caption (each accepted the
    text they were shown: from another caption field, or after a new captioning job, it differs and
    the pair would be stored with a caption one of them never accepted). Returns ``(agree, similarity)``."""
    if a.get("status") != b.get("status"):
        return False, 0.0
    if a.get("status") == ACCEPTED and a.get("caption") != b.get("caption"):
        return False, caption_similarity(a.get("caption"), b.get("caption"))
    if a.get("status") == EDITED:
        similarity = caption_similarity(a.get("caption"), b.get("caption"))
        return similarity >= config.agreement_rouge_l, similarity
    return True, 1.0


def _settle(dataset, pair_id: str, config: ReviewConfig) -> dict:
    """k blind reviews are in: the record takes their common decision, or ``disputed`` for a lead."""

    def build(doc, version):
        k = doc.get(OVERLAP_FIELD) or 0
        votes = (doc.get(VOTES_FIELD) or [])[:k]
        if not k or len(votes) < k:
            raise ReviewConflict(f"pair {pair_id!r}: its blind reviews are not all in (a vote was withdrawn)")
        # The very votes read (k of them: no vote is withdrawn or added once all are in).
        same_votes = {f"{VOTES_FIELD}.{i}.{key}": v.get(key) for i, v in enumerate(votes) for key in ("reviewer", "at")}
        opened = [_open_ballot(dataset, pair_id, v) for v in votes]
        if any(o is None for o in opened):
            return same_votes, _lost_votes(doc, votes, opened, version)
        votes = [_embedded(**{**{k: v for k, v in vote.items() if k != "_cls"}, **o}) for vote, o in zip(votes, opened)]
        pairs = [votes_agree(a, b, config) for i, a in enumerate(votes) for b in votes[i + 1 :]]
        agree = all(ok for ok, _ in pairs)
        similarity = min(s for _, s in pairs) if pairs else 1.0
        now = _now()
        first = votes[0]
        record = _embedded(
            status=first["status"] if agree else DISPUTED,
            caption=first.get("caption") if agree else None,
            source_field=first.get("source_field"),
            flag_reason=first.get("flag_reason") if agree else None,
            reviewer=CONSENSUS,
            reviewed_at=now,
            action="settle",
            version=version + 1,
            agreement=_embedded(agree=agree, similarity=round(similarity, 4), reviewers=[v["reviewer"] for v in votes]),
        )
        # What each blind reviewer decided enters the history here: their vote entries carry no decision.
        decided = [_embedded(**{k: v.get(k) for k in ("reviewer", "at", *_BALLOT_KEYS)}) for v in votes]
        entry = _entry("settle", CONSENSUS, now, version + 1, _stored_record(doc), None, agree=agree, votes=decided)
        update = {
            "$set": {REVIEW_FIELD: record, VOTES_FIELD: votes, "last_modified_at": now},
            "$push": {HISTORY_FIELD: entry},
        }
        # Only on all k votes: a vote withdrawn meanwhile leaves the pair waiting, never settled on fewer.
        settles = {f"{REVIEW_FIELD}.status": {"$in": [None, UNREVIEWED]}}
        return {**settles, **same_votes, f"{VOTES_FIELD}.{k - 1}": {"$exists": True}}, update

    try:
        settled = _write(dataset, pair_id, build, None, config)
    except ReviewConflict:
        return review_record(dataset, pair_id)  # settled meanwhile by the other reviewer's call
    if settled["status"] != UNREVIEWED:  # the ballots are on the votes now
        for vote in settled["votes"]:
            _drop_ballot(dataset, pair_id, vote.get("ballot"))
    return settled


def _lost_votes(doc, votes, opened, version) -> dict:
    """Votes whose ballot is gone (a copy of the dataset made without its execution store): they are
    withdrawn, each with an undo in the history, and their reviewers review the pair again."""
    history = doc.get(HISTORY_FIELD) or []
    live = _live_actions(history)
    now = _now()
    lost = [v["reviewer"] for v, o in zip(votes, opened) if o is None]
    entries = []
    for name in lost:
        mine = [i for i in live if history[i].get("blind") and history[i].get("reviewer") == name]
        entries.append(
            _entry(
                "undo", CONSENSUS, now, version, None, None, undoes=mine[-1] if mine else None, undid="vote", lost=name
            )
        )
    return {
        "$pull": {VOTES_FIELD: {"reviewer": {"$in": lost}}},
        "$push": {HISTORY_FIELD: {"$each": entries}},
        "$set": {"last_modified_at": now},
    }


# ------------------------------------------------------------------------------------------- views
def modified_samples(samples):
    """The modified samples of a grouped dataset or view, or of a view already flattened to them."""
    if samples.media_type == "group":
        return samples.select_group_slices(MODIFIED)
    dataset = samples._dataset
    check_grouped(dataset)
    return samples.mongo([{"$match": _slice_filter(dataset)}])


# ------------------------------------------------------------------------------------------- summaries
def review_counts(samples) -> dict[str, int]:
    """Pairs of ``samples`` per review status (each pair once)."""
    dataset = samples._dataset
    counts = dict.fromkeys(STATUSES, 0)
    if not _declared(dataset, REVIEW_FIELD):
        counts[UNREVIEWED] = len(modified_samples(samples))
    elif samples is dataset:
        # The whole dataset: counted on the status index alone (no document is read).
        collection, on_modified = _collection(dataset), _slice_filter(dataset)
        total = collection.count_documents(on_modified)
        for status in STATUSES[1:]:
            counts[status] = collection.count_documents({f"{REVIEW_FIELD}.status": status, **on_modified})
        counts[UNREVIEWED] = total - sum(counts.values())
    else:
        for status, n in modified_samples(samples).count_values(f"{REVIEW_FIELD}.status").items():
            counts[status or UNREVIEWED] += n
    return counts


def time_per_pair(samples) -> dict:
    """Seconds reviewers spent per decision (from the panel's timings): per reviewer, median and count."""
    import statistics

    if not _declared(samples._dataset, HISTORY_FIELD):
        return {}
    # Only pairs with a decision standing hold timed decisions worth counting: found on the status index.
    decided = {f"{REVIEW_FIELD}.status": {"$in": list(ACTIONS.values()) + [DISPUTED]}}
    modified = modified_samples(samples).mongo([{"$match": decided}])
    by_reviewer: dict[str, list[float]] = {}
    for history in modified.values(HISTORY_FIELD, _raw=True):
        history = history or []
        for entry in (history[i] for i in _live_actions(history)):  # an undone decision is no decision
            seconds = entry.get("seconds")
            if seconds is not None and (entry.get("action") in ACTIONS or entry.get("action") == "vote"):
                by_reviewer.setdefault(entry.get("reviewer") or "unknown", []).append(seconds)
    return {
        name: {"decisions": len(values), "median_s": round(statistics.median(values), 1)}
        for name, values in sorted(by_reviewer.items())
    }


def reviewed_pairs(samples, keep_references: bool = False) -> list[IDCPair]:
    """Accepted and edited pairs of ``samples``, their reviewed caption as the reference.

    With ``keep_references`` the source dataset's references follow it; by default the reviewer's
    caption stands alone (it is what the model should learn to say).
    """
    if not _declared(samples._dataset, REVIEW_FIELD):
        return []
    modified = modified_samples(samples).mongo([{"$match": {f"{REVIEW_FIELD}.status": {"$in": list(REVIEWED)}}}])
    ids, captions = modified.values(["id", f"{REVIEW_FIELD}.caption"])
    reviewed = {i: c for i, c in zip(ids, captions) if c}
    chosen = []
    for sample_id, pair in pairs_of_samples(samples._dataset, list(reviewed)).items():
        captions = [reviewed[sample_id]] + (pair.captions if keep_references else [])
        chosen.append(
            IDCPair(pair.id, pair.reference, pair.modified, captions, pair.split, pair.category, pair.metadata)
        )
    return chosen


def review_statuses(samples) -> dict[str, str]:
    """pair id -> review status, for the pairs of ``samples``."""
    modified = modified_samples(samples)
    if not _declared(samples._dataset, REVIEW_FIELD):
        return dict.fromkeys(modified.values(PAIR_ID), UNREVIEWED)
    pair_ids, statuses = modified.values([PAIR_ID, f"{REVIEW_FIELD}.status"])
    return {p: s or UNREVIEWED for p, s in zip(pair_ids, statuses)}
