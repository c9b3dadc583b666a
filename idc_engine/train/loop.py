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
    load_best,
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
    # What became of the "no change" decision: recalibrated on the validation pairs, or kept (None: no decision).
    no_change: dict | None = None


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


def micro_batches(stream: PairStream, model: BLIP2IDC, plan, workers: int, seed: int = 0):
    """An iterator over ``plan``'s micro-batches (first position, size), prepared by ``workers`` processes.

    The loader gets a generator of its own: drawing its workers' seed from the global one (its default)
    would shift every later dropout mask of a resumed run, whose global state was just restored.
    """
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
        generator=torch.Generator().manual_seed(seed),
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
    config = distributed.launcher_settings(config)  # accelerate launch's flags, honoured or refused
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
    data = _load_data(train_pairs, val_pairs, config)
    parameters = _prepare_parameters(ctx, model, config)
    pairs_per_step = config.batch_size * config.grad_accum_steps
    total_steps = config.max_steps or max(1, math.ceil(config.epochs * len(data.train_pairs) / pairs_per_step))
    budget_fraction = {"value": None}  # read by the schedule: elapsed share of time_budget_s, if any
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: lr_factor(
            step, total_steps, config.warmup_steps, config.schedule, config.min_lr_ratio, budget_fraction["value"]
        ),
    )
    autocast, scaler = _autocast(model.device, config.mixed_precision)
    checkpoints = out_dir / CHECKPOINT_DIR
    state, best_state = _start_or_resume(ctx, checkpoints, resume, model, optimizer, scheduler, scaler)
    if config.time_budget_s:
        budget_fraction["value"] = state["elapsed_s"] / config.time_budget_s

    stream = PairStream(data.train_pairs, data.train_images, config)
    plan = [
        ((step * config.grad_accum_steps + micro) * config.batch_size + ctx.rank * rank_batch, rank_batch)
        for step in range(state["step"], total_steps)
        for micro in range(config.grad_accum_steps)
    ]
    batches = micro_batches(stream, model, plan, config.loader_workers, seed=config.seed)
    progress = _Progress(config, total_steps, state["step"], enabled=show_progress and ctx.is_main)
    stopped = "completed"
    started = time.perf_counter() - state["elapsed_s"]
    try:
        for step in range(state["step"] + 1, total_steps + 1):  # the step about to be taken, from 1
            step_loss = _optimizer_step(ctx, model, batches, parameters, optimizer, scaler, autocast, config)
            state["step"] = step
            state["elapsed_s"] = time.perf_counter() - started
            if ctx.enabled:  # the global batch's loss, and rank 0's clock: every rank decides alike
                step_loss, state["elapsed_s"] = ctx.all_sum([step_loss, state["elapsed_s"] if ctx.is_main else 0.0])
            if config.time_budget_s:
                budget_fraction["value"] = state["elapsed_s"] / config.time_budget_s
            scheduler.step()
            logs = {"step": step, "loss": step_loss, "lr": scheduler.get_last_lr()[0]}
            progress.took_step(step_loss, pairs_per_step)

            if config.eval_every and data.val_pairs and step % config.eval_every == 0:
                best_state = _evaluate(ctx, model, data, config, autocast, state, logs, best_state)
                progress.write(logs)
            if step % config.log_every == 0 or "val_loss" in logs:
                state["history"].append(logs)
                progress.show_rates()
            progress.update(step, state["elapsed_s"])
            if step % config.checkpoint_every == 0 or step == total_steps:
                rng_by_rank = ctx.all_gather(rng_state()) if ctx.enabled else None
                ctx.on_main(
                    save_checkpoint,
                    checkpoints,
                    step,
                    model,
                    optimizer,
                    scheduler,
                    state,
                    scaler,
                    rng_by_rank=rng_by_rank,
                    best=best_state,
                )
            if on_step is not None:
                on_step(step, logs)
            if config.early_stopping_patience and state["evals_without_gain"] >= config.early_stopping_patience:
                stopped = "early_stopping"
                break
            if config.time_budget_s and state["elapsed_s"] >= config.time_budget_s:
                stopped = "time_budget"
                break
    finally:
        progress.close()
        del batches  # stops the loader's worker processes now, not whenever it is collected

    if best_state is not None:
        load_trainable_state(model, best_state)
    if ctx.broadcast(best_state is not None):
        ctx.broadcast_parameters(parameters)  # the best weights in every rank's memory too
    # The "no change" decision of the best weights, calibrated on the validation pairs (no-op without them).
    no_change = ctx.on_main(calibrate_after_training, model, data.val_pairs, data.val_images)
    apply_calibration(model.config, no_change)
    model_dir = out_dir / MODEL_DIR
    record = dict(
        config=config.to_dict(),
        seed=config.seed,
        revision=revision,
        base_model=model.source,
        idc_config=model.config.__dict__,
        steps=state["step"],
        stopped=stopped,
        best=state["best"],
        train_pairs=len(data.train_pairs),
        validation_pairs=len(data.val_pairs or []),
        unreferenced=unreferenced,
        skipped_images={"train": data.train_report.skipped, "validation": data.val_skipped},
        processes=ctx.world_size,
        elapsed_s=round(state["elapsed_s"], 1),
        no_change=no_change,
        history=state["history"],
    )
    ctx.on_main(_write_model, model, model_dir, record)
    return TrainResult(
        model_dir,
        state["step"],
        stopped,
        state["history"],
        state["best"],
        data.train_report,
        data.val_report,
        unreferenced,
        no_change,
    )


@dataclass
class _Data:
    train_pairs: list[IDCPair]
    train_images: list
    train_report: LoadReport
    val_pairs: list[IDCPair]
    val_images: list
    val_report: LoadReport | None

    @property
    def val_skipped(self) -> list:
        return self.val_report.skipped if self.val_report else []


def _load_data(train_pairs, val_pairs, config: TrainConfig) -> _Data:
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
    return _Data(train_pairs, train_images, train_report, val_pairs, val_images, val_report)


def _prepare_parameters(ctx: distributed.Distributed, model: BLIP2IDC, config: TrainConfig) -> list:
    """The trainable parameters, equal on every rank; each rank then draws its own dropout masks."""
    prepare_model(model, config)
    model.train()
    parameters = model.trainable_parameters()
    if ctx.enabled:
        ctx.broadcast_parameters(parameters)  # every rank starts from rank 0's weights
        if ctx.rank:
            torch.manual_seed(int(np.random.SeedSequence([config.seed, 17, ctx.rank]).generate_state(1)[0]))
    return parameters


def _start_or_resume(ctx, checkpoints: Path, resume: bool, model, optimizer, scheduler, scaler):
    """The run's state (a new one, or the latest checkpoint's) and the best weights so far (rank 0 keeps
    them: it writes the model)."""
    # What the weights were trained to read: a run resumed with another encoding or orientation would
    # go on training them on images of another kind (a checkpoint keeps no model config).
    pixels = {"encoding": model.config.encoding, "orientation": model.config.orientation}
    state = {"step": 0, "history": [], "best": None, "evals_without_gain": 0, "elapsed_s": 0.0, **pixels}
    if not resume:
        return state, None
    found = latest_checkpoint(checkpoints)
    if found is None:
        raise FileNotFoundError(f"resume: no checkpoint under {checkpoints}")
    saved = json.loads((found / "state.json").read_text())
    for name, value in pixels.items():
        if saved.get(name, value) != value:
            raise ValueError(
                f"resume: the run under {checkpoints} was trained with {name} {saved[name]!r}, but the model's "
                f"config has {name} {value!r}; resume it with the run's config, or start a new run"
            )
    state = {**pixels, **load_checkpoint(found, model, optimizer, scheduler, scaler, rank=ctx.rank)}
    return state, load_best(found) if ctx.is_main else None


def _optimizer_step(ctx, model, batches, parameters, optimizer, scaler, autocast, config: TrainConfig) -> float:
    """One optimizer step over ``grad_accum_steps`` micro-batches; returns this rank's part of its loss."""
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
    return step_loss


def _evaluate(ctx, model, data: _Data, config: TrainConfig, autocast, state: dict, logs: dict, best_state):
    """Validate (rank 0; every rank gets the figures), note an improvement, and return the best weights."""
    logs.update(ctx.on_main(validate, model, data.val_pairs, data.val_images, config, autocast))
    value = logs["val_cider" if config.eval_metric == "cider" else "val_loss"]
    if _improved(config.eval_metric, value, state["best"] and state["best"]["value"]):
        state["best"] = {"step": logs["step"], "value": value, "metric": config.eval_metric}
        state["evals_without_gain"] = 0
        # Kept in memory until the next checkpoint, which writes them with the record of their step.
        return trainable_state(model) if ctx.is_main else None
    state["evals_without_gain"] += 1
    return best_state


class _Progress:
    """The progress bar: the smoothed loss, pairs per second and, with a time budget, the step at which
    the clock will stop the run."""

    def __init__(self, config: TrainConfig, total_steps: int, first_step: int, enabled: bool):
        self.config, self.total_steps = config, total_steps
        self.bar = tqdm(
            # A time-budgeted run ends when the clock does: its length is only known once steps are timed.
            total=None if config.time_budget_s else total_steps,
            initial=first_step,
            desc=f"training ({_duration(config.time_budget_s)} budget)" if config.time_budget_s else "training",
            disable=not enabled,
            unit="step",
            dynamic_ncols=True,
            mininterval=0.5 if sys.stderr.isatty() else 30.0,  # logs, not terminals, get a line every 30 s
        )
        self.enabled = enabled
        self.session_step, self.session_clock = first_step, time.perf_counter()
        self.running_loss, self.pairs_seen, self.window_start = None, 0, time.perf_counter()

    def took_step(self, loss: float, pairs: int):
        self.running_loss = loss if self.running_loss is None else 0.95 * self.running_loss + 0.05 * loss
        self.pairs_seen += pairs

    def write(self, logs: dict):
        if self.enabled:
            self.bar.write(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in logs.items()}))

    def show_rates(self):
        elapsed = time.perf_counter() - self.window_start
        rate = self.pairs_seen / max(elapsed, 1e-9)
        self.bar.set_postfix(loss=f"{self.running_loss:.3f}", pairs_s=f"{rate:.0f}", refresh=False)
        self.pairs_seen, self.window_start = 0, time.perf_counter()

    def update(self, step: int, elapsed_s: float):
        if self.config.time_budget_s:
            self.bar.total = projected_total_steps(
                self.total_steps,
                step,
                elapsed_s,
                self.config.time_budget_s,
                step - self.session_step,
                time.perf_counter() - self.session_clock,
            )
        self.bar.update(1)

    def close(self):
        self.bar.close()


def _write_model(model: BLIP2IDC, model_dir: Path, record: dict):
    model.save_pretrained(model_dir)
    (model_dir / TRAINING_RECORD).write_text(json.dumps(provenance(**record), indent=2, default=str))


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
