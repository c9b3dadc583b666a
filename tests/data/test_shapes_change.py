import numpy as np
import pytest

from idc_engine.data.loading import load_pair
from idc_engine.data.manifest import read_manifest
from idc_engine.data.pair import IDCPair
from idc_engine.data.shapes_change import CHANGE_TYPES, NONE_NOISY, TWO_CHANGES, ShapesChangeConfig, generate


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


def test_new_options_leave_a_seeds_pairs_as_they_were_unless_they_select_them(tmp_path):
    plain = {p.id: p for p in read_manifest(generate(tmp_path / "plain", train=40, test=0))}
    hard = ShapesChangeConfig(two_change_share=0.5, strong_noise_share=0.5)
    varied = read_manifest(generate(tmp_path / "hard", train=40, test=0, config=hard))
    # The options draw from the pair's second generator, seeded by (seed, split, index, 1).
    odds = {p.id: np.random.default_rng([0, 1, int(p.id.split("-")[1]), 1]).random(3) for p in varied}
    untouched = [p for p in varied if odds[p.id][1] >= 0.5 and odds[p.id][2] >= 0.5]
    assert 0 < len(untouched) < 40
    for pair in untouched:
        assert pair.captions == plain[pair.id].captions and pair.metadata == plain[pair.id].metadata
        assert pair.modified.read_bytes() == plain[pair.id].modified.read_bytes()
    assert {p.category for p in varied} - set(CHANGE_TYPES) == {TWO_CHANGES, NONE_NOISY}


def test_two_change_pairs_are_read_back_as_both_changes(tmp_path):
    from idc_engine.metrics.change_reading import truth_changes

    config = ShapesChangeConfig(two_change_share=1.0, change_types=("color", "add", "drop", "move"))
    pairs = read_manifest(generate(tmp_path, train=30, test=0, config=config))
    assert {p.category for p in pairs} == {TWO_CHANGES}
    for pair in pairs:
        words = pair.metadata["changes"]
        assert len(words) == 2 and len(pair.captions) >= 5 and len(set(pair.captions)) == len(pair.captions)
        truth = truth_changes(pair)
        assert {(c.change, c.color, c.shape, c.new_color) for c in truth} == {
            (w["type"], w["color"], w["shape"], w["new_color"]) for w in words
        }
        assert all(truth_changes(IDCPair(pair.id, "r", "m", [c])) == truth for c in pair.captions)
        # Each kind of object stays unique across both images, so a caption names one object only.
        kinds = [(o["color"], o["shape"]) for o in pair.metadata["objects_modified"]]
        assert len(set(kinds)) == len(kinds)
        # Both changed objects' boxes are kept; the first change's are in "boxes" as for one change.
        assert pair.metadata["boxes"] == pair.metadata["boxes_all"][0] and len(pair.metadata["boxes_all"]) == 2


def test_strong_noise_changes_many_pixels_a_lot_where_nothing_changed(tmp_path):
    config = ShapesChangeConfig(none_share=1.0, strong_noise_share=1.0)
    pairs = read_manifest(generate(tmp_path, train=12, test=0, config=config))
    assert {p.category for p in pairs} == {NONE_NOISY}
    assert all(p.captions[0] == "there is no change" and "strong: shift" in p.metadata["noise"] for p in pairs)
    # Mild noise stays under 80 on all but 1 % of pixels (see above); strong noise does not.
    assert max((_diff(p) > 80).mean() for p in pairs) > 0.01


def test_none_share_sets_the_share_of_unchanged_pairs(tmp_path):
    pairs = read_manifest(generate(tmp_path, train=200, test=0, config=ShapesChangeConfig(none_share=0.5)))
    share = sum(p.category == "none" for p in pairs) / len(pairs)
    assert 0.4 < share < 0.6


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"two_change_share": 1.5}, "two_change_share must be a share in \\[0, 1\\], got 1.5"),
        ({"strong_noise_share": -0.1}, "strong_noise_share must be a share"),
        ({"none_share": 0.3, "change_types": ("color",)}, "none_share 0.3 needs 'none' in change_types"),
        ({"two_change_share": 0.2, "change_types": ("none",)}, "two_change_share needs a change type"),
    ],
)
def test_bad_new_options_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ShapesChangeConfig(**kwargs)
