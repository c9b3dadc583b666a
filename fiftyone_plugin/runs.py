"""Work on grouped IDC datasets: train on a view, caption a view, and record what was done."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from fiftyone_plugin.dataset import GROUP_FIELD, MODIFIED, dataset_to_pairs, mirror_to_reference
from idc_engine.data.loading import load_pairs
from idc_engine.data.pair import split_pairs
from idc_engine.inference.caption import GenerationConfig, caption_pairs
from idc_engine.train.config import TrainConfig
from idc_engine.train.loop import train


class Cancelled(Exception):
    """Raised from a progress callback when the user cancelled the operation."""


def train_on_samples(
    samples, out_dir, model_spec: str, config: TrainConfig, run_key: str | None = None, progress=None, cancelled=None
) -> dict:
    """Fine-tune on the view's train split (validating on its validation split); record a run.

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
    model = load_model(model_spec, for_training=True)
    total = config.max_steps

    def on_step(step, logs):
        if cancelled is not None and cancelled():
            raise Cancelled(f"training cancelled at step {step}; resume from {out_dir}")
        if progress is not None and (step % 10 == 0 or step == total):
            progress(step / total if total else 0.0, f"step {step}, loss {logs['loss']:.3f}")

    result = train(model, train_pairs, val_pairs, config, out_dir, show_progress=False, on_step=on_step)
    summary = {
        "model_dir": str(Path(result.model_dir).resolve()),
        "base_model": model_spec,
        "steps": result.steps,
        "stopped": result.stopped,
        "best": result.best,
        "train_pairs": len(train_pairs),
        "validation_pairs": len(val_pairs),
        "last": result.history[-1] if result.history else None,
    }
    if run_key is not None:
        dataset = samples._dataset
        run_config = dataset.init_run(method="train_blip2idc", model=model_spec, train_config=asdict(config))
        samples.register_run(run_key, run_config, overwrite=True)
        samples.save_run_results(run_key, dataset.init_run_results(run_key, **summary), overwrite=True)
    return summary


def caption_samples(
    samples,
    model,
    label_field: str = "idc_caption",
    generation: GenerationConfig | None = None,
    progress=None,
    cancelled=None,
    skip_bad_images: bool = True,
) -> dict:
    """Caption every pair in ``samples`` and write ``label_field`` on both slices of its group.

    Captions are written in one go after all are computed, so a cancelled run writes nothing.
    """
    generation = generation or GenerationConfig()
    pairs = dataset_to_pairs(samples)
    kept, images, report = load_pairs(pairs, skip_bad=skip_bad_images)

    def on_batch(done, total):
        if cancelled is not None and cancelled():
            raise Cancelled(f"captioning cancelled after {done} of {total} pairs; nothing was written")
        if progress is not None:
            progress(done / max(total, 1), f"{done}/{total} pairs")

    captions = caption_pairs(model, images, generation, progress=on_batch)
    dataset = samples._dataset
    modified = samples.select_group_slices(MODIFIED)
    ids, gids, pair_ids = modified.values(["id", f"{GROUP_FIELD}.id", "pair_id"])
    by_pair = {p.id: c for p, c in zip(kept, captions)}
    by_group = {gid: by_pair[pid] for gid, pid in zip(gids, pair_ids) if pid in by_pair}
    dataset.set_values(
        label_field, {sid: by_pair[pid] for sid, pid in zip(ids, pair_ids) if pid in by_pair}, key_field="id"
    )
    mirror_to_reference(dataset, label_field, by_group)
    return {"captioned": len(captions), "skipped": report.skipped_count, "skipped_examples": report.skipped[:3]}
