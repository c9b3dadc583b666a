import json
import shutil
from collections import Counter

import pytest

from idc_engine.data.formats import AnnotationError, read_format
from idc_engine.data.formats.spot_the_diff import read_spot_the_diff
from tests.data.formats import FIXTURES, requires_fixtures, write_images

SPOT = FIXTURES / "spot_the_diff"


@requires_fixtures
def test_counts_per_split_are_the_documented_entries_minus_captionless_ones():
    result = read_spot_the_diff(SPOT, "/nonexistent", check_images=False)
    # Documented entries: train 9524, val 1634, test 1404; 47 / 6 / 7 have only an empty sentence.
    assert result.split_counts() == {"train": 9477, "validation": 1628, "test": 1397}
    assert Counter(reason.split(" ")[0] for _, reason in result.skipped) == {"train": 47, "validation": 6, "test": 7}
    assert len({p.id for p in result.pairs}) == len(result.pairs)
    assert all(p.category is None for p in result.pairs)


@requires_fixtures
def test_repeated_img_ids_get_deterministic_suffixes_and_keep_the_original_id():
    result = read_spot_the_diff(SPOT, "/nonexistent", check_images=False)
    by_id = {p.id: p for p in result.pairs}
    # img_id 126 has three train entries (three annotation rounds of one image pair).
    rounds = [by_id["126"], by_id["126-2"], by_id["126-3"]]
    assert [p.metadata["occurrence"] for p in rounds] == [1, 2, 3]
    assert {p.metadata["img_id"] for p in rounds} == {"126"}
    assert all(p.metadata["occurrences"] == 3 for p in rounds)
    assert rounds[0].captions == ["there are now five vehicles on the street headed toward the camera"]
    assert len({p.reference for p in rounds}) == 1
    assert "1233 entries repeat an img_id" in result.notes[0]
    again = read_spot_the_diff(SPOT, "/nonexistent", check_images=False)
    assert [p.id for p in again.pairs] == [p.id for p in result.pairs]


@requires_fixtures
def test_merge_repeats_gives_one_pair_per_img_id_with_every_sentence():
    result = read_spot_the_diff(SPOT, "/nonexistent", check_images=False, merge_repeats=True)
    # Unique ids: train 8566, val 1493, test 1270, minus those whose every round is empty.
    assert result.split_counts() == {"train": 8529, "validation": 1489, "test": 1263}
    merged = {p.id: p for p in result.pairs}["126"]
    assert len(merged.metadata["merged_entries"]) == 3
    raw = [e for e in json.loads((SPOT / "train.json").read_text()) if e["img_id"] == "126"]
    assert merged.captions == [s for e in raw for s in e["sentences"]]


@requires_fixtures
def test_empty_sentences_and_list_numbering_are_dropped_and_empty_entries_skipped():
    result = read_spot_the_diff(SPOT / "train.json", "/nonexistent", check_images=False)
    pair = {p.id: p for p in result.pairs}["1266"]
    # Source: ['1', '1 person in the first pic ...', '2', '1 person in first pic 4 diff people in 2nd pic']
    assert pair.captions == [
        "1 person in the first pic outside near a car not present in 2nd pic",
        "1 person in first pic 4 diff people in 2nd pic",
    ]
    assert pair.metadata["dropped_captions"] == 2
    assert ("3", "train pair has no usable caption (1 given, none with a letter)") in result.skipped
    assert all(c.strip() and any(ch.isalpha() for ch in c) for p in result.pairs for c in p.captions)


@requires_fixtures
def test_missing_images_are_counted_per_pair_not_fatal(tmp_path):
    entries = json.loads((SPOT / "val.json").read_text())
    chosen = list(dict.fromkeys(e["img_id"] for e in entries))[:40]
    write_images(p for i in chosen for p in (tmp_path / f"{i}.png", tmp_path / f"{i}_2.png"))
    (tmp_path / f"{chosen[-1]}_2.png").unlink()  # one pair lacks only its modified image
    result = read_spot_the_diff(SPOT / "val.json", tmp_path)
    usable = [e for e in entries if any(any(ch.isalpha() for ch in s) for s in e["sentences"])]
    expected = sum(1 for e in usable if e["img_id"] in chosen[:-1])
    assert len(result.pairs) == expected
    assert len(result.missing) == len(usable) - expected
    assert result.split_counts()["validation"] == expected
    lone = [problem for pid, problem in result.missing if pid == chosen[-1]]
    assert lone == [f"modified image {tmp_path / chosen[-1]}_2.png or {tmp_path / chosen[-1]}_2.jpg does not exist"]


def test_jpg_copies_are_found_when_png_is_absent(tmp_path):
    (tmp_path / "train.json").write_text(json.dumps([{"img_id": "7", "sentences": ["a car left"]}]))
    write_images([tmp_path / "img" / "7.jpg", tmp_path / "img" / "7_2.jpg"])
    [pair] = read_spot_the_diff(tmp_path, tmp_path / "img").pairs
    assert (pair.reference.name, pair.modified.name) == ("7.jpg", "7_2.jpg")


def test_patterns_can_point_to_separate_before_and_after_folders(tmp_path):
    (tmp_path / "test.json").write_text(json.dumps([{"img_id": "7", "sentences": ["a car left"]}]))
    write_images([tmp_path / "before" / "7.png", tmp_path / "after" / "7.png"])
    result = read_format(
        "spot-the-diff", tmp_path, tmp_path, reference_pattern="before/{img_id}", modified_pattern="after/{img_id}"
    )
    assert result.pairs[0].modified == tmp_path / "after" / "7.png"
    assert result.notes == [f"{tmp_path} lacks train.json, val.json; those splits were not read"]


@requires_fixtures
def test_clip4idc_coco_reference_file_is_grouped_per_image_as_test():
    result = read_spot_the_diff(SPOT / "spot_total_change_captions_reformat.json", "/nonexistent", check_images=False)
    # 1270 unique image ids, 7 of them with only an empty caption.
    assert result.split_counts() == {"train": 0, "validation": 0, "test": 1263}
    assert len(result.skipped) == 7
    assert {p.id: p for p in result.pairs}["256"].captions[:2] == [
        "person with umbrella is gone",
        "person with red coat is moved",
    ]


@requires_fixtures
def test_a_single_file_whose_name_has_no_split_needs_the_split_option(tmp_path):
    shutil.copy(SPOT / "test.json", tmp_path / "annotations.json")
    with pytest.raises(ValueError, match=r"cannot tell the split of annotations\.json; pass split="):
        read_spot_the_diff(tmp_path / "annotations.json", tmp_path)
    result = read_spot_the_diff(tmp_path / "annotations.json", tmp_path, split="test", check_images=False)
    assert result.split_counts()["test"] == 1397


def test_malformed_entries_are_skipped_with_their_position(tmp_path):
    records = [{"img_id": "1"}, 5, {"img_id": " ", "sentences": ["x"]}, {"img_id": 2, "sentences": "a car left"}]
    (tmp_path / "train.json").write_text(json.dumps(records))
    result = read_spot_the_diff(tmp_path / "train.json", tmp_path, check_images=False)
    assert [p.id for p in result.pairs] == ["2"]
    assert result.pairs[0].captions == ["a car left"]
    assert result.skipped == [
        ("train.json[0]", "entry lacks 'img_id' or 'sentences'"),
        ("train.json[1]", "entry lacks 'img_id' or 'sentences'"),
        ("train.json[2]", "empty img_id ' '"),
    ]


def test_unreadable_or_absent_annotations_raise_naming_the_file(tmp_path):
    (tmp_path / "val.json").write_text('[{"img_id": "1", ')
    with pytest.raises(AnnotationError, match=r"val\.json: not valid JSON"):
        read_spot_the_diff(tmp_path, tmp_path)
    with pytest.raises(FileNotFoundError, match=r"nope\.json does not exist"):
        read_spot_the_diff(tmp_path / "nope.json", tmp_path)
    (tmp_path / "val.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"holds none of train\.json, val\.json, test\.json"):
        read_spot_the_diff(tmp_path, tmp_path)
    (tmp_path / "test.json").write_text('{"a": 1}')
    with pytest.raises(AnnotationError, match=r"test\.json: expected an 'annotations' list"):
        read_spot_the_diff(tmp_path, tmp_path)


def test_a_pattern_with_an_unknown_field_fails_before_reading(tmp_path):
    with pytest.raises(ValueError, match=r"reference_pattern must be a pattern using only \{img_id\}, got '\{uid\}'"):
        read_spot_the_diff(tmp_path / "absent", tmp_path, reference_pattern="{uid}")
