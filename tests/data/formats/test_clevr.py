"""CLEVR-Change and CLEVR-DC: real split and type files, caption files written by the tests.

The real caption files are 4 MiB or more and are not in the fixtures, so the tests write them in
the formats the RCC, DIRL and BLIP2IDC code read.
"""

import json
from collections import Counter

import pytest

from idc_engine.data.formats import AnnotationError, read_format
from idc_engine.data.formats.clevr_change import read_clevr_change, scene_key
from idc_engine.data.formats.clevr_dc import read_clevr_dc
from tests.data.formats import FIXTURES, requires_fixtures, write_images

CHANGE = FIXTURES / "clevr_change"
DC = FIXTURES / "clevr_dc"


@pytest.fixture(scope="module")
def rcc_captions(tmp_path_factory):
    """RCC-format caption dicts for every scene of the real splits.json."""
    folder = tmp_path_factory.mktemp("rcc_captions")
    scenes = [s for v in json.loads((CHANGE / "splits.json").read_text()).values() for s in v]
    change = {f"CLEVR_default_{s:06d}.png": [f"the object of scene {s} changed ", "something moved"] for s in scenes}
    no_change = {f"CLEVR_default_{s:06d}.png": ["nothing has changed", ""] for s in scenes}
    (folder / "change.json").write_text(json.dumps(change))
    (folder / "no_change.json").write_text(json.dumps(no_change))
    return folder


@requires_fixtures
def test_clevr_change_counts_per_split_double_the_scenes_with_distractor_pairs(rcc_captions):
    result = read_clevr_change(
        CHANGE,
        "/nonexistent",
        change_captions=rcc_captions / "change.json",
        no_change_captions=rcc_captions / "no_change.json",
        check_images=False,
    )
    assert result.split_counts() == {"train": 67660, "validation": 3976, "test": 7970}
    test = Counter(p.category for p in result.pairs if p.split == "test")
    assert test == {"color": 797, "material": 797, "add": 797, "drop": 797, "move": 797, "distractor": 3985}
    by_id = {p.id: p for p in result.pairs}
    change, distractor = by_id["016000"], by_id["016000_n"]
    assert (change.category, change.metadata["changed"]) == ("add", True)
    assert (distractor.category, distractor.metadata) == (
        "distractor",
        {"scene": 16000, "changed": False, "scene_change_type": "add", "dropped_captions": 1},
    )
    assert change.captions == ["the object of scene 16000 changed", "something moved"]
    assert distractor.captions == ["nothing has changed"]  # the empty second caption is dropped


@requires_fixtures
def test_clevr_change_missing_images_are_counted_exactly(tmp_path, rcc_captions):
    test_scenes = json.loads((CHANGE / "splits.json").read_text())["test"][:10]
    write_images(tmp_path / "images" / f"CLEVR_default_{s:06d}.png" for s in test_scenes)
    write_images(tmp_path / "sc_images" / f"CLEVR_semantic_{s:06d}.png" for s in test_scenes)
    write_images(tmp_path / "nsc_images" / f"CLEVR_nonsemantic_{s:06d}.png" for s in test_scenes[:4])
    result = read_format(
        "clevr-change",
        CHANGE / "splits.json",
        tmp_path,
        change_captions=rcc_captions / "change.json",
        no_change_captions=rcc_captions / "no_change.json",
    )
    assert len(result.pairs) == 14
    assert len(result.missing) == 2 * 39803 - 14
    assert {p.id for p in result.pairs} == {f"{s:06d}" for s in test_scenes} | {f"{s:06d}_n" for s in test_scenes[:4]}
    assert result.pairs[0].reference == tmp_path / "images" / f"CLEVR_default_{test_scenes[0]:06d}.png"
    problems = dict(result.missing)
    scene = test_scenes[5]
    assert problems[f"{scene:06d}_n"] == (
        f"modified image {tmp_path / 'nsc_images' / f'CLEVR_nonsemantic_{scene:06d}.png'} does not exist"
    )


def _small_release(folder, **captions):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "splits.json").write_text(json.dumps({"train": [3, 1], "val": [2], "test": [4]}))
    (folder / "type_mapping.json").write_text(
        json.dumps({"color": ["000001.png", "000002.png"], "move": ["000003.png"]})
    )
    for name, data in captions.items():
        (folder / f"{name}.json").write_text(json.dumps(data))
    return folder


def test_clevr_change_reads_the_coco_reformat_captions_found_next_to_splits(tmp_path):
    coco = {
        "type": "captions",
        "images": [{"id": "000001", "filename": "000001"}],
        "annotations": [
            {"image_id": "000001", "caption": "the small cube turned red", "id": 0},
            {"image_id": "000001_n", "caption": "no change was made", "id": 1},
            {"image_id": "000003.png", "caption": "the sphere moved", "id": 2},
            {"image_id": "CLEVR_default_000002.png", "caption": "the cylinder became blue", "id": 3},
            {"image_id": "scene-x", "caption": "??", "id": 4},
        ],
    }
    folder = _small_release(tmp_path / "data", total_change_captions_reformat=coco)
    result = read_clevr_change(folder, tmp_path, check_images=False)
    by_id = {p.id: p for p in result.pairs}
    assert sorted(by_id) == ["000001", "000001_n", "000002", "000003"]
    assert (by_id["000002"].split, by_id["000002"].category) == ("validation", "color")
    assert by_id["000003"].category == "move"
    assert by_id["000001_n"].captions == ["no change was made"]
    assert ("total_change_captions_reformat.json:scene-x", "key names no scene number") in result.skipped
    assert ("000003_n", "train pair: the no-change captions have no entry for scene 000003") in result.skipped
    assert ("000004", "test pair: the change captions have no entry for scene 000004") in result.skipped


def test_clevr_change_without_no_change_captions_makes_no_distractor_pairs(tmp_path):
    folder = _small_release(tmp_path, change_captions={"CLEVR_default_000001.png": ["a cube turned red"]})
    result = read_clevr_change(folder, tmp_path, check_images=False)
    assert [p.id for p in result.pairs] == ["000001"]
    assert "no no-change captions were given, so no distractor pairs were made" in result.notes
    only_change = read_clevr_change(
        folder, tmp_path, check_images=False, include_no_change=False, type_mapping=folder / "type_mapping.json"
    )
    assert [p.id for p in only_change.pairs] == ["000001"]


def test_clevr_change_image_folders_and_patterns_can_be_overridden(tmp_path):
    folder = _small_release(
        tmp_path / "data",
        change_captions={"1": ["a cube turned red"]},
        no_change_captions={"000001.png": ["nothing changed"]},
    )
    write_images([tmp_path / "a" / "1.png", tmp_path / "b" / "1.png", tmp_path / "c" / "1.png"])
    result = read_clevr_change(
        folder,
        tmp_path,
        default_dir="a",
        semantic_dir="b",
        nonsemantic_dir="c",
        default_pattern="{scene}.png",
        semantic_pattern="{scene}.png",
        nonsemantic_pattern="{scene}.png",
    )
    assert [(p.id, p.modified.parent.name) for p in result.pairs] == [("000001", "b"), ("000001_n", "c")]


def test_clevr_change_needs_captions_and_names_bad_files(tmp_path):
    folder = _small_release(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"no CLEVR-Change captions next to .*pass change_captions="):
        read_clevr_change(folder, tmp_path)
    (folder / "change_captions.json").write_text("{not json")
    with pytest.raises(AnnotationError, match=r"change_captions\.json: not valid JSON"):
        read_clevr_change(folder, tmp_path)
    with pytest.raises(FileNotFoundError, match=r"CLEVR-Change annotations .*elsewhere do not exist"):
        read_clevr_change(tmp_path / "elsewhere", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"CLEVR-Change splits file .*empty/splits\.json does not exist"):
        read_clevr_change(tmp_path / "empty", tmp_path)


def test_scene_keys_of_every_documented_spelling():
    assert scene_key("CLEVR_default_000017.png") == (17, False)
    assert scene_key("000017.png") == (17, False)
    assert scene_key("000017_n") == (17, True)
    assert scene_key(17) == (17, False)
    assert scene_key("17") == (17, False)
    assert scene_key("scene17") is None


@pytest.fixture(scope="module")
def dc_captions(tmp_path_factory):
    """captions.json in the raw hsgkim/clevr-dc shape: unpadded index -> captions."""
    path = tmp_path_factory.mktemp("dc") / "captions.json"
    path.write_text(json.dumps({str(i): [f"scene {i} changed"] for i in range(48000)}))
    return path


@requires_fixtures
def test_clevr_dc_counts_per_split_and_categories_by_8000_scene_block(dc_captions):
    result = read_clevr_dc(DC, "/nonexistent", captions=dc_captions, check_images=False)
    assert result.split_counts() == {"train": 40800, "validation": 2400, "test": 4800}
    test = Counter(p.category for p in result.pairs if p.split == "test")
    assert test == {c: 800 for c in ("color", "material", "add", "drop", "move", "distractor")}
    by_id = {p.id: p for p in result.pairs}
    assert (by_id["47999"].category, by_id["47999"].metadata["changed"]) == ("distractor", False)
    assert by_id["7200"].category == "color"
    plain = read_clevr_dc(DC / "split.json", "/nonexistent", captions=dc_captions, check_images=False, actions=None)
    assert {p.category for p in plain.pairs} == {None}


@requires_fixtures
def test_clevr_dc_finds_unpadded_or_padded_images_and_counts_the_rest_missing(tmp_path, dc_captions):
    write_images([tmp_path / "bef" / "7200.png", tmp_path / "aft" / "7200.png"])
    write_images([tmp_path / "bef" / "007201.png", tmp_path / "aft" / "007201.png"])
    write_images([tmp_path / "bef" / "7202.png"])
    result = read_format("clevr-dc", DC, tmp_path, captions=dc_captions)
    assert [(p.id, p.reference.name) for p in result.pairs] == [("7200", "7200.png"), ("7201", "007201.png")]
    assert len(result.missing) == 48000 - 2
    problem = dict(result.missing)["7202"]
    assert (
        problem == f"modified image {tmp_path / 'aft' / '7202.png'} or {tmp_path / 'aft' / '007202.png'} does not exist"
    )


def test_clevr_dc_reads_dirl_renamed_keys_and_skips_uncaptioned_scenes(tmp_path):
    (tmp_path / "split.json").write_text(json.dumps({"train": [0, 1], "test": [40000]}))
    (tmp_path / "captions.json").write_text(json.dumps({"000000.png": ["a ball turned green"], "040000.png": "same"}))
    result = read_clevr_dc(tmp_path, tmp_path, check_images=False)
    assert [(p.id, p.split, p.category) for p in result.pairs] == [
        ("0", "train", "color"),
        ("40000", "test", "distractor"),
    ]
    assert result.skipped == [("1", "train pair: captions.json has no entry for index 1")]


def test_clevr_dc_needs_its_captions_file(tmp_path):
    (tmp_path / "split.json").write_text(json.dumps({"train": [0]}))
    with pytest.raises(FileNotFoundError, match=r"CLEVR-DC captions .*captions\.json do not exist; pass captions="):
        read_clevr_dc(tmp_path, tmp_path)


def test_clevr_patterns_with_unknown_fields_fail_before_reading(tmp_path):
    with pytest.raises(ValueError, match=r"semantic_pattern must be a pattern using only \{scene\}"):
        read_clevr_change(tmp_path, tmp_path, semantic_pattern="{index}.png")
    with pytest.raises(ValueError, match=r"modified_patterns must be a pattern using only \{index\}"):
        read_clevr_dc(tmp_path, tmp_path, modified_patterns="aft/{scene}.png")
