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
