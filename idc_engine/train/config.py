"""Every training default lives here."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from idc_engine.model.config import LoraSettings
from idc_engine.train.augment import AugmentConfig

FINETUNE_MODES = ("lora", "full")
SCHEDULES = ("cosine", "linear", "constant")
PRECISIONS = ("auto", "no", "bf16", "fp16")
FROZEN_DTYPES = ("auto", "float32", "bf16", "fp16")
EVAL_METRICS = ("cider", "loss")


@dataclass
class TrainConfig:
    finetune: str = field(default="lora", metadata={"help": "'lora' (adapters only, as in the paper) or 'full'"})
    lora: LoraSettings = field(default_factory=LoraSettings)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    learning_rate: float = field(default=2e-4, metadata={"help": "peak AdamW learning rate"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    batch_size: int = field(default=16, metadata={"help": "pairs per micro-batch"})
    grad_accum_steps: int = field(default=1, metadata={"help": "micro-batches per optimizer step"})
    max_steps: int | None = field(default=None, metadata={"help": "optimizer steps; None: derived from epochs"})
    epochs: float = field(default=1.0, metadata={"help": "passes over the training pairs when max_steps is None"})
    time_budget_s: float | None = field(default=None, metadata={"help": "stop after this many seconds of training"})
    warmup_steps: int = field(default=50, metadata={"help": "linear learning-rate warm-up steps"})
    schedule: str = field(default="cosine", metadata={"help": "decay after warm-up: cosine, linear or constant"})
    min_lr_ratio: float = field(default=0.1, metadata={"help": "final learning rate as a fraction of the peak"})
    max_grad_norm: float | None = field(default=1.0, metadata={"help": "gradient clipping norm; None disables"})
    mixed_precision: str = field(
        default="auto", metadata={"help": "auto (bf16/fp16 on GPU, none on CPU), no, bf16 or fp16 (bf16 on CPU too)"}
    )
    frozen_dtype: str = field(
        default="auto",
        metadata={
            "help": "dtype of the weights LoRA leaves frozen: auto (bf16, else fp16, on GPU; float32 on CPU), "
            "float32, bf16 or fp16; the adapter itself stays float32"
        },
    )
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "recompute activations in the backward pass: less memory, ~30% slower"}
    )
    loader_workers: int = field(
        default=0, metadata={"help": "processes that decode and prepare batches while the model trains; 0: none"}
    )
    seed: int = field(default=0, metadata={"help": "seeds data order, caption choice, augmentation and dropout"})
    eval_every: int = field(default=200, metadata={"help": "validate every N steps; 0 disables"})
    eval_metric: str = field(default="cider", metadata={"help": "validation metric for early stopping: cider or loss"})
    eval_max_pairs: int = field(default=200, metadata={"help": "validation pairs used per evaluation"})
    early_stopping_patience: int = field(default=0, metadata={"help": "stop after N evaluations without gain; 0: off"})
    checkpoint_every: int = field(default=200, metadata={"help": "write a resumable checkpoint every N steps"})
    log_every: int = field(default=10, metadata={"help": "refresh the progress bar's loss every N steps"})
    skip_bad_images: bool = field(default=False, metadata={"help": "skip and count unreadable pairs"})
    max_cached_pixels: int | None = field(
        default=500_000_000,
        metadata={"help": "decoded pixels kept in RAM (about 1.5 GB); later pairs are re-read from disk"},
    )

    def __post_init__(self):
        if isinstance(self.lora, dict):
            self.lora = LoraSettings(**self.lora)
        if isinstance(self.augment, dict):
            self.augment = AugmentConfig(**self.augment)
        _choice("finetune", self.finetune, FINETUNE_MODES)
        _choice("schedule", self.schedule, SCHEDULES)
        _choice("mixed_precision", self.mixed_precision, PRECISIONS)
        _choice("frozen_dtype", self.frozen_dtype, FROZEN_DTYPES)
        if self.frozen_dtype in ("bf16", "fp16") and self.mixed_precision == "no":
            raise ValueError(
                f"frozen_dtype {self.frozen_dtype!r} needs mixed precision (autocast), but mixed_precision is 'no'"
            )
        if not isinstance(self.loader_workers, int) or self.loader_workers < 0:
            raise ValueError(f"loader_workers must be a non-negative integer, got {self.loader_workers!r}")
        _choice("eval_metric", self.eval_metric, EVAL_METRICS)
        for name in ("batch_size", "grad_accum_steps", "eval_max_pairs", "checkpoint_every", "log_every"):
            _positive_int(name, getattr(self, name))
        for name in ("warmup_steps", "eval_every", "early_stopping_patience"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if self.max_steps is not None:
            _positive_int("max_steps", self.max_steps)
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate!r}")
        if not self.epochs > 0:
            raise ValueError(f"epochs must be positive, got {self.epochs!r}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio!r}")
        if self.time_budget_s is not None and not self.time_budget_s > 0:
            raise ValueError(f"time_budget_s must be positive, got {self.time_budget_s!r}")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be positive or None, got {self.max_grad_norm!r}")

    def to_dict(self) -> dict:
        return asdict(self)


def _choice(name, value, options):
    if value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")


def _positive_int(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
