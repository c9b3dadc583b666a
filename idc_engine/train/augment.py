"""Augmentations that leave a difference caption true, applied identically to both images.

Blur and JPEG re-encoding change no object, colour or position. Crops, flips and colour jitter are
deliberately absent: they can remove the changed object, swap "left" and "right", or change a colour
that the caption names.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageFilter


@dataclass
class AugmentConfig:
    blur_probability: float = field(default=0.25, metadata={"help": "chance of a Gaussian blur of both images"})
    blur_sigma: tuple[float, float] = field(default=(0.2, 1.0), metadata={"help": "range of the blur radius"})
    jpeg_probability: float = field(default=0.25, metadata={"help": "chance of JPEG re-encoding both images"})
    jpeg_quality: tuple[int, int] = field(default=(50, 90), metadata={"help": "range of the JPEG quality"})

    def __post_init__(self):
        for name in ("blur_probability", "jpeg_probability"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        self.blur_sigma, self.jpeg_quality = tuple(self.blur_sigma), tuple(self.jpeg_quality)
        if not 0 < self.blur_sigma[0] <= self.blur_sigma[1]:
            raise ValueError(f"blur_sigma must be an increasing positive range, got {self.blur_sigma!r}")
        if not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
            raise ValueError(f"jpeg_quality must be a range within [1, 100], got {self.jpeg_quality!r}")

    @property
    def enabled(self) -> bool:
        return self.blur_probability > 0 or self.jpeg_probability > 0


def augment_pair(
    reference: Image.Image, modified: Image.Image, config: AugmentConfig, rng: np.random.Generator
) -> tuple[Image.Image, Image.Image]:
    """Apply the same randomly chosen perturbations, with the same strength, to both images."""
    if rng.random() < config.blur_probability:
        radius = float(rng.uniform(*config.blur_sigma))
        reference, modified = (im.filter(ImageFilter.GaussianBlur(radius)) for im in (reference, modified))
    if rng.random() < config.jpeg_probability:
        quality = int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))
        reference, modified = (_jpeg(im, quality) for im in (reference, modified))
    return reference, modified


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.convert("RGB")
