"""The training loop: readable top to bottom, resumable, and deterministic for a given seed.

Which pair, which of its reference captions and which augmentation a step uses depend only on the
seed and the step, never on history, so a resumed run continues exactly where the killed one
stopped.

Under ``torchrun`` / ``accelerate launch`` (several processes, one per GPU) ``batch_size`` stays the
*global* micro-batch: rank r of W takes positions ``[first + r*b/W, first + (r+1)*b/W)`` of the same
stream, each rank's loss is weighted by its share of the batch's caption tokens, and the summed
gradients are the single-process gradient of the whole batch; the learning rate and schedule are
the config's. Rank 0 alone validates and writes checkpoints, the best weights, the model and the
training record; the others wait for its results (see ``idc_engine.train.distributed``).
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from idc_engine.data.loading import LoadReport, load_pairs
from idc_engine.data.pair import IDCPair, with_references
from idc_engine.inference.caption import GenerationConfig, caption_pairs, pair_prompts
from idc_engine.inference.no_change import apply_calibration, calibrate_after_training
from idc_engine.model.blip2idc import BLIP2IDC, PairPixels
from idc_engine.model.text import IGNORE_INDEX
from idc_engine.provenance import git_revision, provenance
from idc_engine.train import distributed
from idc_engine.train.augment import augment_pair
from idc_engine.train.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    load_trainable_state,
    rng_state,
    save_checkpoint,
    trainable_state,
)
from idc_engine.train.config import TrainConfig
from idc_engine.train.schedule import lr_factor

MODEL_DIR = "model"
CHECKPOINT_DIR = "checkpoints"
TRAINING_RECORD = "training.json"


@dataclass
class TrainResult:
    model_dir: Path
    steps: int
    stopped: str
    history: list[dict] = field(default_factory=list)
    best: dict | None = None
    train_report: LoadReport | None = None
    validation_report: LoadReport | None = None
    # Pairs left out for having no reference captions: {"train": n, "validation": m}.
    unreferenced: dict[str, int] = field(default_factory=dict)


class PairStream:
    """The deterministic stream of training examples: position -> (pair, caption, augmentation)."""

    def __init__(self, pairs: list[IDCPair], images, config: TrainConfig):
        self.pairs, self.images, self.config = pairs, images, config
        self._epoch, self._order = -1, None

    def _index(self, position: int) -> int:
        epoch, offset = divmod(position, len(self.pairs))
        if epoch != self._epoch:
            self._epoch = epoch
            self._order = np.random.default_rng([self.config.seed, 11, epoch]).permutation(len(self.pairs))
        return int(self._order[offset])

    def example(self, position: int):
        index = self._index(position)
        rng = np.random.default_rng([self.config.seed, 13, position])
        pair = self.pairs[index]
        caption = pair.captions[int(rng.integers(len(pair.captions)))]
        reference, modified = self.images[index]
        if self.config.augment.enabled:
            reference, modified = augment_pair(reference, modified, self.config.augment, rng)
        return (reference, modified), caption

    def batch(self, pixels, first_position: int, size: int | None = None):
        """Pixel values, captions and per-pair prompts (``metadata["prompt"]``, a task's own prompt).

        ``pixels`` turns image pairs into pixel values (a ``PairPixels``, or the model, which has one).
        ``size`` positions from ``first_position`` (default ``batch_size``: one rank's share is fewer).
        """
        to_pixels = pixels.pixel_values if isinstance(pixels, BLIP2IDC) else pixels
        positions = [first_position + i for i in range(size or self.config.batch_size)]
        examples = [self.example(p) for p in positions]
        prompts = [self.pairs[self._index(p)].metadata.get("prompt") for p in positions]
        return to_pixels([e[0] for e in examples]), [e[1] for e in examples], prompts


class MicroBatches(torch.utils.data.Dataset):
    """The micro-batches of a run, in order, for a DataLoader: with workers, the next batches are
    decoded, augmented and processed in other processes while the model trains on this one."""

    def __init__(self, stream: PairStream, pixels: PairPixels, plan: list[tuple[int, int]]):
        self.stream, self.pixels, self.plan = stream, pixels, plan

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, index: int):
        return self.stream.batch(self.pixels, *self.plan[index])


def micro_batches(stream: PairStream, model: BLIP2IDC, plan, workers: int):
    """An iterator over ``plan``'s micro-batches (first position, size), prepared by ``workers`` processes."""
    dataset = MicroBatches(
        stream, PairPixels(model.image_processor, model.config.encoding, model.config.orientation), plan
    )
    if workers == 0:
        return (dataset[i] for i in range(len(dataset)))
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=None,  # each item already is a micro-batch
        num_workers=workers,
        pin_memory=model.device.type == "cuda",
        prefetch_factor=2,
        persistent_workers=False,
    )
    return iter(loader)


def _autocast(device: torch.device, mixed_precision: str):
    """The autocast context of training, validation and captioning, and fp16's gradient scaler."""
    if mixed_precision == "no":
        return nullcontext(), None
    if device.type == "cuda":
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mixed_precision)
        if dtype is None:  # auto
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
        return torch.autocast("cuda", dtype=dtype), scaler
    if device.type == "cpu" and mixed_precision == "bf16":  # asked for: CPU bf16 is slower on many CPUs
        return torch.autocast("cpu", dtype=torch.bfloat16), None
    return nullcontext(), None


def frozen_weights_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The dtype LoRA's frozen weights are cast to (None: left as loaded, float32 for training)."""
    if config.finetune != "lora" or config.frozen_dtype == "float32":
        return None
    if config.frozen_dtype == "auto":
        if device.type != "cuda" or config.mixed_precision == "no":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[config.frozen_dtype]


@torch.no_grad()
def validate(model: BLIP2IDC, pairs: list[IDCPair], images, config: TrainConfig, autocast) -> dict:
    """Validation loss on each pair's first caption and, if asked, CIDEr-D of greedy captions.

    Each pair is asked with its own prompt (``metadata["prompt"]``), as in training.
    """
    from idc_engine.metrics.captions import score_captions

    was_training = model.training
    model.eval()
    losses, weights = [], []
    try:
        for start in range(0, len(pairs), config.batch_size):
            batch_pairs = pairs[start : start + config.batch_size]
            pixel_values = model.pixel_values(images[start : start + config.batch_size])
            with autocast:
                loss = model.loss(pixel_values, [p.captions[0] for p in batch_pairs], pair_prompts(batch_pairs))
            losses.append(float(loss))
            weights.append(len(batch_pairs))
        result = {"val_loss": float(np.average(losses, weights=weights))}
        if config.eval_metric == "cider":
            with autocast:
                predictions = caption_pairs(
                    model, images, GenerationConfig(batch_size=config.batch_size), prompts=pair_prompts(pairs)
                )
            scores = score_captions(
                {p.id: c for p, c in zip(pairs, predictions)}, {p.id: p.captions for p in pairs}, ("CIDEr-D",)
            )
            result["val_cider"] = scores.corpus["CIDEr-D"]
    finally:
        model.train(was_training)
    return result


def prepare_out_dir(out_dir: Path, resume: bool, overwrite: bool):
    """Refuse to mix two runs in one folder: checkpoints of an older run would be pruned or resumed."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"out_dir {str(out_dir)!r}: is a file, not a folder")
    if not resume and out_dir.is_dir():
        present = sorted(p.name for p in out_dir.iterdir())
        if present and not overwrite:
            raise ValueError(
                f"out_dir {str(out_dir)!r}: not empty (holds {', '.join(present[:3])}"
                f"{' ...' if len(present) > 3 else ''}); resume the run in it, overwrite it, or choose a new folder"
            )
        for name in (CHECKPOINT_DIR, MODEL_DIR):
            if (out_dir / name).exists():
                shutil.rmtree(out_dir / name)
    out_dir.mkdir(parents=True, exist_ok=True)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.3g} min"


def projected_total_steps(
    max_steps: int, step: int, elapsed_s: float, budget_s: float, session_steps: int, session_s: float
) -> int:
    """The step at which a time-budgeted run will stop: ``max_steps``, or sooner when the clock runs out."""
    if session_steps <= 0 or session_s <= 0:
        return max_steps
    remaining = max(0.0, budget_s - elapsed_s) * session_steps / session_s
    return int(min(max_steps, step + math.ceil(remaining)))


def _improved(metric: str, value: float, best: float | None) -> bool:
    if best is None:
        return True
    return value > best if metric == "cider" else value < best


def prepare_model(model: BLIP2IDC, config: TrainConfig):
    """Make exactly the parameters that this fine-tuning mode trains require gradients; with LoRA,
    cast the frozen weights to ``frozen_dtype`` (the trained ones stay float32, autocast mixes them)."""
    if config.finetune == "lora":
        if not model.has_adapter:
            model.add_lora(config.lora)
        dtype = frozen_weights_dtype(config, model.device)
        if dtype is not None:
            for parameter in model.parameters():
                if not parameter.requires_grad and parameter.is_floating_point():
                    parameter.data = parameter.data.to(dtype)
    else:
        if model.has_adapter:
            raise ValueError("finetune='full' on a model with a LoRA adapter; merge_lora() it first")
        for parameter in model.parameters():
            parameter.requires_grad_(True)
    if config.gradient_checkpointing:
        # Non-reentrant: the reentrant kind loses the gradient of LoRA weights behind frozen inputs.
        with warnings.catch_warnings():  # transformers 5 renames it; the new name is not in 5.18 yet
            warnings.simplefilter("ignore", FutureWarning)
            model.base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.base.config.text_config.use_cache = False


def train(
    model: BLIP2IDC,
    train_pairs: list[IDCPair],
    val_pairs: list[IDCPair] | None,
    config: TrainConfig,
    out_dir,
    resume: bool = False,
    show_progress: bool = True,
    on_step=None,
    overwrite: bool = False,
) -> TrainResult:
    """Fine-tune ``model`` on ``train_pairs``; write checkpoints, the best model and a training record.

    ``val_pairs`` must not be the test split. Pairs without reference captions are left out of
    both and counted (``TrainResult.unreferenced``, and ``unreferenced`` in the training record).
    ``on_step(step, logs)`` is called after every optimizer step (on every rank); it may raise to
    stop training (the last checkpoint stays resumable).
    A new run refuses an ``out_dir`` that holds anything, unless ``resume`` (continue the run in it)
    or ``overwrite`` (replace its checkpoints and model).

    Started by ``torchrun`` / ``accelerate launch``, every process calls this with the same
    arguments; ``config.batch_size`` is the global micro-batch and must divide by the number of
    processes. A CUDA model moves to ``cuda:<LOCAL_RANK>``. Every rank returns the same result and
    ends with the same weights in memory.
    """
    revision = git_revision()
    out_dir = Path(out_dir)
    if any(p.split == "test" for p in (val_pairs or [])):
        raise ValueError("val_pairs: contains test-split pairs; validate on the validation split, never on test")
    train_pairs, train_unreferenced = with_references(train_pairs)
    val_pairs, val_unreferenced = with_references(val_pairs or [])
    unreferenced = {"train": len(train_unreferenced), "validation": len(val_unreferenced)}
    if not train_pairs:
        raise ValueError(
            f"train_pairs: none of the {len(train_unreferenced)} pairs has reference captions; "
            "describe some (or import captioned pairs) before training"
        )
    ctx = distributed.setup(model.device)
    try:
        return _train(
            ctx,
            model,
            train_pairs,
            val_pairs,
            config,
            out_dir,
            resume,
            show_progress,
            on_step,
            overwrite,
            revision=revision,
            unreferenced=unreferenced,
        )
    finally:
        ctx.close()


def _train(
    ctx: distributed.Distributed,
    model: BLIP2IDC,
    train_pairs: list[IDCPair],
    val_pairs: list[IDCPair],
    config: TrainConfig,
    out_dir: Path,
    resume: bool,
    show_progress: bool,
    on_step,
    overwrite: bool,
    revision,
    unreferenced: dict[str, int],
) -> TrainResult:
    rank_batch = distributed.local_batch_size(config.batch_size, ctx.world_size)
    if ctx.enabled and model.device.type == "cuda" and model.device != ctx.device:
        model.to(ctx.device)
    ctx.on_main(prepare_out_dir, out_dir, resume, overwrite)
    torch.manual_seed(config.seed)
    train_pairs, train_images, train_report = load_pairs(
        train_pairs, skip_bad=config.skip_bad_images, max_cached_pixels=config.max_cached_pixels
    )
    if not train_pairs:
        raise ValueError(f"train_pairs: no usable training pairs ({train_report.summary()})")
    val_images, val_report = [], None
    if val_pairs and config.eval_every:
        val_pairs, val_images, val_report = load_pairs(
            val_pairs[: config.eval_max_pairs], skip_bad=config.skip_bad_images
        )

    prepare_model(model, config)
    model.train()
    parameters = model.trainable_parameters()
    if ctx.enabled:
        ctx.broadcast_parameters(parameters)  # every rank starts from rank 0's weights
        if ctx.rank:  # and draws its own dropout masks
            torch.manual_seed(int(np.random.SeedSequence([config.seed, 17, ctx.rank]).generate_state(1)[0]))
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)
    pairs_per_step = config.batch_size * config.grad_accum_steps
    total_steps = config.max_steps or max(1, math.ceil(config.epochs * len(train_pairs) / pairs_per_step))
    budget_fraction = {"value": None}  # read by the schedule: elapsed share of time_budget_s, if any
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: lr_factor(
            step, total_steps, config.warmup_steps, config.schedule, config.min_lr_ratio, budget_fraction["value"]
        ),
    )
    autocast, scaler = _autocast(model.device, config.mixed_precision)

    state = {"step": 0, "history": [], "best": None, "evals_without_gain": 0, "elapsed_s": 0.0}
    checkpoints = out_dir / CHECKPOINT_DIR
    best_state = None  # kept by rank 0, which writes the model
    if resume:
        found = latest_checkpoint(checkpoints)
        if found is None:
            raise FileNotFoundError(f"resume: no checkpoint under {checkpoints}")
        state = load_checkpoint(found, model, optimizer, scheduler, scaler, rank=ctx.rank)
        best_path = checkpoints / "best.safetensors"
        if best_path.is_file() and ctx.is_main:
            from safetensors.torch import load_file

            best_state = load_file(str(best_path))

    if config.time_budget_s:
        budget_fraction["value"] = state["elapsed_s"] / config.time_budget_s
    stream = PairStream(train_pairs, train_images, config)
    stopped = "completed"
    started = time.perf_counter() - state["elapsed_s"]
    bar = tqdm(
        # A time-budgeted run ends when the clock does: its length is only known once steps are timed.
        total=None if config.time_budget_s else total_steps,
        initial=state["step"],
        desc=f"training ({_duration(config.time_budget_s)} budget)" if config.time_budget_s else "training",
        disable=not (show_progress and ctx.is_main),
        unit="step",
        dynamic_ncols=True,
        mininterval=0.5 if sys.stderr.isatty() else 30.0,  # logs, not terminals, get a line every 30 s
    )
    session = {"step": state["step"], "clock": time.perf_counter()}
    running_loss, pairs_seen, window_start = None, 0, time.perf_counter()
    plan = [
        ((step * config.grad_accum_steps + micro) * config.batch_size + ctx.rank * rank_batch, rank_batch)
        for step in range(state["step"], total_steps)
        for micro in range(config.grad_accum_steps)
    ]
    batches = micro_batches(stream, model, plan, config.loader_workers)
    try:
        for step in range(state["step"], total_steps):
            optimizer.zero_grad(set_to_none=True)
            step_loss = 0.0
            for _ in range(config.grad_accum_steps):
                pixel_values, captions, prompts = next(batches)
                prompts = prompts if any(prompts) else None
                share = _token_share(ctx, model, captions, prompts)
                with autocast:
                    loss = model.loss(pixel_values, captions, prompts)
                    loss = loss * share / config.grad_accum_steps
                (scaler.scale(loss) if scaler else loss).backward()
                step_loss += loss.item()
            ctx.sum_gradients(parameters)  # now the gradient of the global batch on every rank
            if scaler:
                scaler.unscale_(optimizer)
            if config.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(parameters, config.max_grad_norm)
            if scaler:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            state["step"] = step + 1
            state["elapsed_s"] = time.perf_counter() - started
            if ctx.enabled:  # the global batch's loss, and rank 0's clock: every rank decides alike
                step_loss, state["elapsed_s"] = ctx.all_sum([step_loss, state["elapsed_s"] if ctx.is_main else 0.0])
            if config.time_budget_s:
                budget_fraction["value"] = state["elapsed_s"] / config.time_budget_s
            scheduler.step()
            running_loss = step_loss if running_loss is None else 0.95 * running_loss + 0.05 * step_loss
            pairs_seen += pairs_per_step
            logs = {"step": step + 1, "loss": step_loss, "lr": scheduler.get_last_lr()[0]}

            if config.eval_every and val_pairs and (step + 1) % config.eval_every == 0:
                logs.update(ctx.on_main(validate, model, val_pairs, val_images, config, autocast))
                value = logs["val_cider" if config.eval_metric == "cider" else "val_loss"]
                if _improved(config.eval_metric, value, state["best"] and state["best"]["value"]):
                    state["best"] = {"step": step + 1, "value": value, "metric": config.eval_metric}
                    state["evals_without_gain"] = 0
                    if ctx.is_main:
                        best_state = trainable_state(model)
                    ctx.on_main(_save_best, checkpoints, best_state)
                else:
                    state["evals_without_gain"] += 1
                if ctx.is_main:
                    bar.write(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in logs.items()}))
            if (step + 1) % config.log_every == 0 or "val_loss" in logs:
                state["history"].append(logs)
                elapsed = time.perf_counter() - window_start
                bar.set_postfix(
                    loss=f"{running_loss:.3f}", pairs_s=f"{pairs_seen / max(elapsed, 1e-9):.0f}", refresh=False
                )
                pairs_seen, window_start = 0, time.perf_counter()
            if config.time_budget_s:
                bar.total = projected_total_steps(
                    total_steps,
                    step + 1,
                    state["elapsed_s"],
                    config.time_budget_s,
                    step + 1 - session["step"],
                    time.perf_counter() - session["clock"],
                )
            bar.update(1)
            if (step + 1) % config.checkpoint_every == 0 or step + 1 == total_steps:
                rng_by_rank = ctx.all_gather(rng_state()) if ctx.enabled else None
                ctx.on_main(
                    save_checkpoint,
                    checkpoints,
                    step + 1,
                    model,
                    optimizer,
                    scheduler,
                    state,
                    scaler,
                    rng_by_rank=rng_by_rank,
                )
            if on_step is not None:
                on_step(step + 1, logs)
            if config.early_stopping_patience and state["evals_without_gain"] >= config.early_stopping_patience:
                stopped = "early_stopping"
                break
            if config.time_budget_s and state["elapsed_s"] >= config.time_budget_s:
                stopped = "time_budget"
                break
    finally:
        bar.close()
        del batches  # stops the loader's worker processes now, not whenever it is collected

    if best_state is not None:
        load_trainable_state(model, best_state)
    if ctx.broadcast(best_state is not None):
        ctx.broadcast_parameters(parameters)  # the best weights in every rank's memory too
    # The "no change" decision of the best weights, calibrated on the validation pairs (no-op without them).
    no_change = ctx.on_main(calibrate_after_training, model, val_pairs, val_images)
    apply_calibration(model.config, no_change)
    model_dir = out_dir / MODEL_DIR

    def write_model():
        model.save_pretrained(model_dir)
        record = provenance(
            config=config.to_dict(),
            seed=config.seed,
            revision=revision,
            base_model=model.source,
            idc_config=model.config.__dict__,
            steps=state["step"],
            stopped=stopped,
            best=state["best"],
            train_pairs=len(train_pairs),
            validation_pairs=len(val_pairs or []),
            unreferenced=unreferenced,
            skipped_images={"train": train_report.skipped, "validation": val_report.skipped if val_report else []},
            processes=ctx.world_size,
            elapsed_s=round(state["elapsed_s"], 1),
            no_change=no_change,
            history=state["history"],
        )
        (model_dir / TRAINING_RECORD).write_text(json.dumps(record, indent=2, default=str))

    ctx.on_main(write_model)
    return TrainResult(
        model_dir, state["step"], stopped, state["history"], state["best"], train_report, val_report, unreferenced
    )


def _token_share(ctx: distributed.Distributed, model: BLIP2IDC, captions: list[str], prompts) -> float:
    """This rank's share of the global micro-batch's supervised tokens (1.0 in a single process).

    The loss is a mean over caption tokens; weighting each rank's mean by its share of the tokens
    makes the sum over ranks the mean over the whole batch, as a single process computes it.
    """
    if not ctx.enabled:
        return 1.0
    labels = model.text_batch(captions, prompts)["labels"]
    tokens = float((labels[:, 1:] != IGNORE_INDEX).sum())  # the shifted labels the loss is taken over
    (total,) = ctx.all_sum([tokens])
    return tokens / total


def _save_best(checkpoints: Path, state: dict):
    from safetensors.torch import save_file

    checkpoints.mkdir(parents=True, exist_ok=True)
    tmp = checkpoints / ".best.safetensors.tmp"
    save_file(state, str(tmp))
    tmp.replace(checkpoints / "best.safetensors")
