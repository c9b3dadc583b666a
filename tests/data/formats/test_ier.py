import json

import pytest

from idc_engine.data.formats import AnnotationError, read_format
from idc_engine.data.formats.ier import read_ier
from tests.data.formats import FIXTURES, requires_fixtures, write_images

IER = FIXTURES / "ier"


@requires_fixtures
def test_counts_per_split_match_the_documented_entries():
    result = read_ier(IER, "/nonexistent", check_images=False)
    assert result.split_counts() == {"train": 3061, "validation": 383, "test": 495}
    assert result.skipped == []
    assert sum(len(p.captions) for p in result.pairs) == 3061 + 1149 + 1485
    sources = {p.metadata["source"] for p in result.pairs}
    assert sources == {"Reddit", "Zhopped"}


@requires_fixtures
def test_trailing_and_doubled_spaces_are_stripped_but_case_and_quotes_kept():
    by_id = {p.id: p for p in read_ier(IER, "/nonexistent", check_images=False).pairs}
    assert by_id["Zhopped_11"].captions == ["Making dark color"]  # source: "Making dark color "
    assert all(c == " ".join(c.split()) for p in by_id.values() for c in p.captions)
    # An unbalanced quote in a test request stays as the annotator wrote it.
    assert 'Add text "Pool Party' in [c for p in by_id.values() for c in p.captions]


@requires_fixtures
def test_repeated_image_pairs_under_different_uids_stay_separate_or_merge_on_request():
    by_id = {p.id: p for p in read_ier(IER, "/nonexistent", check_images=False).pairs}
    assert by_id["Zhopped_2"].metadata["image_pair_repeats"] == 3
    assert by_id["Zhopped_1519"].modified == by_id["Zhopped_2"].modified
    merged = read_ier(IER, "/nonexistent", check_images=False, merge_repeats=True)
    assert merged.split_counts() == {"train": 2507, "validation": 357, "test": 446}
    pair = {p.id: p for p in merged.pairs}["Zhopped_2"]
    assert pair.metadata["merged_uids"] == ["Zhopped_2", "Zhopped_1519", "Zhopped_2681"]
    assert pair.captions == [
        "change the back ground",
        "change the background on this image",
        "Change background to rainy setting",
    ]


@requires_fixtures
def test_image_pairs_shared_between_splits_are_reported_in_notes():
    result = read_ier(IER, "/nonexistent", check_images=False)
    assert result.notes == [
        "2 image pairs occur in both train and validation",
        "1 image pairs occur in both train and test",
        "55 image pairs occur in both validation and test",
    ]


@requires_fixtures
def test_missing_images_are_counted_with_exact_totals(tmp_path):
    records = json.loads((IER / "test.json").read_text())
    names = {n for r in records[:30] for n in (r["img0"], r["img1"])}
    write_images(tmp_path / n for n in names)
    result = read_ier(IER / "test.json", tmp_path)
    expected = sum(1 for r in records if r["img0"] in names and r["img1"] in names)
    assert expected >= 30
    assert len(result.pairs) == expected
    assert len(result.missing) == len(records) - expected
    pair_id, problem = result.missing[0]
    record = next(r for r in records if r["uid"] == pair_id)
    assert problem.startswith(f"reference image {tmp_path / record['img0']} does not exist")


def test_modified_images_can_live_in_another_folder(tmp_path):
    record = {"img0": "a.jpg", "img1": "b.png", "sents": ["brighten it "], "uid": "Reddit_1"}
    (tmp_path / "valid.json").write_text(json.dumps([record]))
    write_images([tmp_path / "orig" / "a.jpg", tmp_path / "edited" / "b.png"])
    result = read_format("ier", tmp_path / "valid.json", tmp_path / "orig", modified_dir=tmp_path / "edited")
    [pair] = result.pairs
    assert (pair.split, pair.modified, pair.captions) == ("validation", tmp_path / "edited" / "b.png", ["brighten it"])


def test_malformed_records_and_repeated_uids(tmp_path):
    good = {"img0": "a.jpg", "img1": "b.jpg", "sents": ["x y"], "uid": "Reddit_1"}
    records = [good, {"img0": "a.jpg"}, {**good, "uid": ""}, good, {**good, "sents": [" ", ""]}]
    (tmp_path / "train.json").write_text(json.dumps(records))
    result = read_ier(tmp_path, tmp_path, check_images=False)
    assert [p.id for p in result.pairs] == ["Reddit_1", "Reddit_1-2"]
    assert result.pairs[1].metadata["occurrence"] == 2
    assert result.skipped == [
        ("train.json[1]", "record lacks one of img0, img1, sents, uid"),
        ("train.json[2]", "img0, img1 and uid must be non-empty strings"),
        ("Reddit_1-3", "train pair has no usable caption (2 given, none with a letter)"),
    ]


def test_unreadable_annotations_raise_naming_the_file(tmp_path):
    (tmp_path / "test.json").write_text('{"img0": "a"}')
    with pytest.raises(AnnotationError, match=r"test\.json: expected a JSON list of records, got dict"):
        read_ier(tmp_path, tmp_path)
    with pytest.raises(FileNotFoundError, match=r"IER annotation file .*missing\.json does not exist"):
        read_ier(tmp_path / "missing.json", tmp_path)
