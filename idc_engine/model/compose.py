"""Compose an image pair into the one image BLIP2IDC sees: the reference aligned to the modified image, then stacked."""

from __future__ import annotations

import numpy as np
from PIL import Image


def align_reference(reference: Image.Image, modified: Image.Image) -> Image.Image:
    """The reference resized to the modified image's size, so corresponding pixels line up."""
    if reference.size == modified.size:
        return reference
    return reference.resize(modified.size, Image.Resampling.BICUBIC)


def difference_image(reference: Image.Image, modified: Image.Image) -> Image.Image:
    """The signed difference ``modified - reference``, halved and centred on grey (128): an unchanged pixel
    is grey, and the reference is ``modified - 2 * (difference - 128)`` to within one level, so the pair
    loses nothing while the change itself is drawn where it happened."""
    reference = np.asarray(align_reference(reference, modified).convert("RGB"), dtype=np.int16)
    changed = np.asarray(modified.convert("RGB"), dtype=np.int16)
    return Image.fromarray(((changed - reference) // 2 + 128).astype(np.uint8), mode="RGB")


def compose_pair(
    reference: Image.Image, modified: Image.Image, orientation: str = "vertical", encoding: str = "concat"
) -> Image.Image:
    """One image: the (aligned) reference above, or left of, the modified image; with the 'difference'
    encoding, the pair's difference image (``difference_image``) in the reference's place."""
    if encoding == "difference":
        reference = difference_image(reference, modified)
    elif encoding != "concat":
        raise ValueError(f"encoding must be 'concat' or 'difference' to compose one image, got {encoding!r}")
    reference = align_reference(reference, modified)
    width, height = modified.size
    if orientation == "vertical":
        canvas = Image.new("RGB", (width, 2 * height))
        canvas.paste(reference, (0, 0))
        canvas.paste(modified, (0, height))
    elif orientation == "horizontal":
        canvas = Image.new("RGB", (2 * width, height))
        canvas.paste(reference, (0, 0))
        canvas.paste(modified, (width, 0))
    else:
        raise ValueError(f"orientation must be 'vertical' or 'horizontal', got {orientation!r}")
    return canvas
