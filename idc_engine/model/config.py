"""Configuration of BLIP2IDC: how a pair is shown to BLIP-2, and which LoRA adapters it gets."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

IDC_CONFIG_NAME = "idc_config.json"
ORIENTATIONS = ("vertical", "horizontal")
ENCODINGS = ("concat", "difference", "two-stream")
LORA_GROUPS = ("vit", "qformer", "llm")


@dataclass
class BLIP2IDCConfig:
    """How image pairs and text reach BLIP-2. Saved beside every model and adapter."""

    prompt: str = field(
        default="Describe the differences between the two images:",
        metadata={"help": "text the LLM reads after the image tokens and before the caption"},
    )
    orientation: str = field(
        default="vertical", metadata={"help": "stack the reference above ('vertical') or left of the modified image"}
    )
    encoding: str = field(
        default="concat",
        metadata={
            "help": "'concat': one ViT pass over the joined pair (BLIP2IDC); 'difference': one pass over the "
            "modified image joined with its signed difference from the reference in the reference's place (the "
            "same information, the change made explicit: the embedded tiny-photo, trained from scratch, reads it); "
            "'two-stream': one pass per image"
        },
    )
    max_caption_tokens: int = field(default=64, metadata={"help": "longest caption, in tokens, kept for training"})
    no_change_captions: tuple[str, ...] = field(
        default=(),
        metadata={
            "help": "what the model was taught to say when nothing changed; their summed probability is its "
            "probability of no change (see idc_engine.inference.no_change)"
        },
    )
    no_change_threshold: float | None = field(
        default=None,
        metadata={
            "help": "caption a pair with the first of no_change_captions when the probability of no change is at "
            "least this (calibrated on validation pairs); None: greedy captions as generated"
        },
    )
    no_change_weights: tuple[float, ...] = field(
        default=(),
        metadata={
            "help": "logistic weights (model, difference prior, bias) that combine the model's probability of no "
            "change with the pair's pixel difference; empty: the model's probability alone"
        },
    )

    def __post_init__(self):
        if not isinstance(self.prompt, str):
            raise ValueError(f"prompt must be a string, got {self.prompt!r}")
        if self.orientation not in ORIENTATIONS:
            raise ValueError(f"orientation must be one of {ORIENTATIONS}, got {self.orientation!r}")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, got {self.encoding!r}")
        if not isinstance(self.max_caption_tokens, int) or self.max_caption_tokens < 2:
            raise ValueError(f"max_caption_tokens must be an integer >= 2, got {self.max_caption_tokens!r}")
        if isinstance(self.no_change_captions, str):
            self.no_change_captions = (self.no_change_captions,)
        self.no_change_captions = tuple(self.no_change_captions)
        if not all(isinstance(c, str) and c.strip() for c in self.no_change_captions):
            raise ValueError(f"no_change_captions must be non-empty strings, got {self.no_change_captions!r}")
        if self.no_change_threshold is not None:
            if isinstance(self.no_change_threshold, bool) or not isinstance(self.no_change_threshold, (int, float)):
                raise ValueError(f"no_change_threshold must be a probability or None, got {self.no_change_threshold!r}")
            if not 0.0 < self.no_change_threshold <= 1.0:
                raise ValueError(f"no_change_threshold must be in (0, 1], got {self.no_change_threshold!r}")
            if not self.no_change_captions:
                raise ValueError("no_change_threshold needs no_change_captions: the sentences that mean 'no change'")
        self.no_change_weights = tuple(float(w) for w in self.no_change_weights)
        if len(self.no_change_weights) not in (0, 2, 3):
            raise ValueError(
                "no_change_weights must be empty, (model, bias) or (model, difference prior, bias), "
                f"got {self.no_change_weights!r}"
            )

    def save(self, directory) -> Path:
        """Write ``idc_config.json`` atomically: a write cut short (a full disk, a kill) leaves the
        previous config whole, never half a file that no model loads from (calibration rewrites it in
        place in a model's folder)."""
        path = Path(directory) / IDC_CONFIG_NAME
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(json.dumps(asdict(self), indent=2) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the config from other users of a shared model
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, directory) -> BLIP2IDCConfig | None:
        path = Path(directory) / IDC_CONFIG_NAME
        if not path.is_file():
            return None
        values = json.loads(path.read_text())
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


@dataclass
class LoraSettings:
    """LoRA on the attention layers, as in the paper's module ablation."""

    rank: int = field(default=16, metadata={"help": "LoRA rank r (the paper uses 8 to 32)"})
    alpha: int = field(default=32, metadata={"help": "LoRA scaling alpha; the update is scaled by alpha / rank"})
    dropout: float = field(default=0.05, metadata={"help": "dropout on the LoRA input"})
    targets: tuple[str, ...] = field(
        default=LORA_GROUPS,
        metadata={"help": "module groups: 'vit' (qkv), 'qformer' (query/key/value), 'llm' (q/k/v_proj)"},
    )

    def __post_init__(self):
        if not isinstance(self.rank, int) or self.rank < 1:
            raise ValueError(f"rank must be a positive integer, got {self.rank!r}")
        if not isinstance(self.alpha, (int, float)) or self.alpha <= 0:
            raise ValueError(f"alpha must be positive, got {self.alpha!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if isinstance(self.targets, str):
            self.targets = tuple(t.strip() for t in self.targets.split(",") if t.strip())
        self.targets = tuple(self.targets)
        bad = [t for t in self.targets if t not in LORA_GROUPS]
        if bad or not self.targets:
            raise ValueError(f"targets must be a non-empty subset of {LORA_GROUPS}, got {self.targets!r}")
