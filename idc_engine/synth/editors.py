"""The interface every image editor of synthetic augmentation (Syned) implements.

An editor turns one original image into an edited version and says what it did: the instruction it
carried out (a caption source), the edit category, and every setting that produced the pixels, seed
included, so that the same inputs and seed give the same image again.

Editors: :class:`idc_engine.synth.procedural.ProceduralEditor` (no model, the offline default) and
:class:`idc_engine.synth.ip2p.InstructPix2PixEditor` (a local InstructPix2Pix checkpoint, as in the paper).
"""

from __future__ import annotations

import numbers
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from PIL import Image

# The edit categories of the paper's synthetic set (MagicBrush-style instructions).
CATEGORIES = ("add", "text", "color", "background", "style", "global", "remove", "local")


@dataclass
class EditResult:
    image: Image.Image  # RGB, the size of the input
    instruction: str  # the instruction actually carried out (may be the one given)
    category: str | None
    settings: dict = field(default_factory=dict)  # editor name and every setting (JSON-serialisable), seed included


class Editor(ABC):
    """Edits images; the same image, instruction, category and seed always give the same pixels."""

    name: str

    @abstractmethod
    def edit(self, image: Image.Image, instruction: str | None, category: str | None, seed: int) -> EditResult:
        """Edit ``image`` as ``instruction`` says (or as the editor chooses when it is None)."""

    def edit_batch(self, items: list[tuple[Image.Image, str | None, str | None, int]]) -> list[EditResult]:
        """Edit ``(image, instruction, category, seed)`` items; the same results as one ``edit`` each."""
        return [self.edit(image, instruction, category, seed) for image, instruction, category, seed in items]


def check_category(category: str | None) -> None:
    if category is not None and category not in CATEGORIES:
        raise ValueError(f"category must be one of {CATEGORIES} or None, got {category!r}")


def check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)
