"""Load the images of many pairs, raising on the first bad file or skipping and counting bad pairs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from PIL import Image

from idc_engine.data.images import DEFAULT_MAX_PIXELS, load_image
from idc_engine.data.pair import IDCPair
from idc_engine.errors import ImageLoadError


@dataclass
class LoadReport:
    """What a tolerant load kept and what it skipped, with each skipped pair's reason."""

    loaded: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def skipped_count(self) -> int:
        return len(self.skipped)

    def summary(self) -> str:
        text = f"{self.loaded} pairs loaded, {self.skipped_count} skipped"
        if self.skipped:
            shown = "; ".join(reason for _, reason in self.skipped[:3])
            more = f" (and {self.skipped_count - 3} more)" if self.skipped_count > 3 else ""
            text += f": {shown}{more}"
        return text


def load_pair(pair: IDCPair, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[Image.Image, Image.Image]:
    return (
        load_image(pair.reference, pair.id, max_pixels=max_pixels),
        load_image(pair.modified, pair.id, max_pixels=max_pixels),
    )


class PairImages(Sequence):
    """The decoded images of checked pairs, index-aligned with them.

    Images stay in memory until ``max_cached_pixels`` is reached; beyond it a pair is decoded again
    from disk at each access, so a large dataset does not have to fit in RAM.
    """

    def __init__(self, pairs: list[IDCPair], max_pixels: int, max_cached_pixels: int | None):
        self._pairs = pairs
        self._max_pixels = max_pixels
        self._budget = max_cached_pixels
        self._cached: list[tuple[Image.Image, Image.Image] | None] = []
        self._pixels = 0

    def _keep(self, images: tuple[Image.Image, Image.Image]):
        pixels = sum(im.size[0] * im.size[1] for im in images)
        if self._budget is None or self._pixels + pixels <= self._budget:
            self._pixels += pixels
            self._cached.append(images)
        else:
            self._cached.append(None)

    def __len__(self) -> int:
        return len(self._cached)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        images = self._cached[index]
        return images if images is not None else load_pair(self._pairs[index], self._max_pixels)


def load_pairs(
    pairs: list[IDCPair],
    skip_bad: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_cached_pixels: int | None = None,
) -> tuple[list[IDCPair], PairImages, LoadReport]:
    """Decode every pair once. With ``skip_bad`` a bad pair is left out and counted; otherwise it raises.

    ``max_cached_pixels`` bounds the pixels kept in memory (None: keep all); see :class:`PairImages`.
    """
    kept, report = [], LoadReport()
    images = PairImages(kept, max_pixels, max_cached_pixels)
    for pair in pairs:
        try:
            decoded = load_pair(pair, max_pixels)
        except ImageLoadError as exc:
            if not skip_bad:
                raise
            report.skipped.append((pair.id, str(exc)))
            continue
        kept.append(pair)
        images._keep(decoded)
        report.loaded += 1
    return kept, images, report
