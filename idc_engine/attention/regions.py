"""Difference regions: boxes around where a pair changed.

Two sources: an attention map of the modified image (``map_regions``), or the pixel difference of
the aligned pair (``pixel_regions``). Both threshold a map, find its connected components and box
them. A caption that says nothing changed gets no region; neither does a pair whose pixels differ
only by noise. ``region_source`` picks the source for a model: ``auto`` (the default) is the pixel
difference for a model with the ``difference`` encoding, which reads that very difference and so
assumes the pair is aligned pixel for pixel, and attention otherwise.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageFilter

from idc_engine.model.compose import align_reference

NO_CHANGE = re.compile(
    r"\b(no (change|difference)s?|nothing (has )?changed|(are|look) (the same|identical)|unchanged|no differences?)\b",
    re.IGNORECASE,
)


@dataclass
class Region:
    box: list[float]  # relative [x, y, w, h]
    score: float  # share of the thresholded map's mass inside the box
    label: str | None = None


REGION_SOURCES = ("auto", "attention", "pixels")


@dataclass
class RegionConfig:
    # 'auto': on held-out photographs tiny-photo's attention regions overlapped the true box with a mean
    # best IoU of 0.17 and the pixel difference's 0.44 (benchmarks/results/localization_photo.json).
    source: str = field(
        default="auto",
        metadata={
            "help": "'attention', 'pixels' (the aligned pair's pixel difference) or 'auto': pixels for a model "
            "with the difference encoding, attention otherwise"
        },
    )
    map_threshold: float = field(default=0.5, metadata={"help": "fraction of the map's maximum kept as change"})
    pixel_threshold: float = field(default=0.3, metadata={"help": "pixel difference (0-1) counted as change"})
    blur: float = field(default=0.02, metadata={"help": "blur of the pixel difference, fraction of the image side"})
    min_area: float = field(default=0.002, metadata={"help": "smallest region, fraction of the image area"})
    max_regions: int = field(default=3, metadata={"help": "most regions per pair"})

    def __post_init__(self):
        if self.source not in REGION_SOURCES:
            raise ValueError(f"region_source must be one of {REGION_SOURCES}, got {self.source!r}")
        for name in ("map_threshold", "pixel_threshold"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in (0, 1), got {getattr(self, name)!r}")
        if self.max_regions < 1:
            raise ValueError(f"max_regions must be positive, got {self.max_regions!r}")


def region_source_for(source: str, encoding: str) -> str:
    """The source ``source`` means for a model with ``encoding``: 'attention' or 'pixels'."""
    if source not in REGION_SOURCES:
        raise ValueError(f"region_source must be one of {REGION_SOURCES}, got {source!r}")
    if source != "auto":
        return source
    return "pixels" if encoding == "difference" else "attention"


def says_no_change(caption: str | None) -> bool:
    return bool(caption) and bool(NO_CHANGE.search(caption))


def changed_object(caption: str | None) -> str | None:
    """The object a difference caption names ('the red circle turned blue' -> 'red circle'), if any."""
    if not caption or says_no_change(caption):
        return None
    match = re.search(
        r"\b(?:the|a|an)\s+((?:\w+\s+){0,2}?\w+?)\s+(?:was|has|is|turned|changed|became|moved|appeared|"
        r"disappeared|were|are)\b",
        caption,
        re.IGNORECASE,
    )
    return match.group(1).lower() if match else None


def _components(mask: np.ndarray) -> list[np.ndarray]:
    """4-connected components of a boolean mask, as arrays of (row, col) indices."""
    seen = np.zeros_like(mask, dtype=bool)
    rows, cols = mask.shape
    components = []
    for start in zip(*np.nonzero(mask)):
        if seen[start]:
            continue
        queue, cells = deque([start]), []
        seen[start] = True
        while queue:
            r, c = queue.popleft()
            cells.append((r, c))
            for nr, nc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
                if 0 <= nr < rows and 0 <= nc < cols and mask[nr, nc] and not seen[nr, nc]:
                    seen[nr, nc] = True
                    queue.append((nr, nc))
        components.append(np.array(cells))
    return components


def boxes_from_map(values: np.ndarray, threshold: float, config: RegionConfig, label=None) -> list[Region]:
    """Box every connected component of ``values >= threshold``; the largest by mass first."""
    mask = values >= threshold
    if not mask.any():
        return []
    height, width = values.shape
    total = float(values[mask].sum()) or 1.0
    regions = []
    for cells in _components(mask):
        if len(cells) < config.min_area * height * width:
            continue
        r0, c0 = cells.min(0)
        r1, c1 = cells.max(0) + 1
        mass = float(values[cells[:, 0], cells[:, 1]].sum())
        regions.append(Region([c0 / width, r0 / height, (c1 - c0) / width, (r1 - r0) / height], mass / total, label))
    regions.sort(key=lambda region: -region.score)
    return regions[: config.max_regions]


def aligned_change_map(reference_map: np.ndarray, modified_map: np.ndarray) -> np.ndarray:
    """Both halves' attention in the modified image's frame (the pair is aligned): a removed object
    is visible only in the reference half, so reading the modified half alone misses removals."""
    from idc_engine.attention.maps import resize_map

    return np.maximum(modified_map, resize_map(reference_map, modified_map.shape))


def map_regions(modified_map: np.ndarray, caption: str | None = None, config: RegionConfig | None = None):
    """Regions of an attention map over the modified image; none when the caption says nothing changed."""
    config = config or RegionConfig()
    if says_no_change(caption) or modified_map.max() <= 0:
        return []
    return boxes_from_map(
        modified_map, config.map_threshold * float(modified_map.max()), config, changed_object(caption)
    )


def difference_map(reference: Image.Image, modified: Image.Image, blur: float) -> np.ndarray:
    """Per-pixel colour difference of the aligned pair, in [0, 1], blurred against noise."""
    reference = align_reference(reference, modified)
    diff = np.abs(np.asarray(modified, dtype=np.int16) - np.asarray(reference, dtype=np.int16)).max(2)
    radius = max(1.0, blur * max(modified.size))
    blurred = Image.fromarray(diff.astype(np.uint8), mode="L").filter(ImageFilter.GaussianBlur(radius))
    return np.asarray(blurred, dtype=np.float32) / 255.0


def pixel_regions(
    reference: Image.Image, modified: Image.Image, caption: str | None = None, config: RegionConfig | None = None
) -> list[Region]:
    """Regions where the aligned pixels differ by more than noise does."""
    config = config or RegionConfig()
    return boxes_from_map(
        difference_map(reference, modified, config.blur), config.pixel_threshold, config, changed_object(caption)
    )
