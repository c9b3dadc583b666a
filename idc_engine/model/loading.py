"""Resolve a model spec: a checkpoint folder or hub id, an adapter folder, or the tiny presets."""

from __future__ import annotations

from idc_engine.model.base_reference import EMBEDDED, TINY_CHECKPOINT, TINY_PHOTO_CHECKPOINT, resolve_spec
from idc_engine.model.blip2idc import BLIP2IDC
from idc_engine.model.config import BLIP2IDCConfig

__all__ = ["TINY_CHECKPOINT", "TINY_PHOTO_CHECKPOINT", "load_model"]


def load_model(
    spec: str = "tiny",
    adapter=None,
    device: str | None = None,
    config: BLIP2IDCConfig | None = None,
    for_training: bool = False,
    base_model: str | None = None,
) -> BLIP2IDC:
    """``spec`` is 'tiny' (the embedded shapes preset), 'tiny-photo' (the embedded photo-edits preset),
    'tiny-scratch' (random init), or a path / hub id.

    ``base_model`` names the base of an adapter folder made on another machine (a path, hub id or
    'tiny'). ``for_training`` keeps fp32 weights on every device; mixed precision comes from autocast.
    """
    dtype = "float32" if for_training else None
    if spec == "tiny-scratch":
        from idc_engine.model.tiny import build_tiny

        if adapter is not None:
            raise ValueError("adapter: a randomly initialised 'tiny-scratch' model has no adapters to load")
        model = build_tiny(config=config)
        model.spec = spec
        return model.to(device) if device else model
    model = BLIP2IDC.from_pretrained(
        resolve_spec(spec),
        adapter=adapter,
        config=config,
        device=device,
        dtype=dtype,
        trainable_adapter=for_training,
        base_model=base_model,
    )
    if spec in EMBEDDED and adapter is None:
        model.spec = spec
    return model
