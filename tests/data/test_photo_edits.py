import numpy as np
import pytest
from PIL import Image

from idc_engine.data.loading import load_pair
from idc_engine.data.manifest import read_manifest
from idc_engine.data.photo_edits import (
    CATEGORIES,
    GRID,
    PHOTO_SPLITS,
    PHOTOS,
    PhotoEditsConfig,
    caption_corpus,
    generate,
    load_photo,
    photo_path,
)
from idc_engine.metrics.photo_reading import read_edit, truth
from idc_engine.synth.procedural import NAMED_COLORS, POSITIONS


@pytest.fixture(scope="module")
def photo_pairs(tmp_path_factory):
    out = tmp_path_factory.mktemp("photo-edits")
    return read_manifest(generate(out, train=45, test=36, validation=9))


def _changed(pair, step=32):
    reference, modified = load_pair(pair)
    return np.abs(np.asarray(reference, dtype=int) - np.asarray(modified, dtype=int)).max(axis=2) > step


def test_same_seed_same_pairs_whatever_the_count_or_the_workers(tmp_path):
    a = read_manifest(generate(tmp_path / "a", train=5, test=3, validation=2))
    b = read_manifest(generate(tmp_path / "b", train=3, test=3, workers=2))
    for name in ("train-000002", "test-000002"):
        pa, pb = next(p for p in a if p.id == name), next(p for p in b if p.id == name)
        assert pa.captions == pb.captions and pa.metadata == pb.metadata
        assert pa.reference.read_bytes() == pb.reference.read_bytes()
        assert pa.modified.read_bytes() == pb.modified.read_bytes()
    c = read_manifest(generate(tmp_path / "c", train=5, test=3, config=PhotoEditsConfig(seed=1)))
    assert [p.metadata for p in c] != [p.metadata for p in a if p.split != "validation"]


def test_whole_photographs_are_held_out(photo_pairs):
    splits = {split: set(names) for split, names in PHOTO_SPLITS.items()}
    assert not splits["test"] & (splits["train"] | splits["validation"])
    assert not splits["validation"] & splits["train"]
    assert set().union(*splits.values()) <= set(PHOTOS)
    for pair in photo_pairs:
        assert pair.metadata["photo"] in splits[pair.split]
    # Every held-out split's photograph is used; and none of them is a copy of a training photograph.
    for split in ("validation", "test"):
        assert {p.metadata["photo"] for p in photo_pairs if p.split == split} == splits[split]

    def thumbnail(name):
        return np.asarray(load_photo(name).convert("L").resize((32, 32)), dtype=float).ravel()

    for held_out in splits["test"] | splits["validation"]:
        for seen in splits["train"]:
            correlation = np.corrcoef(thumbnail(held_out), thumbnail(seen))[0, 1]
            assert correlation < 0.9, (held_out, seen)


def test_every_pair_has_five_different_captions_that_read_back_as_its_edit(photo_pairs):
    assert {p.category for p in photo_pairs} == set(CATEGORIES)
    for pair in photo_pairs:
        assert len(pair.captions) >= 5 and len(set(pair.captions)) == len(pair.captions)
        assert pair.category == pair.metadata["edit"]["kind"]
        assert all(read_edit(c) == truth(pair) for c in pair.captions), pair.captions


def test_captions_agree_with_the_pixels(photo_pairs):
    for pair in photo_pairs:
        edit, changed = pair.metadata["edit"], _changed(pair)
        if edit["kind"] == "none":  # re-encoding and resizing move few pixels far (fine textures a little)
            assert _changed(pair, step=64).mean() < 0.02, pair.id
            continue
        assert changed.mean() > 0.01, pair.id  # every edit is visible
        if edit["kind"] in ("style", "global", "background"):
            continue
        # The pixels changed inside the edit's box, and the box lies in the place named.
        reference, modified = (np.asarray(i, dtype=float) for i in load_pair(pair))
        difference = np.abs(reference - modified).max(axis=2)
        x, y, bw, bh = pair.metadata["boxes"]["modified"]
        h, w = difference.shape
        inside = np.zeros_like(difference, dtype=bool)
        inside[int(y * h) : int(np.ceil((y + bh) * h)), int(x * w) : int(np.ceil((x + bw) * w))] = True
        strong = difference > 64  # re-encoding and resizing rarely move a pixel this far; an edit does
        assert strong[inside].sum() >= 0.6 * strong.sum(), (pair.id, edit)
        column, row = (min(2, int(v * 3)) for v in (x + bw / 2, y + bh / 2))
        named = POSITIONS[edit["place"]]
        if edit["kind"] == "text":  # text spans the width: only its row is named
            assert row == named[1], (pair.id, edit, row)
        elif edit["kind"] == "add":
            assert (column, row) == named, (pair.id, edit)
        else:  # a region is placed by its centre of mass, its box may reach further
            assert abs(column - named[0]) <= 1 and abs(row - named[1]) <= 1, (pair.id, edit, (column, row))
        if edit["kind"] == "add":  # the added shape is of the colour named
            x, y, bw, bh = pair.metadata["boxes"]["modified"]
            _, modified = load_pair(pair)
            cx, cy = (x + bw / 2) * modified.width, (y + bh / 2) * modified.height
            center = np.asarray(modified.crop((int(cx) - 2, int(cy) - 2, int(cx) + 2, int(cy) + 2)), dtype=float)
            ref = np.array(NAMED_COLORS[edit["color"]], dtype=float)
            assert np.abs(center.reshape(-1, 3).mean(0) - ref).max() < 90, (pair.id, edit)


def test_places_of_region_edits_cover_the_grid(tmp_path):
    pairs = read_manifest(generate(tmp_path, train=0, test=60, config=PhotoEditsConfig(categories=("add",))))
    assert {p.metadata["edit"]["place"] for p in pairs if p.category == "add"} >= set(GRID) - {"center"}


def test_the_photographs_ship_with_installed_packages_and_name_their_licence():
    for name, photo in PHOTOS.items():
        assert photo_path(name).is_file() and photo.licence
        assert Image.open(photo_path(name)).size[0] >= 128


def test_the_caption_corpus_holds_every_reference(photo_pairs):
    corpus = set(caption_corpus())
    assert all(c in corpus for p in photo_pairs for c in p.captions)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"image_size": 16}, "image_size must be between 32 and 1024, got 16"),
        ({"unchanged_share": 1.0}, r"unchanged_share must be in \[0, 1\), got 1.0"),
        ({"categories": ("add", "paint")}, "categories must be a non-empty subset"),
        ({"crop_scale": (0.5, 0.2)}, r"crop_scale must be a range \(low, high\)"),
    ],
)
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PhotoEditsConfig(**kwargs)


def test_bad_counts_and_photos_are_named(tmp_path):
    with pytest.raises(ValueError, match="train must be a non-negative integer, got -1"):
        generate(tmp_path, train=-1, test=1)
    with pytest.raises(ValueError, match="workers must be a positive integer, got 0"):
        generate(tmp_path, train=1, test=1, workers=0)
    with pytest.raises(ValueError, match="photo must be one of"):
        photo_path("mona_lisa")
