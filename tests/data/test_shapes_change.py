import numpy as np
import pytest

from idc_engine.data.loading import load_pair
from idc_engine.data.manifest import read_manifest
from idc_engine.data.shapes_change import CHANGE_TYPES, ShapesChangeConfig, generate


def _diff(pair):
    reference, modified = load_pair(pair)
    return np.abs(np.asarray(reference, dtype=int) - np.asarray(modified, dtype=int)).max(axis=2)


def test_same_seed_same_pairs_and_pairs_do_not_depend_on_count(tmp_path):
    a = read_manifest(generate(tmp_path / "a", train=6, test=3, validation=2))
    b = read_manifest(generate(tmp_path / "b", train=4, test=3))
    for name in ("train-000003", "test-000002"):
        pa, pb = next(p for p in a if p.id == name), next(p for p in b if p.id == name)
        assert pa.captions == pb.captions and pa.metadata == pb.metadata
        assert pa.modified.read_bytes() == pb.modified.read_bytes()
    c = read_manifest(generate(tmp_path / "c", train=6, test=3, config=ShapesChangeConfig(seed=1)))
    assert [p.captions for p in c] != [p.captions for p in a[:9]]


def test_every_pair_has_five_varied_references_and_a_category(shapes_pairs):
    assert {p.category for p in shapes_pairs} == set(CHANGE_TYPES)
    for pair in shapes_pairs:
        assert len(pair.captions) >= 5 and len(set(pair.captions)) == len(pair.captions)
    splits = {p.split for p in shapes_pairs}
    assert splits == {"train", "validation", "test"}


def test_no_change_pairs_differ_only_by_noise(shapes_pairs):
    none = [p for p in shapes_pairs if p.category == "none"]
    changed = [p for p in shapes_pairs if p.category != "none"]
    assert none and changed
    # Noise moves many pixels a little; a real change moves an object's worth of pixels a lot.
    assert max((_diff(p) > 80).mean() for p in none) < 0.01
    assert min((_diff(p) > 80).mean() for p in changed) > 0.02
    assert all(_diff(p).max() > 0 or p.metadata["noise"] == "brightness" for p in none)


def test_changed_pixels_lie_in_the_stored_boxes(shapes_pairs):
    for pair in shapes_pairs:
        if pair.category == "none":
            assert pair.metadata["boxes"] == {"reference": None, "modified": None}
            continue
        strong = _diff(pair) > 80
        size = strong.shape[0]
        inside = np.zeros_like(strong)
        for box in pair.metadata["boxes"].values():
            if box is None:
                continue
            x, y, w, h = (round(v * size) for v in box)
            inside[max(0, y - 2) : y + h + 2, max(0, x - 2) : x + w + 2] = True
        assert strong[inside].sum() / max(1, strong.sum()) > 0.97, pair.id


def test_captions_name_the_changed_object(shapes_pairs):
    for pair in shapes_pairs:
        change = pair.metadata["change"]
        if pair.category == "none":
            continue
        for caption in pair.captions:
            assert change["color"] in caption and change["shape"] in caption
            if pair.category == "color":
                assert change["new_color"] in caption


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_objects": 3, "max_objects": 2}, "min_objects and max_objects"),
        ({"change_types": ("color", "explode")}, "change_types must be a non-empty subset"),
        ({"image_size": 8}, "image_size must be at least 32, got 8"),
    ],
)
def test_bad_config_names_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ShapesChangeConfig(**kwargs)
