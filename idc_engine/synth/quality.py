"""Which synthetic edits to keep, each rejection counted by its reason:

- ``safety_checker``: the editor's safety checker flagged the output (InstructPix2Pix then returns a black
  image), or the output is entirely black while the original is not.
- ``unchanged``: the edit changed (almost) nothing; ``changed_everything``: a local category's edit changed
  nearly the whole image.
- ``clip_direction`` (with a local CLIP checkpoint): the change of the image's CLIP embedding does not point
  the way the text changes. The text change is from the *before*-caption to the *after*-caption where a pair
  has both (``metadata["caption_before"]`` / ``["caption_after"]``, as InstructPix2Pix's own filter uses its
  input and edited captions), else from a neutral text ("a photo") to the instruction.

Pixels are compared at ``compare_size`` (the longer side, box-averaged), not at full size: an
InstructPix2Pix output has been resized to the working size and back and through the VAE, which moves every
pixel a little (a textured 128 x 96 photo round-tripped at half size differs by more than 24 levels on 18 %
of its pixels, 1.2 % still at 64 px); at 32 px those shifts average out (0.1 %), while an edited region of 2 %
of the image still changes 2.6 % of the small image. Below 0.5 % an edit counts as no edit.
So an edit that changed nothing is still caught on IP2P outputs, which it was not at full size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

# Categories whose edit touches part of the image: changing nearly all of it means the editor failed.
LOCAL_CATEGORIES = ("add", "text", "color", "remove", "local", "drop", "move")
# Categories where an unchanged image is the right answer (shapes-change's "none").
NO_CHANGE_CATEGORIES = ("none",)
NEUTRAL_TEXT = "a photo"
REASONS = ("safety_checker", "unchanged", "changed_everything", "clip_direction")


@dataclass
class QualityConfig:
    pixel_threshold: int = field(default=24, metadata={"help": "a pixel changed when a channel moved more than this"})
    min_changed_share: float = field(
        default=0.005, metadata={"help": "below this share of changed pixels an edit changed nothing"}
    )
    max_local_share: float = field(
        default=0.6, metadata={"help": "above this share a local category's edit changed the whole image"}
    )
    compare_size: int | None = field(
        default=32,
        metadata={"help": "longer side (px) at which the two images are compared, box-averaged; None: full size"},
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
        if self.compare_size is not None and (not isinstance(self.compare_size, int) or self.compare_size < 8):
            raise ValueError(f"compare_size must be an integer of at least 8 or None, got {self.compare_size!r}")
        if not -1.0 <= self.min_clip_direction <= 1.0:
            raise ValueError(f"min_clip_direction must be in [-1, 1], got {self.min_clip_direction!r}")


def changed_share(reference: Image.Image, edited: Image.Image, pixel_threshold: int, size: int | None = None) -> float:
    """Share of pixels where some channel differs by more than ``pixel_threshold`` (edited's frame; both
    box-averaged to a longer side of ``size`` first when it is given and smaller)."""
    if reference.size != edited.size:
        reference = reference.resize(edited.size, Image.Resampling.BILINEAR)
    if size is not None and max(edited.size) > size:
        scale = size / max(edited.size)
        small = (max(1, round(edited.size[0] * scale)), max(1, round(edited.size[1] * scale)))
        reference = reference.convert("RGB").resize(small, Image.Resampling.BOX)
        edited = edited.convert("RGB").resize(small, Image.Resampling.BOX)
    a = np.asarray(reference.convert("RGB"), dtype=np.int16)
    b = np.asarray(edited.convert("RGB"), dtype=np.int16)
    return float((np.abs(a - b).max(axis=2) > pixel_threshold).mean())


def blacked_out(reference: Image.Image, edited: Image.Image) -> bool:
    """An output that is entirely black (what a safety checker returns) from an original that is not."""
    return int(np.asarray(edited.convert("L")).max()) <= 1 < int(np.asarray(reference.convert("L")).max())


def features(output):
    """The embedding tensor of ``get_image_features`` / ``get_text_features``: a tensor in transformers 4, an
    output object in transformers 5 (its ``pooler_output`` is the projected embedding)."""
    import torch

    if isinstance(output, torch.Tensor):
        return output
    for name in ("image_embeds", "text_embeds", "pooler_output"):
        value = getattr(output, name, None)
        if isinstance(value, torch.Tensor):
            return value
    raise TypeError(f"CLIP features: cannot find the embedding in a {type(output).__name__}")


class QualityFilter:
    """Judges edits; holds the CLIP model, loaded once, when one is configured."""

    def __init__(self, config: QualityConfig | None = None):
        self.config = config or QualityConfig()
        self._clip = None

    def judge(
        self,
        reference,
        edited,
        category: str | None,
        instruction: str | None,
        *,
        captions: tuple[str, str] | None = None,
        safety_flagged: bool | None = None,
    ) -> tuple[str | None, dict]:
        """``(reason, scores)``: the rejection reason (one of ``REASONS``, None to keep the edit) and what was
        measured. ``captions`` are the pair's before- and after-captions, ``safety_flagged`` the editor's flag."""
        config = self.config
        share = changed_share(reference, edited, config.pixel_threshold, config.compare_size)
        scores = {"changed_share": round(share, 5)}
        if safety_flagged or blacked_out(reference, edited):
            return "safety_checker", scores
        if config.clip_model and (instruction or _both(captions)):
            direction, text = self.clip_direction(reference, edited, instruction, captions)
            scores["clip_direction"] = round(direction, 5)
            scores["clip_text"] = text
        if category in NO_CHANGE_CATEGORIES:
            return None, scores
        if share < config.min_changed_share:
            return "unchanged", scores
        if category in LOCAL_CATEGORIES and share > config.max_local_share:
            return "changed_everything", scores
        if "clip_direction" in scores and scores["clip_direction"] < config.min_clip_direction:
            return "clip_direction", scores
        return None, scores

    def clip_direction(self, reference, edited, instruction: str | None, captions=None) -> tuple[float, str]:
        """Cosine between the image change and the text change, and which text change was used:
        ``"captions"`` (before-caption -> after-caption) or ``"instruction"`` (neutral text -> instruction)."""
        import torch

        model, processor = self._load_clip()
        texts, kind = (list(captions), "captions") if _both(captions) else ([NEUTRAL_TEXT, instruction], "instruction")
        with torch.no_grad():
            images = processor(images=[reference.convert("RGB"), edited.convert("RGB")], return_tensors="pt")
            tokens = processor(text=texts, return_tensors="pt", padding=True, truncation=True)
            image_features = features(model.get_image_features(pixel_values=images["pixel_values"]))
            text_features = features(model.get_text_features(**tokens))
        image_change = image_features[1] - image_features[0]
        text_change = text_features[1] - text_features[0]
        return float(torch.nn.functional.cosine_similarity(image_change, text_change, dim=0)), kind

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


def _both(captions) -> bool:
    return bool(captions) and len(captions) == 2 and all(isinstance(c, str) and c.strip() for c in captions)
