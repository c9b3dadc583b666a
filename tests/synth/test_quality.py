"""The quality filter keeps real edits and rejects the two failures an editor has no excuse for."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from idc_engine.synth.quality import QualityConfig, QualityFilter, changed_share


def _photo(size=64):
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(40, 200, (size, size, 3), dtype=np.uint8))


def test_a_small_edit_is_kept_and_the_two_failures_are_rejected():
    original = _photo()
    edited = original.copy()
    ImageDraw.Draw(edited).ellipse([10, 10, 26, 26], fill=(255, 0, 0))
    judge = QualityFilter()
    reason, scores = judge.judge(original, edited, "add", "add a red circle")
    assert reason is None and 0.03 < scores["changed_share"] < 0.1
    assert judge.judge(original, original.copy(), "add", "add a red circle")[0] == "unchanged"
    inverted = Image.fromarray(255 - np.asarray(original))
    assert judge.judge(original, inverted, "add", "add a red circle")[0] == "changed_everything"
    assert judge.judge(original, inverted, "global", "make it look like a negative")[0] is None  # global may
    assert judge.judge(original, original.copy(), "none", "nothing changed")[0] is None  # no change is right


def test_changed_share_compares_in_the_edited_frame():
    assert changed_share(_photo(64), _photo(64), 24) == 0.0
    assert changed_share(Image.new("RGB", (32, 32), "black"), Image.new("RGB", (64, 64), "white"), 24) == 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pixel_threshold": 300}, "pixel_threshold must be an integer in"),
        ({"min_changed_share": 0.7}, r"min_changed_share \(0.7\) must be below max_local_share"),
        ({"min_clip_direction": 2.0}, "min_clip_direction must be in"),
    ],
)
def test_bad_settings_name_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        QualityConfig(**kwargs)


def _textured(size=(128, 96), seed=1):
    """A photo-like image with texture at every scale (what a VAE round trip blurs)."""
    from skimage import data

    return Image.fromarray(data.astronaut()).convert("RGB").resize(size, Image.Resampling.LANCZOS)


def _ip2p_round_trip(image, working=(64, 48), noise=6.0, seed=0):
    """What InstructPix2Pix returns for an edit that changed nothing: the input resized to the working size
    and back, with the VAE's small per-pixel error (approximated as Gaussian noise)."""
    back = image.resize(working, Image.Resampling.LANCZOS).resize(image.size, Image.Resampling.LANCZOS)
    pixels = np.asarray(back, np.float32) + np.random.default_rng(seed).normal(0, noise, (*image.size[::-1], 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def test_an_ip2p_output_that_changed_nothing_is_still_caught_and_a_small_edit_is_kept():
    original = _textured()
    unchanged = _ip2p_round_trip(original)
    # At full size the round trip moves many pixels past the threshold: the old filter kept such a non-edit.
    assert changed_share(original, unchanged, 24) > 0.05
    judge = QualityFilter()
    assert judge.judge(original, unchanged, "add", "add a red circle")[0] == "unchanged"
    edited = original.copy()
    ImageDraw.Draw(edited).ellipse([50, 30, 66, 46], fill=(255, 0, 0))  # 2 % of the image
    reason, scores = judge.judge(original, _ip2p_round_trip(edited), "add", "add a red circle")
    assert reason is None and scores["changed_share"] > 0.005
    assert QualityFilter(QualityConfig(compare_size=None)).judge(original, unchanged, "add", "x")[0] is None


def test_safety_checker_outputs_are_rejected_whatever_the_category():
    original = _photo()
    black = Image.new("RGB", original.size, (0, 0, 0))
    judge = QualityFilter()
    for category in ("global", "style", "background", "add", None):
        assert judge.judge(original, black, category, "make it night")[0] == "safety_checker"
    edited = original.copy()
    ImageDraw.Draw(edited).ellipse([10, 10, 26, 26], fill=(255, 0, 0))
    assert judge.judge(original, edited, "add", "add a red circle", safety_flagged=True)[0] == "safety_checker"
    assert judge.judge(original, edited, "add", "add a red circle", safety_flagged=False)[0] is None
    dark = Image.new("RGB", (32, 32), (0, 0, 0))  # a black original edited to black is no blacked-out output
    assert judge.judge(dark, dark.copy(), "none", "nothing changed")[0] is None


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    from idc_engine.synth.tiny_clip import build_tiny_clip

    return str(build_tiny_clip(tmp_path_factory.mktemp("tiny-clip")))


def test_the_clip_direction_runs_on_a_tiny_local_clip_and_uses_captions_when_a_pair_has_both(tiny_clip):
    import torch
    from transformers import CLIPModel, CLIPProcessor

    original = _photo()
    edited = original.copy()
    ImageDraw.Draw(edited).ellipse([10, 10, 40, 40], fill=(255, 0, 0))
    judge = QualityFilter(QualityConfig(clip_model=tiny_clip, min_clip_direction=-1.0))
    reason, scores = judge.judge(original, edited, "add", "add a red circle")
    assert reason is None and scores["clip_text"] == "instruction" and -1.0 <= scores["clip_direction"] <= 1.0
    captions = ("a photo of a face", "a photo of a face with a red circle")
    with_captions = judge.judge(original, edited, "add", "add a red circle", captions=captions)[1]
    assert with_captions["clip_text"] == "captions"

    # The same cosine computed by hand from the saved checkpoint: before -> after caption, image 0 -> image 1.
    model = CLIPModel.from_pretrained(tiny_clip, local_files_only=True).eval()
    processor = CLIPProcessor.from_pretrained(tiny_clip, local_files_only=True)
    with torch.no_grad():
        pixels = processor(images=[original, edited], return_tensors="pt")["pixel_values"]
        image = model.get_image_features(pixel_values=pixels).pooler_output
        text = model.get_text_features(**processor(text=list(captions), return_tensors="pt", padding=True))
        text = text.pooler_output
    expected = torch.nn.functional.cosine_similarity(image[1] - image[0], text[1] - text[0], dim=0)
    assert abs(with_captions["clip_direction"] - round(float(expected), 5)) < 1e-4
    assert with_captions["clip_direction"] != scores["clip_direction"]

    strict = QualityFilter(QualityConfig(clip_model=tiny_clip, min_clip_direction=1.0))
    assert strict.judge(original, edited, "add", "add a red circle")[0] == "clip_direction"


def test_a_missing_clip_checkpoint_is_named(tmp_path):
    judge = QualityFilter(QualityConfig(clip_model=str(tmp_path / "no-clip")))
    with pytest.raises(OSError, match="clip_model .*no-clip.*cannot load a local CLIP checkpoint"):
        judge.judge(_photo(), _photo(), "add", "add a hat")


@pytest.mark.xfail(
    strict=True,
    reason="break-16: thin edits (1-2 px lines at 512 px: wires, a leash) average out at compare_size=32 and are "
    "rejected as unchanged although 0.8 % of the full-size pixels changed",
)
def test_a_thin_edit_on_a_large_image_is_not_unchanged():
    width, height = 512, 384
    reference = Image.fromarray(np.full((height, width, 3), 200, np.uint8))
    edited = reference.copy()
    draw = ImageDraw.Draw(edited)
    for k in range(3):  # three power lines across the sky
        draw.line((0, 100 + 60 * k, width, 130 + 60 * k), fill=(0, 0, 0), width=2)
    assert changed_share(reference, edited, 24) > 0.005  # a visible edit at full size
    reason, _ = QualityFilter().judge(reference, edited, "add", "Add power lines")
    assert reason is None
