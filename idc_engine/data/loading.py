"""Load the images of many pairs, raising on the first bad file or skipping and counting bad pairs."""

from __future__ import annotations

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


def load_pairs(
    pairs: list[IDCPair], skip_bad: bool = False, max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[list[IDCPair], list[tuple[Image.Image, Image.Image]], LoadReport]:
    """Decode every pair. With ``skip_bad`` a bad pair is left out and counted; otherwise it raises."""
    kept, images, report = [], [], LoadReport()
    for pair in pairs:
        try:
            images.append(load_pair(pair, max_pixels))
        except ImageLoadError as exc:
            if not skip_bad:
                raise
            report.skipped.append((pair.id, str(exc)))
            continue
        kept.append(pair)
        report.loaded += 1
    return kept, images, report
