"""Saying "no change" when nothing changed: a calibrated decision on the model's probability of no change.

Greedy decoding picks the likeliest token at each step. A model taught several ways of saying "no
change" ("there is no change", "nothing has changed", ...) splits its belief that nothing changed
among them, while "the" opens both "the two images are the same" and every "the red circle moved":
on unchanged pairs of its own distribution the embedded preset believes "no change" at 0.7 (median)
and still writes a change half of the time. The decision here

1. asks the model for its probability of no change: the summed probability of the sentences it was
   taught for it (``BLIP2IDCConfig.no_change_captions``), each scored by teacher forcing;
2. optionally adds a difference prior: how much of the aligned pair differs once brightness and
   contrast are matched, blurred, and edges thinner than a few pixels are eroded away
   (:func:`difference_area`). Combined with the model's probability by logistic weights
   (``BLIP2IDCConfig.no_change_weights``: model, prior, bias);
3. captions the pair with the first no-change sentence when the resulting probability reaches
   ``BLIP2IDCConfig.no_change_threshold``.

Weights and threshold are calibrated on validation pairs (:func:`calibrate_no_change`) and saved in
the model's ``idc_config.json``, so every path that captions (``idc caption``, the FiftyOne operator,
``apply_model``, sharded workers, training's validation) decides alike. The decision only ever turns a
change caption into "no change"; pairs asked with a prompt of their own (another task) are left as
generated. The prior assumes that both images were taken from the same place: a camera that moved by
more than a few pixels, or an edit thinner than that, weakens it (see docs/no_change.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image, ImageFilter
from transformers.models.blip_2.modeling_blip_2 import BaseModelOutputWithVisionQformerOutputs

from idc_engine.model.blip2idc import BLIP2IDC
from idc_engine.model.compose import align_reference
from idc_engine.model.text import IGNORE_INDEX

# The difference prior: images compared at this side, after a blur of this radius; a pixel differs
# when a channel moves by more than LEVEL (of 255); EROSIONS passes of a 3x3 cross then remove
# every difference narrower than about 2 * EROSIONS + 1 pixels (re-encoding, a sub-pixel shift).
SIDE, BLUR, LEVEL, EROSIONS = 64, 1.0, 40.0, 3
AREA_FLOOR = 1e-3  # log(area + floor): an area of zero is finite
MIN_PAIRS = 5  # unchanged and changed validation pairs, each, that calibration needs at least


def _image_features(model: BLIP2IDC, pixel_values: torch.Tensor) -> torch.Tensor:
    """The LLM's image tokens for a batch, computed once for every sentence that is scored."""
    if model.config.encoding != "two-stream":
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


def difference_area(reference: Image.Image, modified: Image.Image) -> float:
    """The share of the aligned pair that differs by more than noise: 0.0 when nothing but
    re-encoding, blur, brightness, contrast or a shift of a pixel or two separates the images."""
    reference = align_reference(reference.convert("RGB"), modified.convert("RGB"))
    images = [
        np.asarray(
            image.convert("RGB").resize((SIDE, SIDE), Image.Resampling.BOX).filter(ImageFilter.GaussianBlur(BLUR)),
            dtype=np.float64,
        )
        for image in (reference, modified)
    ]
    ref, mod = images
    for c in range(3):  # least-squares gain and offset per channel: brightness and contrast are not changes
        x, y = mod[..., c].ravel(), ref[..., c].ravel()
        spread = x.var()
        gain = ((x - x.mean()) * (y - y.mean())).mean() / spread if spread > 1e-6 else 1.0
        mod[..., c] = gain * (mod[..., c] - x.mean()) + y.mean()
    mask = np.abs(ref - mod).max(-1) > LEVEL
    for _ in range(EROSIONS):
        padded = np.pad(mask, 1)
        mask = padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return float(mask.mean())


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p) - np.log1p(-p)


def features(no_change: np.ndarray, areas: np.ndarray | None) -> np.ndarray:
    """The decision's inputs: the logit of the model's probability of no change, and the log area."""
    columns = [_logit(np.asarray(no_change, dtype=np.float64))]
    if areas is not None:
        columns.append(np.log(np.asarray(areas, dtype=np.float64) + AREA_FLOOR))
    return np.stack(columns, 1)


def decision_probability(no_change: np.ndarray, areas: np.ndarray | None, weights: tuple[float, ...]) -> np.ndarray:
    """The probability that nothing changed: the model's own, or its logistic combination with the prior."""
    if not weights:
        return np.asarray(no_change, dtype=np.float64)
    x = features(no_change, areas)
    if len(weights) != x.shape[1] + 1:
        raise ValueError(f"no_change_weights: expected {x.shape[1] + 1} values (inputs and bias), got {weights!r}")
    z = x @ np.asarray(weights[:-1]) + weights[-1]
    return 1.0 / (1.0 + np.exp(-z))


def is_no_change(caption: str, sentences) -> bool:
    normal = " ".join(caption.lower().rstrip(".").split())
    return any(normal == " ".join(s.lower().rstrip(".").split()) for s in sentences)


@dataclass
class Decided:
    captions: list[str]
    confidences: list[float]
    probabilities: list[float | None]  # the decision's probability of no change (None: not asked)


def decide(
    model: BLIP2IDC,
    pixel_values: torch.Tensor,
    captions: list[str],
    confidences: list[float],
    prompts: list[str | None] | None = None,
    images: list[tuple[Image.Image, Image.Image]] | None = None,
) -> Decided:
    """Apply the model's no-change decision to a batch of generated captions (see the module's docstring).

    Without a ``no_change_threshold`` (or ``no_change_captions``) the captions come back as generated.
    ``images``: the batch's pairs, which the difference prior needs when the weights use it.
    Confidences become the log-probability that the caption is right, as far as the decision knows:
    for a caption saying "no change" (generated so, or decided) the log of the decision's probability
    of no change; for a change caption, its own confidence plus the log-probability that something
    changed. The review queue sorts by it: a change caption on a pair that probably did not change
    comes first.
    """
    config = model.config
    if config.no_change_threshold is None or not config.no_change_captions:
        return Decided(list(captions), list(confidences), [None] * len(captions))
    asked = [i for i in range(len(captions)) if not (prompts and prompts[i])]
    probabilities: list[float | None] = [None] * len(captions)
    captions, confidences = list(captions), list(confidences)
    if not asked:
        return Decided(captions, confidences, probabilities)
    model_says = no_change_probability(model, pixel_values[asked], config.no_change_captions)
    areas = None
    if len(config.no_change_weights) == 3:
        if images is None:
            raise ValueError("images: the model's no-change decision uses the difference prior, which needs the pairs")
        areas = np.array([difference_area(*images[i]) for i in asked])
    values = decision_probability(model_says, areas, config.no_change_weights)
    for i, p in zip(asked, values):
        probabilities[i] = float(p)
        said_none = is_no_change(captions[i], config.no_change_captions)
        if p >= config.no_change_threshold and not said_none:
            captions[i], said_none = config.no_change_captions[0], True
        if said_none:
            confidences[i] = float(np.log(max(p, 1e-12)))
        else:
            confidences[i] = float(confidences[i] + np.log(max(1.0 - p, 1e-12)))
    return Decided(captions, confidences, probabilities)


# ----------------------------------------------------------------------------------------------- calibration
def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, steps: int = 50) -> tuple[float, ...]:
    """Weights and bias of a class-balanced, lightly L2-regularised logistic regression (Newton steps)."""
    design = np.concatenate([x, np.ones((len(x), 1))], 1)
    positives = max(1, int(y.sum()))
    negatives = max(1, int(len(y) - y.sum()))
    sample = np.where(y, 0.5 / positives, 0.5 / negatives)  # each class weighs half
    w = np.zeros(design.shape[1])
    penalty = l2 * np.eye(design.shape[1])
    penalty[-1, -1] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(design @ w)))
        gradient = design.T @ (sample * (p - y)) + penalty @ w
        hessian = design.T @ (design * (sample * p * (1 - p))[:, None]) + penalty + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hessian, gradient)
        w = w - step
        if np.abs(step).max() < 1e-8:
            break
    return tuple(round(float(v), 6) for v in w)


@dataclass
class Calibration:
    """What :func:`calibrate_no_change` chose, and what it measured on the calibration pairs."""

    threshold: float | None
    weights: tuple[float, ...]
    objective: str
    pairs: int
    unchanged: int
    before: dict = field(default_factory=dict)  # true-negative rate and changed-pair score, greedy
    after: dict = field(default_factory=dict)  # the same with the decision

    def to_dict(self) -> dict:
        return {
            "threshold": self.threshold,
            "weights": list(self.weights),
            "objective": self.objective,
            "pairs": self.pairs,
            "unchanged": self.unchanged,
            "before": self.before,
            "after": self.after,
        }


def _figures(said_none: np.ndarray, unchanged: np.ndarray) -> dict:
    tnr = float(said_none[unchanged].mean()) if unchanged.any() else None
    changed = float((~said_none)[~unchanged].mean()) if (~unchanged).any() else None
    return {"true_negative_rate": tnr, "changed_still_a_change": changed}


def choose_threshold(
    probabilities: np.ndarray, unchanged: np.ndarray, greedy_none: np.ndarray
) -> tuple[float | None, dict, dict]:
    """The threshold that maximises the balanced accuracy of "no change" — the mean of the true-negative
    rate and the share of changed pairs still captioned as a change; None when never deciding is as
    good. Returns it with the figures before and after.

    Balanced, so that a validation split with few unchanged pairs weighs them as much as the rest; and
    on "still a change" rather than "still right", so that a model that misreads most changes is not
    pushed to call everything unchanged (a wrong change caption still tells the user to look).
    Every threshold in (c[k-1], c[k]] of the sorted probabilities decides alike on these pairs; of the
    best such range (the widest, if several tie) the middle in logit space is kept, as far as possible
    from both neighbours.
    """
    candidates = np.unique(probabilities)
    outcomes = []
    for threshold in [None, *candidates]:
        decided = np.zeros(len(probabilities), bool) if threshold is None else probabilities >= threshold
        figures = _figures(greedy_none | decided, unchanged)
        outcomes.append((threshold, float(np.mean([v for v in figures.values() if v is not None])), figures))
    before = outcomes[0][2]
    best = max(score for _, score, _ in outcomes)
    if outcomes[0][1] >= best - 1e-12:
        return None, before, before
    logits = _logit(candidates)
    ranges = []  # (width in logit, lower end, upper candidate, its index, figures)
    for k, (_, score, figures) in enumerate(outcomes[1:]):
        if score >= best - 1e-12:
            lower = logits[k - 1] if k else _logit(np.array([1e-6]))[0]
            ranges.append((logits[k] - lower, lower, logits[k], k, figures))
    width, lower, upper, k, after = max(ranges, key=lambda r: r[0])
    threshold = float(1.0 / (1.0 + np.exp(-(lower + upper) / 2)))
    # Not rounded, and checked: probabilities near 0 or 1 share one clipped logit (and would share a
    # rounded threshold), so the middle may fall outside the range; its upper end decides alike.
    if not ((k == 0 or threshold > candidates[k - 1]) and threshold <= candidates[k]):
        threshold = float(candidates[k])
    return threshold, before, after


def calibrate_no_change(
    model: BLIP2IDC,
    pairs,
    images: list[tuple[Image.Image, Image.Image]],
    difference_prior: bool | str = "auto",
    reader=None,
    batch_size: int = 64,
) -> Calibration:
    """Choose the no-change decision's weights and threshold on ``pairs`` (validation, never test) and
    set them in ``model.config`` (save the model, or its config, to keep them).

    Pairs asked with a prompt of their own (another task) are left out, as the decision leaves them.
    A pair is unchanged when ``reader`` (default: the registered reader that reads every pair, see
    ``idc_engine.metrics.change_level``) finds no change in its references, or, without a reader,
    when its references are all no-change sentences. Needs at least ``MIN_PAIRS`` of each kind: a
    threshold fitted on fewer follows noise.
    ``difference_prior``: True fits logistic weights on the model's probability and the prior; False
    thresholds the model's probability alone; "auto" tries both and keeps the prior only where it
    does better on ``pairs``.
    """
    from idc_engine.inference.caption import GenerationConfig, caption_pairs
    from idc_engine.metrics.change_level import choose_reader

    if difference_prior not in (True, False, "auto"):
        raise ValueError(f"difference_prior must be True, False or 'auto', got {difference_prior!r}")
    sentences = model.config.no_change_captions
    if not sentences:
        raise ValueError("model: its config names no no_change_captions; set them before calibrating")
    if len(pairs) != len(images) or not pairs:
        raise ValueError(f"pairs and images: need as many of each (got {len(pairs)} and {len(images)})")
    # Pairs asked another task (a prompt of their own) are never captioned by the decision: not counted.
    kept = [i for i, p in enumerate(pairs) if not (p.metadata or {}).get("prompt")]
    pairs, images = [pairs[i] for i in kept], [images[i] for i in kept]
    reader = reader or choose_reader(pairs)
    if reader is not None:
        truths = [reader.truth(p) for p in pairs]
        unchanged = np.array([not t for t in truths])
    else:
        unchanged = np.array([all(is_no_change(c, sentences) for c in p.captions) for p in pairs])
    if unchanged.sum() < MIN_PAIRS or (~unchanged).sum() < MIN_PAIRS:
        raise ValueError(
            f"pairs: calibrating needs at least {MIN_PAIRS} unchanged and {MIN_PAIRS} changed pairs, got "
            f"{int(unchanged.sum())} unchanged of {len(pairs)}"
        )
    had = model.config.no_change_threshold, model.config.no_change_weights
    # Captions as generated, without the decision being calibrated; the decision the model had comes
    # back if anything below fails (training keeps it then, and says so).
    model.config.no_change_threshold, model.config.no_change_weights = None, ()
    try:
        captions = caption_pairs(model, images, GenerationConfig(batch_size=batch_size))
        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode():
                model_says = np.concatenate(
                    [
                        no_change_probability(model, model.pixel_values(images[s : s + batch_size]), sentences)
                        for s in range(0, len(images), batch_size)
                    ]
                )
        finally:
            model.train(was_training)
        greedy_none = np.array([is_no_change(c, sentences) for c in captions])
        options = []
        for prior in (False, True) if difference_prior == "auto" else (difference_prior,):
            areas = np.array([difference_area(*pair) for pair in images]) if prior else None
            weights = fit_logistic(features(model_says, areas), unchanged) if prior else ()
            probabilities = decision_probability(model_says, areas, weights)
            threshold, before, after = choose_threshold(probabilities, unchanged, greedy_none)
            score = np.mean([v for v in after.values() if v is not None])
            options.append((score, threshold, weights if threshold is not None else (), before, after))
    except BaseException:
        model.config.no_change_threshold, model.config.no_change_weights = had
        raise
    # The prior only where it does strictly better: the model alone needs no aligned pair.
    score, threshold, weights, before, after = max(options, key=lambda o: o[0] + (1e-9 if not o[2] else 0.0))
    model.config.no_change_threshold, model.config.no_change_weights = threshold, weights
    return Calibration(
        threshold=threshold,
        weights=weights,
        objective="balanced",
        pairs=len(pairs),
        unchanged=int(unchanged.sum()),
        before=before,
        after=after,
    )


def calibrate_after_training(model: BLIP2IDC, pairs, images) -> dict:
    """Training's last step: recalibrate the decision of a model that has no-change sentences on its
    validation pairs. Returns the record to keep (or why nothing was calibrated); the model's config
    is set (see :func:`apply_calibration` for the other processes of a distributed run)."""
    if not model.config.no_change_captions:
        return {"skipped": "the model's config names no no_change_captions"}
    # A decision that is not recalibrated is the starting model's (a preset's, say): the record says so,
    # since it was fitted to another model and other pairs.
    had = {"kept": {"threshold": model.config.no_change_threshold}} if model.config.no_change_threshold else {}
    # Pairs asked another task (a prompt of their own) are not captioned by the decision.
    kept = [i for i, p in enumerate(pairs or []) if not (p.metadata or {}).get("prompt")]
    if not kept or not images:
        return {"skipped": "no validation pairs (or eval_every is 0)", **had}
    try:
        return calibrate_no_change(model, [pairs[i] for i in kept], [images[i] for i in kept]).to_dict()
    except ValueError as error:
        return {"skipped": str(error), "kept": {"threshold": model.config.no_change_threshold}}


def apply_calibration(config, record: dict):
    """Set a calibration record's threshold and weights in a model config (no-op for a skipped one)."""
    if "threshold" in record:
        config.no_change_threshold = record["threshold"]
        config.no_change_weights = tuple(record["weights"])
