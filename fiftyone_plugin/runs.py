"""Training on grouped IDC datasets, recorded as a run of the dataset."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from fiftyone_plugin.captioning import Cancelled
from fiftyone_plugin.dataset import dataset_to_pairs
from idc_engine.data.pair import split_pairs
from idc_engine.train.config import TrainConfig
from idc_engine.train.loop import train

__all__ = ["Cancelled", "train_on_samples"]


def train_on_samples(
    samples,
    out_dir,
    model_spec: str,
    config: TrainConfig,
    run_key: str | None = None,
    progress=None,
    cancelled=None,
    resume: bool = False,
    overwrite: bool = False,
) -> dict:
    """Fine-tune on the view's train split (validating on its validation split); record a run.

    Pairs without reference captions are left out; ``unreferenced`` in the summary counts them per
    split, and ``train_pairs`` / ``validation_pairs`` count the pairs used.

    ``resume`` continues the run in ``out_dir``; ``overwrite`` replaces it (otherwise a folder that
    holds anything is refused).

    The dataset is written once, at the end (the run record); a cancelled or failed training leaves
    it as it was, with a resumable checkpoint in ``out_dir``.
    """
    from idc_engine.model.loading import load_model

    if run_key is not None and not run_key.isidentifier():
        raise ValueError(f"run_key must be a valid identifier, got {run_key!r}")
    pairs = dataset_to_pairs(samples)
    train_pairs, val_pairs = split_pairs(pairs, "train"), split_pairs(pairs, "validation")
    if not train_pairs:
        raise ValueError("samples: the view holds no pairs tagged 'train'")
    # Checked before the model loads (slow); train() leaves the same pairs out and counts them.
    if not any(p.has_references for p in train_pairs):
        raise ValueError(
            f"samples: none of the view's {len(train_pairs)} pairs tagged 'train' has reference captions; "
            "describe some before training"
        )
    model = load_model(model_spec, for_training=True)
    total = config.max_steps

    def on_step(step, logs):
        if cancelled is not None and cancelled():
            raise Cancelled(f"training cancelled at step {step}; resume from {out_dir}")
        if progress is not None and (step % 10 == 0 or step == total):
            progress(step / total if total else 0.0, f"step {step}, loss {logs['loss']:.3f}")

    result = train(
        model,
        train_pairs,
        val_pairs,
        config,
        out_dir,
        resume=resume,
        overwrite=overwrite,
        show_progress=False,
        on_step=on_step,
    )
    summary = {
        "model_dir": str(Path(result.model_dir).resolve()),
        "base_model": model_spec,
        "steps": result.steps,
        "stopped": result.stopped,
        "best": result.best,
        "train_pairs": len(train_pairs) - result.unreferenced["train"],
        "validation_pairs": len(val_pairs) - result.unreferenced["validation"],
        "unreferenced": result.unreferenced,
        "last": result.history[-1] if result.history else None,
    }
    if run_key is not None:
        dataset = samples._dataset
        run_config = dataset.init_run(method="train_blip2idc", model=model_spec, train_config=asdict(config))
        samples.register_run(run_key, run_config, overwrite=True)
        samples.save_run_results(run_key, dataset.init_run_results(run_key, **summary), overwrite=True)
    return summary
