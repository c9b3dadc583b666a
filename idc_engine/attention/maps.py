"""Where BLIP2IDC looks: attention maps over the two images of a pair.

Three maps, each split into the reference and modified halves and resized to each image's size:

- ``cls``: the last ViT layer's attention of the CLS token to every patch;
- ``rollout``: attention rollout (Abnar & Zuidema, 2020) through all ViT layers, read from CLS,
  with the residual connection counted as half of each layer's attention;
- ``qformer``: the Q-Former's cross-attention of its queries onto the patches, averaged over
  layers, heads and queries: what the language model's image tokens were built from.

Maps are captured by forward hooks on the attention modules, reduced as each layer runs, so memory
stays at one layer's attention for one batch however deep the ViT is. Eager attention is switched
on for the pass (SDPA returns no weights) and restored afterwards.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from idc_engine.model.blip2idc import BLIP2IDC

MAP_KINDS = ("cls", "rollout", "qformer")


@dataclass
class AttentionConfig:
    kinds: tuple[str, ...] = field(default=MAP_KINDS, metadata={"help": "maps to compute: cls, rollout, qformer"})
    per_head: bool = field(default=False, metadata={"help": "also keep the last layer's CLS map of every head"})
    batch_size: int = field(default=8, metadata={"help": "pairs per forward pass (bounds memory)"})

    def __post_init__(self):
        self.kinds = tuple(self.kinds)
        bad = [k for k in self.kinds if k not in MAP_KINDS]
        if bad or not self.kinds:
            raise ValueError(f"kinds must be a non-empty subset of {MAP_KINDS}, got {self.kinds!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")


@dataclass
class PairAttention:
    """Maps of one pair: kind -> (reference map, modified map), each HxW float32 in [0, 1]."""

    maps: dict[str, tuple[np.ndarray, np.ndarray]]
    heads: list[tuple[np.ndarray, np.ndarray]] | None = None


@contextlib.contextmanager
def eager_attention(model: BLIP2IDC):
    """Eager attention on the vision model and Q-Former for the duration of the block."""
    configs = [model.base.config.vision_config, model.base.config.qformer_config]
    before = [c._attn_implementation for c in configs]
    for config in configs:
        config._attn_implementation = "eager"
    try:
        yield
    finally:
        for config, implementation in zip(configs, before):
            config._attn_implementation = implementation


class _Recorder:
    """Forward hooks that reduce each layer's attention as soon as it is computed."""

    def __init__(self, model: BLIP2IDC, config: AttentionConfig):
        self.config = config
        self.rollout = None
        self.last = None
        self.cross = None
        self.cross_layers = 0
        self.handles = []
        for layer in model.base.vision_model.encoder.layers:
            self.handles.append(layer.self_attn.register_forward_hook(self._vision))
        if "qformer" in config.kinds:
            for layer in model.base.qformer.encoder.layer:
                if getattr(layer, "has_cross_attention", False):
                    self.handles.append(layer.crossattention.attention.register_forward_hook(self._cross))

    def _vision(self, module, inputs, output):
        weights = output[1]
        if weights is None:
            raise RuntimeError("the vision model returned no attention weights; eager attention is required")
        weights = weights.detach().float()
        self.last = weights[:, :, 0, 1:]  # (B, heads, patches): CLS -> patches, last layer wins
        if "rollout" in self.config.kinds:
            mixed = 0.5 * weights.mean(1) + 0.5 * torch.eye(weights.shape[-1], device=weights.device)
            mixed = mixed / mixed.sum(-1, keepdim=True)
            self.rollout = mixed if self.rollout is None else mixed @ self.rollout

    def _cross(self, module, inputs, output):
        weights = output[1].detach().float().mean((1, 2))  # (B, keys): mean over heads and queries
        self.cross = weights if self.cross is None else self.cross + weights
        self.cross_layers += 1

    def close(self):
        for handle in self.handles:
            handle.remove()


def _grid(values: torch.Tensor, rows: int, cols: int) -> np.ndarray:
    return values.reshape(rows, cols).cpu().numpy().astype(np.float32)


def _resize(grid: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(grid, mode="F").resize(size, Image.Resampling.BILINEAR), dtype=np.float32)


def resize_map(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``values`` resized to ``shape`` (rows, columns)."""
    return values if values.shape == tuple(shape) else _resize(values, (shape[1], shape[0]))


def split_concat_map(grid: np.ndarray, orientation: str, reference_size, modified_size):
    """A patch grid over the joined pair -> (reference map, modified map), each at its image's size.

    The joined image is the modified size twice (stacked or side by side); the grid is resized to
    that, cut in two, and the reference half resized back to the reference image's own size.
    """
    width, height = modified_size
    if orientation == "vertical":
        joined = _resize(grid, (width, 2 * height))
        top, bottom = joined[:height], joined[height:]
    else:
        joined = _resize(grid, (2 * width, height))
        top, bottom = joined[:, :width], joined[:, width:]
    reference = top if tuple(reference_size) == (width, height) else _resize(top, tuple(reference_size))
    return reference, bottom


def _normalise(reference: np.ndarray, modified: np.ndarray):
    """Scale both halves by one pair-wide range into [0, 1], so the halves stay comparable."""
    low = min(reference.min(), modified.min())
    span = max(reference.max(), modified.max()) - low
    if span <= 0:
        return np.zeros_like(reference), np.zeros_like(modified)
    return (reference - low) / span, (modified - low) / span


def attention_maps(
    model: BLIP2IDC, pairs: list[tuple[Image.Image, Image.Image]], config: AttentionConfig | None = None
) -> list[PairAttention]:
    """Attention maps for each (reference, modified) pair, in input order."""
    config = config or AttentionConfig()
    vision = model.base.config.vision_config
    side = vision.image_size // vision.patch_size
    results: list[PairAttention] = []
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(pairs), config.batch_size):
            batch = pairs[start : start + config.batch_size]
            results.extend(_batch_maps(model, batch, config, side))
    finally:
        model.train(was_training)
    return results


@torch.no_grad()
def _batch_maps(model: BLIP2IDC, batch, config: AttentionConfig, side: int) -> list[PairAttention]:
    pixel_values = model.pixel_values(batch).to(model.device, model.base.vision_model.dtype)
    two_stream = model.config.encoding == "two-stream"
    recorder = _Recorder(model, config)
    try:
        with eager_attention(model):
            if two_stream:
                model._two_stream_features(pixel_values)
            else:
                model.base.get_image_features(pixel_values)
    finally:
        recorder.close()
    patch_maps = {}
    if "cls" in config.kinds:
        patch_maps["cls"] = recorder.last.mean(1)
    if "rollout" in config.kinds:
        patch_maps["rollout"] = recorder.rollout[:, 0, 1:]
    if "qformer" in config.kinds:
        cross = recorder.cross / max(recorder.cross_layers, 1)
        if two_stream:  # keys are [CLS, patches] of the reference, then of the modified image
            tokens = cross.shape[1] // 2
            cross = torch.cat([cross[:, 1:tokens], cross[:, tokens + 1 :]], dim=1)
        else:
            cross = cross[:, 1:]
        patch_maps["qformer"] = cross
    if two_stream and recorder.last is not None:
        # The vision hooks saw 2B images: (reference, modified) of each pair, in that order.
        for kind in ("cls", "rollout"):
            if kind in patch_maps:
                values = patch_maps[kind]
                patch_maps[kind] = values.reshape(len(batch), 2 * values.shape[-1])

    results = []
    for index, (reference, modified) in enumerate(batch):
        maps = {}
        for kind, values in patch_maps.items():
            if two_stream:
                half = values[index].shape[0] // 2
                ref_map = _resize(_grid(values[index][:half], side, side), reference.size)
                mod_map = _resize(_grid(values[index][half:], side, side), modified.size)
            else:
                ref_map, mod_map = split_concat_map(
                    _grid(values[index], side, side), model.config.orientation, reference.size, modified.size
                )
            maps[kind] = _normalise(ref_map, mod_map)
        heads = None
        if config.per_head and not two_stream:
            heads = [
                _normalise(
                    *split_concat_map(_grid(head, side, side), model.config.orientation, reference.size, modified.size)
                )
                for head in recorder.last[index]
            ]
        results.append(PairAttention(maps=maps, heads=heads))
    return results
