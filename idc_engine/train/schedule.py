"""Learning-rate schedule: linear warm-up, then cosine or linear decay to ``min_lr_ratio``."""

from __future__ import annotations

import math


def lr_factor(
    step: int,
    total_steps: int,
    warmup_steps: int,
    schedule: str,
    min_lr_ratio: float,
    time_fraction: float | None = None,
) -> float:
    """Multiplier of the peak learning rate at optimizer step ``step`` (0-based).

    ``time_fraction`` (elapsed / budget) lets a run with a time budget decay on the clock, so the
    schedule ends when the budget does, whatever the machine's speed.
    """
    if warmup_steps and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    if time_fraction is not None:
        progress = min(1.0, max(progress, time_fraction))
    if schedule == "cosine":
        decay = 0.5 * (1.0 + math.cos(math.pi * progress))
    else:
        decay = 1.0 - progress
    return min_lr_ratio + (1.0 - min_lr_ratio) * decay
