"""Retrain on the reviewers' corrections, then measure whether it helped, on pairs it did not see.

The accepted and edited pairs are split (by a hash of each pair id, so the split never changes
when more pairs are reviewed) into a training share and a held-out share. The model that wrote the
caption field (its adapter, when it had one) is trained further on the training share; it captions
the held-out pairs into a new field; the old and the new captions are then evaluated against the
reviewed captions on exactly the same held-out pairs, and compared.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

from fiftyone_plugin.captioning import caption_source, write_captions
from fiftyone_plugin.evaluation import compare_runs, evaluate_idc_captions
from fiftyone_plugin.review import reviewed_pairs
from idc_engine.inference.caption import GenerationConfig, caption_idc_pairs
from idc_engine.train.config import TrainConfig


def held_out(pair_id: str, share: float) -> bool:
    digest = hashlib.sha256(pair_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def retrain_on_reviewed(
    samples,
    caption_field: str,
    out_dir,
    config: TrainConfig,
    new_field: str | None = None,
    eval_key: str | None = None,
    holdout: float = 0.2,
    model: str | None = None,
    progress=None,
    overwrite: bool = False,
) -> dict:
    """Train on reviewed pairs, caption the held-out ones into ``new_field``, evaluate and compare.

    ``model`` defaults to the model that wrote ``caption_field``. Returns the comparison table and
    where everything went.
    """
    from idc_engine.model.loading import load_model
    from idc_engine.train.loop import train

    if not 0.0 < holdout < 1.0:
        raise ValueError(f"holdout must be in (0, 1), got {holdout!r}")
    dataset = samples._dataset
    new_field = new_field or f"{caption_field}_retrained"
    eval_key = eval_key or f"{caption_field}_review"
    for name, value in (("new_field", new_field), ("eval_key", eval_key)):
        if not value.isidentifier():
            raise ValueError(f"{name} must be a valid identifier, got {value!r}")
    start = model or caption_source(dataset, caption_field)
    if start is None:
        raise ValueError(f"model: nothing records which model wrote {caption_field!r}; name the model to start from")
    reviewed = reviewed_pairs(samples)
    evaluation = [p for p in reviewed if held_out(p.id, holdout)]
    training = [replace(p, split="train") for p in reviewed if not held_out(p.id, holdout)]
    if not training or not evaluation:
        raise ValueError(
            f"samples: {len(reviewed)} reviewed pairs give {len(training)} to train on and {len(evaluation)} to "
            f"evaluate on; review more pairs (accept or edit) first"
        )
    report = progress or (lambda fraction, label: None)
    report(0.05, f"training on {len(training)} reviewed pairs, starting from {start}")
    network = load_model(start, for_training=True)
    result = train(network, training, None, config, out_dir, show_progress=False, overwrite=overwrite)
    report(0.7, f"captioning {len(evaluation)} held-out pairs")
    network.eval()
    captions = caption_idc_pairs(network, evaluation, GenerationConfig())
    write_captions(dataset, new_field, captions, model_spec=str(Path(result.model_dir).resolve()))
    report(0.8, "evaluating the old and the new captions against the reviewed ones")
    grouped = dataset.match({"pair_id": {"$in": [p.id for p in evaluation]}})
    before, after = f"{eval_key}_before", f"{eval_key}_after"
    evaluate_idc_captions(grouped, caption_field, before, baselines=False, references="reviewed")
    evaluate_idc_captions(grouped, new_field, after, baselines=False, references="reviewed")
    table = compare_runs(dataset, before, after)
    report(1.0, "done")
    return {
        "started_from": start,
        "model_dir": str(Path(result.model_dir).resolve()),
        "trained_on": len(training),
        "held_out": len(evaluation),
        "steps": result.steps,
        "new_field": new_field,
        "eval_keys": [before, after],
        "comparison": table,
    }
