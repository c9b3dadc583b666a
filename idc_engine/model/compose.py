"""Compose an image pair into the one image BLIP2IDC sees: the reference aligned to the modified image, then stacked."""

from __future__ import annotations

from PIL import Image


def align_reference(reference: Image.Image, modified: Image.Image) -> Image.Image:
    """The reference resized to the modified image's size, so corresponding pixels line up."""
    if reference.size == modified.size:
        return reference
    return reference.resize(modified.size, Image.Resampling.BICUBIC)


def compose_pair(reference: Image.Image, modified: Image.Image, orientation: str = "vertical") -> Image.Image:
    """One image: the (aligned) reference above, or left of, the modified image."""
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
