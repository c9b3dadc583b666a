"""Batched captioning of image pairs.

``caption_pairs`` captions decoded images; ``caption_idc_pairs`` is the one path from pairs on disk to
captions that the CLI, the FiftyOne operator and ``apply_model`` share: it decodes batch by batch (so
memory stays bounded), skips and counts a pair whose image cannot be read without losing the rest
of its batch, gives each pair its own prompt (``metadata["prompt"]``) and returns every caption
with the model's confidence in it. Both apply the model's "no change" decision
(:mod:`idc_engine.inference.no_change`) when its config holds a threshold.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
from PIL import Image

from idc_engine.data.images import DEFAULT_MAX_PIXELS
from idc_engine.data.loading import LoadReport, load_pair
from idc_engine.data.pair import IDCPair
from idc_engine.errors import ImageLoadError
from idc_engine.inference.no_change import decide
from idc_engine.model.blip2idc import BLIP2IDC


@dataclass
class GenerationConfig:
    batch_size: int = field(default=32, metadata={"help": "pairs per generate call"})
    num_beams: int = field(default=1, metadata={"help": "1 for greedy decoding, more for beam search"})
    max_new_tokens: int = field(default=30, metadata={"help": "longest caption, in tokens"})

    def __post_init__(self):
        for name in ("batch_size", "num_beams", "max_new_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")


@dataclass
class CaptionResult:
    """Captions of the pairs that could be read, keyed by pair id, and what was skipped."""

    captions: dict[str, str] = field(default_factory=dict)
    confidences: dict[str, float] = field(default_factory=dict)
    report: LoadReport = field(default_factory=LoadReport)
    # The model's probability that nothing changed, where its no-change decision asked it.
    no_change_probabilities: dict[str, float] = field(default_factory=dict)


def pair_prompts(pairs: list[IDCPair]) -> list[str | None] | None:
    """Each pair's own prompt (``metadata["prompt"]``), or None when no pair has one."""
    prompts = [(p.metadata or {}).get("prompt") for p in pairs]
    return prompts if any(prompts) else None


def caption_pairs(
    model: BLIP2IDC,
    pairs: list[tuple[Image.Image, Image.Image]],
    config: GenerationConfig | None = None,
    progress=None,
    prompts: list[str | None] | None = None,
    with_confidence: bool = False,
    with_no_change: bool = False,
):
    """One caption per (reference, modified) pair, in input order, after the model's no-change decision.

    ``prompts`` gives each pair its own prompt (None entries keep the model's). With
    ``with_confidence`` the result is ``(captions, confidences)``; with ``with_no_change`` too, a third
    list holds the model's probability of no change (None where it was not asked).
    """
    config = config or GenerationConfig()
    if prompts is not None and len(prompts) != len(pairs):
        raise ValueError(f"prompts: {len(prompts)} given for {len(pairs)} pairs")
    was_training = model.training
    model.eval()
    captions: list[str] = []
    confidences: list[float] = []
    no_change: list[float | None] = []
    # Weights trained with frozen bf16 / fp16 parts and float32 adapters only run under autocast.
    mixed = model.device.type == "cuda" and model.dtype != torch.float32
    autocast = torch.autocast("cuda", dtype=model.dtype) if mixed else nullcontext()
    try:
        with torch.inference_mode(), autocast:
            for start in range(0, len(pairs), config.batch_size):
                batch = pairs[start : start + config.batch_size]
                batch_prompts = prompts[start : start + config.batch_size] if prompts else None
                pixel_values = model.pixel_values(batch)
                texts, scores = model.generate_with_confidence(
                    pixel_values,
                    num_beams=config.num_beams,
                    max_new_tokens=config.max_new_tokens,
                    prompts=batch_prompts if batch_prompts and any(batch_prompts) else None,
                )
                decided = decide(model, pixel_values, texts, scores, batch_prompts, images=batch)
                captions.extend(decided.captions)
                confidences.extend(decided.confidences)
                no_change.extend(decided.probabilities)
                if progress is not None:
                    progress(len(captions), len(pairs))
    finally:
        model.train(was_training)
    if with_no_change:
        return captions, confidences, no_change
    return (captions, confidences) if with_confidence else captions


def caption_idc_pairs(
    model: BLIP2IDC,
    pairs: list[IDCPair],
    config: GenerationConfig | None = None,
    progress=None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    skip_bad: bool = True,
) -> CaptionResult:
    """Caption ``pairs`` from disk; a pair whose image cannot be read is skipped and counted
    (``skip_bad=False``: it raises :class:`ImageLoadError` naming the pair and the file).

    ``progress(done, total)`` is called after each batch with the pairs handled so far (captioned
    or skipped); it may raise to stop (nothing is returned then).
    """
    config = config or GenerationConfig()
    result = CaptionResult()
    done = 0
    for start in range(0, len(pairs), config.batch_size):
        batch, images = [], []
        for pair in pairs[start : start + config.batch_size]:
            try:
                images.append(load_pair(pair, max_pixels))
            except ImageLoadError as exc:
                if not skip_bad:
                    raise
                result.report.skipped.append((pair.id, str(exc)))
                continue
            batch.append(pair)
        if batch:
            captions, confidences, no_change = caption_pairs(
                model, images, config, prompts=pair_prompts(batch), with_confidence=True, with_no_change=True
            )
            for pair, caption, confidence, probability in zip(batch, captions, confidences, no_change):
                result.captions[pair.id] = caption
                result.confidences[pair.id] = confidence
                if probability is not None:
                    result.no_change_probabilities[pair.id] = probability
            result.report.loaded += len(batch)
        done += len(pairs[start : start + config.batch_size])
        if progress is not None:
            progress(done, len(pairs))
    return result
