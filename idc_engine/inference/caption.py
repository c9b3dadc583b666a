"""Batched captioning of image pairs."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from PIL import Image

from idc_engine.model.blip2idc import BLIP2IDC


@dataclass
class GenerationConfig:
    batch_size: int = field(default=32, metadata={"help": "pairs per generate call"})
    num_beams: int = field(default=1, metadata={"help": "1 for greedy decoding, more for beam search"})
    max_new_tokens: int = field(default=30, metadata={"help": "longest caption, in tokens"})

    def __post_init__(self):
        for name in ("batch_size", "num_beams", "max_new_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")


def caption_pairs(
    model: BLIP2IDC,
    pairs: list[tuple[Image.Image, Image.Image]],
    config: GenerationConfig | None = None,
    progress=None,
) -> list[str]:
    """One caption per (reference, modified) pair, in input order."""
    config = config or GenerationConfig()
    was_training = model.training
    model.eval()
    captions: list[str] = []
    try:
        with torch.inference_mode():
            for start in range(0, len(pairs), config.batch_size):
                batch = pairs[start : start + config.batch_size]
                pixel_values = model.pixel_values(batch)
                captions.extend(
                    model.generate(pixel_values, num_beams=config.num_beams, max_new_tokens=config.max_new_tokens)
                )
                if progress is not None:
                    progress(len(captions), len(pairs))
    finally:
        model.train(was_training)
    return captions
