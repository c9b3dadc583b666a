"""Resolve a model spec: a checkpoint folder or hub id, an adapter folder, or the tiny presets."""

from __future__ import annotations

from pathlib import Path

from idc_engine.model.blip2idc import BLIP2IDC
from idc_engine.model.config import BLIP2IDCConfig

TINY_CHECKPOINT = Path(__file__).resolve().parent.parent / "assets" / "tiny-blip2-shapes"


def load_model(
    spec: str = "tiny",
    adapter=None,
    device: str | None = None,
    config: BLIP2IDCConfig | None = None,
    for_training: bool = False,
) -> BLIP2IDC:
    """``spec`` is 'tiny' (the embedded pretrained preset), 'tiny-scratch' (random init), or a path / hub id.

    ``for_training`` keeps fp32 weights on every device; mixed precision comes from autocast.
    """
    dtype = "float32" if for_training else None
    if spec == "tiny-scratch":
        from idc_engine.model.tiny import build_tiny

        if adapter is not None:
            raise ValueError("adapter: a randomly initialised 'tiny-scratch' model has no adapters to load")
        model = build_tiny(config=config)
        return model.to(device) if device else model
    if spec == "tiny":
        if not (TINY_CHECKPOINT / "config.json").is_file():
            raise FileNotFoundError(
                f"model 'tiny': the embedded checkpoint is missing at {TINY_CHECKPOINT}; run `make pretrain-tiny`"
            )
        spec = str(TINY_CHECKPOINT)
    return BLIP2IDC.from_pretrained(
        spec, adapter=adapter, config=config, device=device, dtype=dtype, trainable_adapter=for_training
    )
