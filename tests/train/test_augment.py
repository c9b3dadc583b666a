import numpy as np
import pytest
from PIL import Image

from idc_engine.data.loading import load_pair
from idc_engine.data.shapes_change import COLORS
from idc_engine.train.augment import AugmentConfig, augment_pair


def test_both_images_get_the_same_perturbation():
    image = Image.effect_noise((32, 32), 60).convert("RGB")
    config = AugmentConfig(blur_probability=1.0, jpeg_probability=1.0)
    for seed in range(5):
        a, b = augment_pair(image, image.copy(), config, np.random.default_rng(seed))
        assert np.array_equal(np.asarray(a), np.asarray(b))
        assert not np.array_equal(np.asarray(a), np.asarray(image))


def _colour_name(rgb):
    return min(COLORS, key=lambda name: np.abs(np.asarray(COLORS[name]) - rgb).sum())


def test_augmentation_keeps_shapes_change_captions_true(shapes_pairs):
    """The changed object still differs, colours stay put, unchanged places stay alike."""
    config = AugmentConfig(blur_probability=1.0, jpeg_probability=1.0)
    for pair in [p for p in shapes_pairs if p.category in ("color", "add", "drop", "none")][:12]:
        reference, modified = load_pair(pair)
        a, b = augment_pair(reference, modified, config, np.random.default_rng(0))
        for before, after, objects in (
            (reference, a, pair.metadata["objects_reference"]),
            (modified, b, pair.metadata["objects_modified"]),
        ):
            assert before.size == after.size
            side = before.size[0]
            for obj in objects:  # no colour jitter: each object's core still reads as its colour name
                x, y, r = (round(obj[k] * side) for k in ("x", "y", "r"))
                core = np.asarray(after, float)[y - r // 4 : y + r // 4 + 1, x - r // 4 : x + r // 4 + 1]
                assert _colour_name(core.mean((0, 1))) == obj["color"], (pair.id, obj)
        strong = np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int)).max(2) > 80
        if pair.category == "none":
            assert strong.mean() < 0.01, pair.id
        else:
            assert strong.mean() > 0.02, pair.id


def test_bad_augment_config_names_the_field():
    with pytest.raises(ValueError, match="blur_probability must be in \\[0, 1\\], got 2"):
        AugmentConfig(blur_probability=2)
