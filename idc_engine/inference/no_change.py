"""Saying "no change" when nothing changed: the model's own probability of no change, calibrated.

Greedy decoding picks the likeliest token at each step. A model taught several ways of saying "no
change" ("there is no change", "nothing has changed", ...) splits its belief that nothing changed
among them, while "the" opens both "the two images are the same" and every "the red circle moved":
on unchanged pairs the embedded preset believes "no change" at 0.7 (median) and still writes a
change half of the time. The decision here asks the model for its probability of no change — the
summed probability of the sentences it was taught for it (``BLIP2IDCConfig.no_change_captions``),
each scored by teacher forcing — and captions a pair with the first of them when that probability
reaches ``BLIP2IDCConfig.no_change_threshold``. The threshold is calibrated on validation pairs
(:func:`calibrate_threshold`) and saved in the model's ``idc_config.json``, so every path that
captions (``idc caption``, the FiftyOne operator, ``apply_model``, sharded workers, training's
validation) decides alike. The decision only ever turns a change caption into "no change"; pairs
asked with a prompt of their own (another task) are left as generated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from transformers.models.blip_2.modeling_blip_2 import BaseModelOutputWithVisionQformerOutputs

from idc_engine.model.blip2idc import BLIP2IDC
from idc_engine.model.text import IGNORE_INDEX

OBJECTIVES = ("balanced", "exact")


def _image_features(model: BLIP2IDC, pixel_values: torch.Tensor) -> torch.Tensor:
    """The LLM's image tokens for a batch, computed once for every sentence that is scored."""
    if model.config.encoding == "concat":
        pixel_values = pixel_values.to(model.device, model.base.vision_model.dtype)
        return model.base.get_image_features(pixel_values=pixel_values, return_dict=True).pooler_output
    return model._two_stream_features(pixel_values.to(model.device)).pooler_output


@torch.no_grad()
def sentences_log_probs(
    model: BLIP2IDC, pixel_values: torch.Tensor, sentences: list[str] | tuple[str, ...]
) -> np.ndarray:
    """``(pairs, sentences)``: the summed log-probability of each sentence (and its closing EOS) for each
    pair, under the model's own prompt. Teacher-forced: what greedy decoding would have scored."""
    rows, count = pixel_values.shape[0], len(sentences)
    if not count:
        raise ValueError("sentences: nothing to score (empty)")
    features = _image_features(model, pixel_values)
    # Row r * count + k holds pair r with sentence k.
    batch = model.text_batch([s for _ in range(rows) for s in sentences])
    batch = {k: v.to(model.device) for k, v in batch.items()}
    repeated = features.repeat_interleave(count, dim=0)
    logits = model.base(
        pixel_values=None,
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        mm_encoder_outputs={"image": BaseModelOutputWithVisionQformerOutputs(pooler_output=repeated)},
    ).logits.float()
    # Position t's logits predict token t + 1.
    targets = batch["labels"][:, 1:]
    mask = targets != IGNORE_INDEX
    steps = logits[:, :-1].log_softmax(-1)
    chosen = steps.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1) * mask
    return chosen.sum(1).view(rows, count).cpu().numpy()


def no_change_probability(model: BLIP2IDC, pixel_values: torch.Tensor, sentences=None) -> np.ndarray:
    """Per pair, the model's probability that nothing changed: the summed probability of ``sentences``
    (default: the model's ``no_change_captions``)."""
    sentences = tuple(sentences or model.config.no_change_captions)
    if not sentences:
        raise ValueError("sentences: the model's config names no no_change_captions; pass the sentences")
    return np.exp(sentences_log_probs(model, pixel_values, sentences)).sum(1).clip(0.0, 1.0)


def is_no_change(caption: str, sentences) -> bool:
    normal = " ".join(caption.lower().rstrip(".").split())
    return any(normal == " ".join(s.lower().rstrip(".").split()) for s in sentences)


@dataclass
class Decided:
    captions: list[str]
    confidences: list[float]
    probabilities: list[float | None]  # the model's probability of no change (None: not asked)


def decide(
    model: BLIP2IDC,
    pixel_values: torch.Tensor,
    captions: list[str],
    confidences: list[float],
    prompts: list[str | None] | None = None,
    threshold: float | None = None,
) -> Decided:
    """Apply the no-change decision to a batch of generated captions (see the module's docstring).

    ``threshold`` defaults to the model's ``no_change_threshold``; without one (or without
    ``no_change_captions``) the captions come back as generated. A caption turned into "no change"
    gets the log of the model's probability of no change as its confidence.
    """
    sentences = model.config.no_change_captions
    threshold = model.config.no_change_threshold if threshold is None else threshold
    if threshold is None or not sentences:
        return Decided(list(captions), list(confidences), [None] * len(captions))
    asked = [i for i in range(len(captions)) if not (prompts and prompts[i])]
    probabilities: list[float | None] = [None] * len(captions)
    captions, confidences = list(captions), list(confidences)
    if asked:
        values = no_change_probability(model, pixel_values[asked], sentences)
        for i, p in zip(asked, values):
            probabilities[i] = float(p)
            if p >= threshold and not is_no_change(captions[i], sentences):
                captions[i] = sentences[0]
                confidences[i] = float(np.log(max(p, 1e-12)))
    return Decided(captions, confidences, probabilities)
