"""Caption evaluation stored as a FiftyOne evaluation run.

Per-sample scores go to ``<eval_key>_cider``, ``<eval_key>_bleu4``, ``<eval_key>_meteor`` and
``<eval_key>_rouge_l`` on both slices of each evaluated group; the dataset-level metrics, the
per-category table and the baselines (scored on the same references) are the run's results.

Where a change reader reads the pairs' references (``idc_engine.metrics.change_level``; shapes-change
today), the run is also scored change by change: ``results.change_level`` holds the true-negative
and false-change rates on unchanged pairs, the hallucination rate and change-level precision /
recall / F1 (``None`` for free-text references, which no reader understands), and the modified slice
gets ``<eval_key>_false_change`` (on unchanged pairs: True when the caption states a change, False
when it says nothing changed; None elsewhere) and ``<eval_key>_hallucinated`` (True when the caption
names an object that is in neither image; None where that cannot be checked).
Re-running a key first deletes that key's fields and nothing else.
"""

from __future__ import annotations

import hashlib

import fiftyone as fo
import fiftyone.core.evaluation as foev

from fiftyone_plugin.dataset import GROUP_FIELD, MODIFIED, REFERENCE, check_grouped, dataset_to_pairs
from idc_engine.data.pair import split_pairs
from idc_engine.metrics.baselines import BaselineConfig
from idc_engine.metrics.report import evaluate

PER_SAMPLE = {"CIDEr-D": "cider", "BLEU-4": "bleu4", "METEOR": "meteor", "ROUGE-L": "rouge_l"}
# Change-level flags, on the modified slice only: per-pair value name -> field suffix.
CHANGE_FLAGS = {"false_change": "false_change", "hallucinated": "hallucinated"}


def sample_fields(eval_key: str) -> list[str]:
    return [f"{eval_key}_{suffix}" for suffix in (*PER_SAMPLE.values(), *CHANGE_FLAGS.values())]


REFERENCES = ("captions", "reviewed")


def pairs_digest(pair_ids) -> str:
    """A fingerprint of a set of pairs: two runs with the same one scored the same pairs."""
    return hashlib.sha256("\n".join(sorted(pair_ids)).encode()).hexdigest()[:16]


class IDCCaptionEvaluationConfig(foev.EvaluationMethodConfig):
    def __init__(self, pred_field, baselines=True, references="captions", **kwargs):
        super().__init__(**kwargs)
        self.pred_field = pred_field
        self.baselines = baselines
        self.references = references

    @property
    def type(self):
        return "idc_captions"

    @property
    def method(self):
        return "pycocoevalcap"


class IDCCaptionEvaluation(foev.EvaluationMethod):
    def get_fields(self, samples, eval_key):
        return sample_fields(eval_key)

    def rename(self, samples, eval_key, new_eval_key):
        dataset = samples._dataset
        # A run on free-text references has no change-level fields to rename.
        names = {
            a: b for a, b in zip(sample_fields(eval_key), sample_fields(new_eval_key)) if dataset.has_sample_field(a)
        }
        if names:
            dataset.rename_sample_fields(names)

    def cleanup(self, samples, eval_key):
        dataset = samples._dataset
        present = [f for f in sample_fields(eval_key) if dataset.has_sample_field(f)]
        if present:
            dataset.delete_sample_fields(present)

    def _validate_run(self, samples, eval_key, existing_info):
        self._validate_fields_match(eval_key, "pred_field", existing_info)


class IDCCaptionEvaluationResults(foev.EvaluationResults):
    def __init__(
        self,
        samples,
        config,
        eval_key,
        metrics=None,
        per_category=None,
        baselines=None,
        change_reading=None,
        left_out=None,
        pairs=None,
        unreferenced=None,
        change_level=None,
        change_level_by_category=None,
        backend=None,
    ):
        super().__init__(samples, config, eval_key, backend=backend)
        # Pairs of the view without a caption in pred_field: not scored by any system.
        self.left_out = left_out or {"count": 0, "pairs": []}
        # Pairs of the view without reference captions (not described yet): not scored either.
        self.unreferenced = unreferenced or {"count": 0, "pairs": []}
        # The scored pairs: their count and fingerprint (compare_runs needs both runs on the same ones).
        self.pairs = pairs or {"count": 0, "digest": None}
        self.metrics = metrics or {}
        self.per_category = per_category or {}
        self.baselines = baselines or {}
        # Exact readings of the captions (shapes-change references only; None elsewhere).
        self.change_reading = change_reading
        # Change by change (true_negative_rate, false_change_rate, hallucination_rate, precision, recall,
        # f1, unchanged_pairs, ...); None where no reader reads the references (free text).
        self.change_level = change_level
        self.change_level_by_category = change_level_by_category

    @classmethod
    def _from_dict(cls, d, samples, config, eval_key):
        return cls(
            samples,
            config,
            eval_key,
            metrics=d.get("metrics"),
            per_category=d.get("per_category"),
            baselines=d.get("baselines"),
            change_reading=d.get("change_reading"),
            change_level=d.get("change_level"),
            change_level_by_category=d.get("change_level_by_category"),
            left_out=d.get("left_out"),
            pairs=d.get("pairs"),
            unreferenced=d.get("unreferenced"),
        )


def evaluate_idc_captions(
    samples, pred_field: str, eval_key: str, baselines: bool = True, progress=None, references: str = "captions"
):
    """Score ``pred_field`` (on the modified slice) of every pair in ``samples`` against its captions.

    Pass a view (e.g. ``dataset.match_tags("test")``) to score one split. Pairs without a caption are
    left out and counted (``results.left_out``). The baselines draw on the dataset's train split; the
    mean sentence is chosen on its validation split (train when it has none). ``references``:
    ``captions`` (the dataset's own) or ``reviewed`` (the reviewers' accepted and edited captions,
    only on the pairs that have one). Returns the stored :class:`IDCCaptionEvaluationResults`.
    """
    if not eval_key.isidentifier():
        raise ValueError(f"eval_key must be a valid identifier, got {eval_key!r}")
    if references not in REFERENCES:
        raise ValueError(f"references must be one of {REFERENCES}, got {references!r}")
    dataset = samples._dataset
    check_grouped(dataset)
    modified = samples.select_group_slices(MODIFIED)
    if not modified.has_field(pred_field):
        raise ValueError(f"pred_field: the modified slice has no field {pred_field!r}")
    if references == "reviewed":
        from fiftyone_plugin.review import reviewed_pairs

        pairs = reviewed_pairs(samples)
        if not pairs:
            raise ValueError("references 'reviewed': no pair of the view has an accepted or edited caption")
    else:
        pairs = dataset_to_pairs(samples)
    modified_ids, group_ids, pair_ids, predictions = modified.values(["id", f"{GROUP_FIELD}.id", "pair_id", pred_field])
    captioned = {pid: c for pid, c in zip(pair_ids, predictions) if isinstance(c, str)}
    if not captioned:
        raise ValueError(f"pred_field {pred_field!r}: none of the {len(pair_ids)} pairs has a caption")
    train_pairs = validation_pairs = None
    if baselines:
        everything = dataset_to_pairs(dataset)
        train_pairs = split_pairs(everything, "train") or None
        evaluated = {p.id for p in pairs}
        # The constant is chosen on validation pairs, unless those are what is being evaluated.
        validation_pairs = [p for p in split_pairs(everything, "validation") if p.id not in evaluated] or None
    if progress:
        progress(0.1, "scoring captions")
    report = evaluate(pairs, captioned, train_pairs, BaselineConfig(), validation_pairs=validation_pairs)

    config = IDCCaptionEvaluationConfig(pred_field, baselines=baselines, references=references)
    method = config.build()
    # Registers the run; an existing run of this key is cleaned up first (its fields only).
    method.register_run(samples, eval_key, overwrite=True, cleanup=True)
    if progress:
        progress(0.8, "writing per-sample scores")
    model = report.systems["model"]
    group_of = dict(zip(pair_ids, group_ids))
    both = dataset.select_group_slices([REFERENCE, MODIFIED])
    sample_ids, sample_groups = both.values(["id", f"{GROUP_FIELD}.id"])
    by_group = {}
    for pid, scores in model.scores.per_sample.items():
        by_group[group_of[pid]] = scores
    for metric, suffix in PER_SAMPLE.items():
        values = {sid: by_group[gid][metric] for sid, gid in zip(sample_ids, sample_groups) if gid in by_group}
        dataset.set_values(f"{eval_key}_{suffix}", values, key_field="id")
    level = model.change_level
    if level is not None:
        sample_of = dict(zip(pair_ids, modified_ids))
        for flag, suffix in CHANGE_FLAGS.items():
            values = {sample_of[pid]: flags[flag] for pid, flags in level.per_sample.items()}
            name = f"{eval_key}_{suffix}"
            if not dataset.has_sample_field(name):
                # Declared: when no caption could be read every flag is None, from which FiftyOne
                # cannot infer a type (and the run failed after the scores were written).
                dataset.add_sample_field(name, fo.BooleanField)
            dataset.set_values(name, values, key_field="id")
    results = IDCCaptionEvaluationResults(
        samples,
        config,
        eval_key,
        metrics=model.table["all"],
        per_category={k: v for k, v in model.table.items() if k != "all"},
        baselines={
            name: {
                "note": system.note,
                "table": system.table,
                "change_reading": system.reading,
                "change_level": system.change_level.to_dict() if system.change_level else None,
            }
            for name, system in report.systems.items()
            if name != "model"
        },
        change_reading=model.reading,
        change_level=level.to_dict() if level is not None else None,
        change_level_by_category=level.by_category if level is not None else None,
        left_out={"count": len(report.left_out), "pairs": report.left_out[:20]},
        pairs={"count": len(model.predictions), "digest": pairs_digest(model.predictions)},
        unreferenced={"count": len(report.unreferenced), "pairs": report.unreferenced[:20]},
        backend=method,
    )
    method.save_run_results(samples, eval_key, results)
    return results


def compare_runs(dataset, eval_key_a: str, eval_key_b: str, metric: str = "CIDEr-D") -> dict:
    """``metric`` of two evaluation runs side by side, overall and per category, with b - a.

    Both runs must have scored the same pairs against the same kind of references: a difference
    between runs over different pairs would measure the pairs, not the models.
    """
    a, b = dataset.load_evaluation_results(eval_key_a), dataset.load_evaluation_results(eval_key_b)
    if a.pairs.get("digest") is None or a.pairs != b.pairs:
        raise ValueError(
            f"eval keys {eval_key_a!r} and {eval_key_b!r} scored different pairs ({a.pairs.get('count')} and "
            f"{b.pairs.get('count')}); evaluate both on the same view to compare them"
        )
    kinds = (a.config.references, b.config.references)
    if kinds[0] != kinds[1]:
        raise ValueError(f"eval keys {eval_key_a!r} and {eval_key_b!r} used different references {kinds}")
    rows = {"all": (a.metrics.get(metric), b.metrics.get(metric))}
    for category in sorted(set(a.per_category) | set(b.per_category)):
        rows[category] = (a.per_category.get(category, {}).get(metric), b.per_category.get(category, {}).get(metric))
    return {
        category: {
            eval_key_a: va,
            eval_key_b: vb,
            "delta": (vb - va) if va is not None and vb is not None else None,
        }
        for category, (va, vb) in rows.items()
    }
