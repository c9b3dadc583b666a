"""Retrain on the reviewers' corrections, then measure honestly whether it helped.

The accepted and edited pairs are split by a hash of each pair id (so a pair's side never changes as
more pairs are reviewed): a held-out share is kept for the comparison, a validation share picks the
best step, the rest is trained on. Pairs of the dataset's test split are never trained on unless
asked (``include_test``); they join the held-out pairs instead, and their count is reported. The
reviewed pairs are mixed with the data the model learnt from (the dataset's train split, or a view
the user picks) at ``replay_ratio`` replayed pairs per reviewed one, so that it does not forget.

The comparison is reported three ways, each on exactly the same pairs before and after, both captioned
now by the old and the new model with the same decoding (never the stored captions the reviewers saw:
they may come from other decoding, another model or a hand):

* held-out **edited** pairs: where the old model was wrong, against the reviewers' corrections;
* held-out **accepted** pairs: where it was right. Their reference *is* the old model's caption, so this
  subset favours the old model by construction: a drop here is expected and small is good;
* the dataset's own **test references** (pairs never reviewed nor trained on), both models captioning
  them now: what retraining forgot, or gained, on the task itself.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field, replace
from pathlib import Path

from fiftyone_plugin.captioning import Cancelled, caption_source, write_captions
from fiftyone_plugin.dataset import dataset_to_pairs
from fiftyone_plugin.evaluation import compare_runs, evaluate_idc_captions
from fiftyone_plugin.review import ACCEPTED, EDITED, modified_samples, review_statuses, reviewed_pairs
from idc_engine.inference.caption import GenerationConfig, caption_idc_pairs
from idc_engine.train.config import TrainConfig

SUBSETS = ("held_out_edited", "held_out_accepted", "test_references")
ACCEPTED_NOTE = (
    "the references of accepted pairs are the old model's own captions: this subset favours the old model by "
    "construction"
)


@dataclass(frozen=True)
class RetrainConfig:
    """Every default of retraining on reviewed pairs (the training itself: ``TrainConfig``)."""

    holdout: float = field(default=0.2, metadata={"help": "share of reviewed pairs kept for the comparison"})
    validation: float = field(
        default=0.15, metadata={"help": "share of the other reviewed pairs that validates (picks the best step)"}
    )
    replay_ratio: float = field(
        default=1.0, metadata={"help": "pairs of the data the model learnt from, per reviewed training pair"}
    )
    include_test: bool = field(default=False, metadata={"help": "train on reviewed pairs of the test split too"})
    test_pairs: int = field(
        default=200, metadata={"help": "pairs of the dataset's test split captioned before and after (0: none)"}
    )
    seed: int = field(default=0, metadata={"help": "which replay and test pairs are drawn"})
    # A short fine-tune of a model already trained: fewer steps than ``TrainConfig``'s defaults.
    max_steps: int = field(default=300, metadata={"help": "training steps of the retraining"})
    batch_size: int = field(default=16, metadata={"help": "pairs per step"})
    learning_rate: float = field(default=2e-4, metadata={"help": "peak learning rate"})

    def __post_init__(self):
        for name in ("max_steps", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate!r}")
        if not 0.0 < self.holdout < 1.0:
            raise ValueError(f"holdout must be in (0, 1), got {self.holdout!r}")
        if not 0.0 <= self.validation < 1.0:
            raise ValueError(f"validation must be in [0, 1), got {self.validation!r}")
        if not self.replay_ratio >= 0:
            raise ValueError(f"replay_ratio must be zero or positive, got {self.replay_ratio!r}")
        if not isinstance(self.test_pairs, int) or self.test_pairs < 0:
            raise ValueError(f"test_pairs must be a non-negative integer, got {self.test_pairs!r}")


def retraining_train_config(retrain: RetrainConfig):
    """The ``TrainConfig`` of a retraining: its steps, batch and rate; warm-up, validation and checkpoints
    scaled to its length; the best step kept by validation loss (a few reviewed pairs make CIDEr-D noisy)."""
    from idc_engine.train.config import TrainConfig

    steps = retrain.max_steps
    return TrainConfig(
        learning_rate=retrain.learning_rate,
        batch_size=retrain.batch_size,
        max_steps=steps,
        warmup_steps=min(TrainConfig().warmup_steps, steps // 10),
        eval_every=max(1, steps // 5),
        eval_metric="loss",
        checkpoint_every=max(1, steps // 5),
    )


def free_field_name(dataset, name: str) -> str:
    """``name``, else ``name_2``, ``name_3``...: the first that no field and no retraining's evaluation uses."""
    fields, runs = set(dataset.get_field_schema()), dataset.list_evaluations()

    def taken(candidate):
        prefixes = tuple(f"{candidate}_{subset}_" for subset in SUBSETS)
        return candidate in fields or f"{candidate}_before" in fields or any(k.startswith(prefixes) for k in runs)

    candidate, n = name, 1
    while taken(candidate):
        n += 1
        candidate = f"{name}_{n}"
    return candidate


def _share(pair_id: str, salt: str) -> float:
    digest = hashlib.sha256(f"{salt}:{pair_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def held_out(pair_id: str, share: float) -> bool:
    return _share(pair_id, "holdout") < share


def plan_retraining(samples, caption_field: str, retrain: RetrainConfig = RetrainConfig(), replay_samples=None) -> dict:
    """Which pairs train, validate, replay and are compared: everything decided before the model loads.

    A held-out pair without a caption in ``caption_field`` cannot be compared (there is no "before"):
    it is left out of the comparison and counted.
    """
    dataset = samples._dataset
    reviewed = reviewed_pairs(samples)
    statuses = review_statuses(samples)
    modified = modified_samples(samples)
    captioned = set()
    if modified.has_field(caption_field):
        captioned = {p for p, c in zip(*modified.values(["pair_id", caption_field])) if isinstance(c, str)}
    held, training, validation, kept_from_test, uncaptioned = [], [], [], [], 0
    for pair in reviewed:
        if held_out(pair.id, retrain.holdout) and pair.id not in captioned:
            uncaptioned += 1
        elif held_out(pair.id, retrain.holdout):
            held.append(pair)
        elif pair.split == "test" and not retrain.include_test:
            kept_from_test.append(pair)  # never trained on unless asked: compared instead
            if pair.id in captioned:
                held.append(pair)
            else:
                uncaptioned += 1
        elif _share(pair.id, "validation") < retrain.validation:
            validation.append(replace(pair, split="validation"))
        else:
            training.append(replace(pair, split="train"))
    if not training or not held:
        raise ValueError(
            f"samples: {len(reviewed)} reviewed pairs give {len(training)} to train on and {len(held)} to compare "
            f"on ({len(kept_from_test)} of the test split left out of training); review more pairs (accept or "
            "edit) first"
        )
    reviewed_ids = {p.id for p in reviewed}
    source = replay_samples if replay_samples is not None else dataset.match_tags("train")
    # Never a test-split pair, even with include_test (which lets *reviewed* test pairs train): the test
    # references measure what retraining forgot, and a pair replayed there would be measured on itself.
    candidates = [p for p in dataset_to_pairs(source) if p.id not in reviewed_ids and p.captions and p.split != "test"]
    if replay_samples is None:
        candidates = [p for p in candidates if p.split == "train"]
    wanted = round(retrain.replay_ratio * len(training))
    replay = random.Random(retrain.seed).sample(candidates, min(wanted, len(candidates)))
    replay = [replace(p, split="train") for p in replay]
    replayed_ids = {p.id for p in replay}
    # The forgetting check must be pairs neither reviewed nor trained on: a replay view the user picks
    # (with include_test) may hold test-split pairs.
    tests = [
        p
        for p in dataset_to_pairs(dataset.match_tags("test"))
        if p.id not in reviewed_ids and p.id not in replayed_ids and p.captions
    ]
    tests = random.Random(retrain.seed + 1).sample(tests, min(retrain.test_pairs, len(tests)))
    return {
        "training": training,
        "validation": validation,
        "replay": replay,
        "replay_wanted": wanted,
        "held_edited": [p for p in held if statuses.get(p.id) == EDITED],
        "held_accepted": [p for p in held if statuses.get(p.id) == ACCEPTED],
        "test_left_out": len(kept_from_test),
        "uncaptioned": uncaptioned,
        "tests": tests,
    }


def retrain_on_reviewed(
    samples,
    caption_field: str,
    out_dir,
    config: TrainConfig,
    retrain: RetrainConfig = RetrainConfig(),
    new_field: str | None = None,
    eval_key: str | None = None,
    model: str | None = None,
    replay_samples=None,
    progress=None,
    cancelled=None,
    overwrite: bool = False,
) -> dict:
    """Train on reviewed pairs (with replay and validation), caption the compared pairs into
    ``new_field``, evaluate before and after, and return the three comparisons and every count.

    ``model`` defaults to the model that wrote ``caption_field``. ``progress(fraction, label)`` is
    called as training steps; ``cancelled()`` is checked at every step and stops the run (the dataset
    then holds nothing new; the last checkpoint in ``out_dir`` stays resumable).
    """
    from idc_engine.model.loading import load_model
    from idc_engine.train.loop import train

    dataset = samples._dataset
    new_field = new_field or free_field_name(dataset, f"{caption_field}_retrained")
    eval_key = eval_key or new_field
    for name, value in (("new_field", new_field), ("eval_key", eval_key)):
        if not value.isidentifier():
            raise ValueError(f"{name} must be a valid identifier, got {value!r}")
    before_field = f"{new_field}_before"
    keys = [f"{eval_key}_{name}_{when}" for name in SUBSETS for when in ("before", "after")]
    earlier = [f for f in (new_field, before_field) if dataset.has_sample_field(f)]
    earlier += [k for k in keys if k in dataset.list_evaluations()]
    if earlier and not overwrite:
        # A second run into the same field would leave the first run's captions on the pairs it does not
        # compare, under the new model's name: refuse before anything is trained.
        raise ValueError(
            f"new_field {new_field!r}: an earlier retraining stored {', '.join(map(repr, earlier))}; choose another "
            f"new_field (e.g. {free_field_name(dataset, new_field)!r}) or pass overwrite=True to replace them"
        )
    start = model or caption_source(dataset, caption_field)
    if start is None:
        raise ValueError(f"model: nothing records which model wrote {caption_field!r}; name the model to start from")
    plan = plan_retraining(samples, caption_field, retrain, replay_samples)
    report = progress or (lambda fraction, label: None)
    stop = cancelled or (lambda: False)
    generation = GenerationConfig()
    compared = plan["held_edited"] + plan["held_accepted"] + plan["tests"]

    network = load_model(start, for_training=True)

    def captioning(who, start_at, end_at, after_training):
        def on_batch(done, total):
            if stop():
                left = "; the trained model stays in out_dir" if after_training else ""
                raise Cancelled(f"retraining cancelled while {who} captioned; nothing was written to the dataset{left}")
            report(start_at + (end_at - start_at) * done / max(total, 1), f"{who} captioned {done} of {total} pairs")

        return on_batch

    # "Before" is the starting model captioning every compared pair now, with the decoding "after" uses:
    # the stored captions may come from another model or another decoding (beam search), which would
    # measure the decoding, not the retraining.
    report(0.01, f"the old model captions {len(compared)} held-out and test pairs")
    network.eval()
    before = caption_idc_pairs(network, compared, generation, progress=captioning("the old model", 0.01, 0.05, False))

    if plan["validation"] and not config.eval_every:
        config = replace(config, eval_every=max(1, (config.max_steps or 100) // 5))
    total = config.max_steps

    def on_step(step, logs):
        if stop():
            raise Cancelled(f"retraining cancelled at step {step}; nothing was written to the dataset")
        if not total or step % max(1, total // 20) == 0 or step == total:
            fraction = 0.05 + 0.7 * (step / total if total else 0.0)
            report(fraction, f"step {step} of {total}, loss {logs['loss']:.3f}")

    trained_on = plan["training"] + plan["replay"]
    report(0.05, f"training on {len(plan['training'])} reviewed + {len(plan['replay'])} replayed pairs")
    result = train(
        network,
        trained_on,
        plan["validation"] or None,
        config,
        out_dir,
        show_progress=False,
        on_step=on_step,
        overwrite=overwrite,
    )
    report(0.75, f"the new model captions {len(compared)} held-out and test pairs")
    network.eval()
    after = caption_idc_pairs(network, compared, generation, progress=captioning("the new model", 0.75, 0.85, True))
    model_dir = str(Path(result.model_dir).resolve())
    # Only with overwrite: none of an earlier run's captions or comparisons may stay beside this run's.
    for name in (new_field, before_field):
        if dataset.has_sample_field(name):
            dataset.delete_sample_field(name)
    for key in keys:
        if key in dataset.list_evaluations():
            dataset.delete_evaluation(key)
    write_captions(dataset, new_field, after, model_spec=model_dir)
    write_captions(dataset, before_field, before, model_spec=start)
    stored = (
        dict(zip(*modified_samples(dataset).values(["pair_id", caption_field])))
        if (dataset.has_sample_field(caption_field))
        else {}
    )
    held = plan["held_edited"] + plan["held_accepted"]
    redone = sum(before.captions.get(p.id) != stored.get(p.id) for p in held if p.id in before.captions)

    report(0.86, "evaluating before and after")
    comparisons = {}
    subsets = dict(
        zip(
            SUBSETS,
            ((plan["held_edited"], "reviewed"), (plan["held_accepted"], "reviewed"), (plan["tests"], "captions")),
        )
    )
    for name, (pairs, references) in subsets.items():
        if not pairs:
            comparisons[name] = {"pairs": 0, "table": None}
            continue
        view = dataset.match({"pair_id": {"$in": [p.id for p in pairs]}})
        keys = (f"{eval_key}_{name}_before", f"{eval_key}_{name}_after")
        evaluate_idc_captions(view, before_field, keys[0], baselines=False, references=references)
        evaluate_idc_captions(view, new_field, keys[1], baselines=False, references=references)
        comparisons[name] = {"pairs": len(pairs), "eval_keys": list(keys), "table": compare_runs(dataset, *keys)}
    comparisons["held_out_accepted"]["note"] = ACCEPTED_NOTE
    report(1.0, "done")
    return {
        "started_from": start,
        "model_dir": model_dir,
        "trained_on": len(plan["training"]),
        "validation": len(plan["validation"]),
        "replayed": len(plan["replay"]),
        "replay_wanted": plan["replay_wanted"],
        "held_out_edited": len(plan["held_edited"]),
        "held_out_accepted": len(plan["held_accepted"]),
        "test_split_left_out_of_training": plan["test_left_out"],
        "held_out_without_caption": plan["uncaptioned"],
        "test_pairs_compared": len(plan["tests"]),
        "steps": result.steps,
        "stopped": result.stopped,
        "best": result.best,
        # Recalibrated on the reviewed validation pairs, or (too few of them) kept from the starting model.
        "no_change_decision": result.no_change,
        "new_field": new_field,
        "before_field": before_field,
        "held_out_before_differs_from_stored": redone,
        "comparisons": comparisons,
    }
