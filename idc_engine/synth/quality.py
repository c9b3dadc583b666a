"""Which synthetic edits to keep: reject an edit that changed nothing, or that changed the whole image
where its category says only part of it should change; optionally, an edit whose change does not
point the way its instruction does (CLIP directional similarity, with a local CLIP checkpoint).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

# Categories whose edit touches part of the image: changing nearly all of it means the editor failed.
LOCAL_CATEGORIES = ("add", "text", "color", "remove", "local", "drop", "move")
# Categories where an unchanged image is the right answer (shapes-change's "none").
NO_CHANGE_CATEGORIES = ("none",)


@dataclass
class QualityConfig:
    pixel_threshold: int = field(default=24, metadata={"help": "a pixel changed when a channel moved more than this"})
    min_changed_share: float = field(
        default=0.001, metadata={"help": "below this share of changed pixels an edit changed nothing"}
    )
    max_local_share: float = field(
        default=0.6, metadata={"help": "above this share a local category's edit changed the whole image"}
    )
    clip_model: str | None = field(
        default=None, metadata={"help": "local CLIP checkpoint: also score the edit's direction against its text"}
    )
    min_clip_direction: float = field(
        default=0.0, metadata={"help": "with clip_model: reject below this directional similarity"}
    )

    def __post_init__(self):
        if not isinstance(self.pixel_threshold, int) or not 0 <= self.pixel_threshold < 255:
            raise ValueError(f"pixel_threshold must be an integer in [0, 255), got {self.pixel_threshold!r}")
        for name in ("min_changed_share", "max_local_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        if self.min_changed_share >= self.max_local_share:
            raise ValueError(
                f"min_changed_share ({self.min_changed_share}) must be below max_local_share ({self.max_local_share})"
            )
        if not -1.0 <= self.min_clip_direction <= 1.0:
            raise ValueError(f"min_clip_direction must be in [-1, 1], got {self.min_clip_direction!r}")


def changed_share(reference: Image.Image, edited: Image.Image, pixel_threshold: int) -> float:
    """Share of pixels where some channel differs by more than ``pixel_threshold`` (edited's frame)."""
    if reference.size != edited.size:
        reference = reference.resize(edited.size, Image.Resampling.BILINEAR)
    a = np.asarray(reference.convert("RGB"), dtype=np.int16)
    b = np.asarray(edited.convert("RGB"), dtype=np.int16)
    return float((np.abs(a - b).max(axis=2) > pixel_threshold).mean())


class QualityFilter:
    """Judges edits; holds the CLIP model, loaded once, when one is configured."""

    def __init__(self, config: QualityConfig | None = None):
        self.config = config or QualityConfig()
        self._clip = None

    def judge(self, reference, edited, category: str | None, instruction: str | None) -> tuple[str | None, dict]:
        """``(reason, scores)``: the rejection reason (None to keep the edit) and what was measured."""
        config = self.config
        share = changed_share(reference, edited, config.pixel_threshold)
        scores = {"changed_share": round(share, 5)}
        if config.clip_model and instruction:
            scores["clip_direction"] = round(self.clip_direction(reference, edited, instruction), 5)
        if category in NO_CHANGE_CATEGORIES:
            return None, scores
        if share < config.min_changed_share:
            return "unchanged", scores
        if category in LOCAL_CATEGORIES and share > config.max_local_share:
            return "changed_everything", scores
        if "clip_direction" in scores and scores["clip_direction"] < config.min_clip_direction:
            return "clip_direction", scores
        return None, scores

    def clip_direction(self, reference, edited, instruction: str) -> float:
        """Cosine between the image change and the text change (instruction against a neutral text)."""
        import torch

        model, processor = self._load_clip()
        with torch.no_grad():
            images = processor(images=[reference.convert("RGB"), edited.convert("RGB")], return_tensors="pt")
            texts = processor(text=["a photo", instruction], return_tensors="pt", padding=True, truncation=True)
            image_features = model.get_image_features(**images)
            text_features = model.get_text_features(**texts)
        image_change = image_features[1] - image_features[0]
        text_change = text_features[1] - text_features[0]
        return float(torch.nn.functional.cosine_similarity(image_change, text_change, dim=0))

    def _load_clip(self):
        if self._clip is None:
            from transformers import CLIPModel, CLIPProcessor

            path = self.config.clip_model
            try:
                model = CLIPModel.from_pretrained(path, local_files_only=True).eval()
                processor = CLIPProcessor.from_pretrained(path, local_files_only=True)
            except (OSError, ValueError) as exc:
                raise OSError(f"clip_model {path!r}: cannot load a local CLIP checkpoint: {exc}") from exc
            self._clip = (model, processor)
        return self._clip
