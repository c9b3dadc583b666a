"""Robust image loading: every file becomes an 8-bit RGB image, or an error naming the pair and path."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from idc_engine.errors import ImageLoadError

# PIL's own default bound; above it a file is treated as a decompression bomb rather than decoded.
DEFAULT_MAX_PIXELS = 89_478_485


def load_image(path, pair_id: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open ``path`` as an upright 8-bit RGB image.

    Grayscale, palette, RGBA (composited on white), 16-bit and EXIF-rotated files are normalised.
    A missing, empty, truncated or undecodable file, or one with more than ``max_pixels`` pixels,
    raises :class:`ImageLoadError`.
    """
    path = Path(path)
    if not path.exists():
        raise ImageLoadError(pair_id, path, "file does not exist")
    if not path.is_file():
        raise ImageLoadError(pair_id, path, "not a regular file")
    if path.stat().st_size == 0:
        raise ImageLoadError(pair_id, path, "file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise ImageLoadError(
                        pair_id,
                        path,
                        f"{width}x{height} = {width * height} pixels exceeds the limit of {max_pixels} "
                        "(possible decompression bomb)",
                    )
                image.load()
                return to_rgb(image)
    except ImageLoadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageLoadError(pair_id, path, f"possible decompression bomb ({exc})") from None
    except UnidentifiedImageError:
        raise ImageLoadError(pair_id, path, "not a decodable image") from None
    except (OSError, SyntaxError, ValueError) as exc:
        problem = str(exc) or type(exc).__name__
        if "truncated" in problem:
            problem = f"file is truncated ({problem})"
        raise ImageLoadError(pair_id, path, problem) from None


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to upright 8-bit RGB."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        array = np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        image = Image.fromarray(array, mode="L")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    if image.mode != "RGB":
        image = image.convert("RGB")
    return image
