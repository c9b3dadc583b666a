import json

import pytest

from idc_engine.data.manifest import read_manifest, write_manifest
from idc_engine.data.pair import IDCPair
from idc_engine.errors import ManifestError


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def _record(**overrides):
    record = {"id": "p1", "reference": "a.png", "modified": "b.png", "captions": ["a cat appeared"], "split": "test"}
    record.update(overrides)
    return json.dumps(record)


def test_round_trip_keeps_every_field_and_relative_paths(tmp_path):
    pairs = [
        IDCPair(
            "a",
            tmp_path / "img/a0.png",
            tmp_path / "img/a1.png",
            ["x was added", "x appeared"],
            "test",
            "add",
            {"boxes": {"modified": [0.1, 0.2, 0.3, 0.4]}},
        ),
        IDCPair("b", tmp_path / "img/b0.png", tmp_path / "img/b1.png", ["no change"], "train"),
    ]
    path = write_manifest(pairs, tmp_path / "m.jsonl")
    assert '"img/a0.png"' in path.read_text()
    again = read_manifest(path)
    assert again == pairs


def test_bad_json_is_reported_with_its_line_number(tmp_path):
    path = _write(tmp_path / "m.jsonl", [_record(), "{not json"])
    with pytest.raises(ManifestError, match=r"m\.jsonl:2: not valid JSON"):
        read_manifest(path)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (json.dumps({"id": "p", "reference": "a", "captions": ["c"]}), r":1: field 'modified': missing"),
        (_record(captions=None), r":1: field 'captions': must be a non-empty list of strings, or \[\] for a pair"),
        (_record(captions=["ok", ""]), r":1: field 'captions': caption 1 must be a non-empty string"),
        (_record(split="dev"), r":1: field 'split': must be one of train, validation, test, unlabeled, got 'dev'"),
        (_record(reference=""), r":1: field 'reference': must be a non-empty path string"),
        (_record(colour="red"), r":1: field 'colour': unknown field"),
        (_record(metadata=[1]), r":1: field 'metadata': must be an object"),
        ("[1, 2]", r":1: expected a JSON object, got list"),
    ],
)
def test_invalid_fields_name_the_field_and_problem(tmp_path, line, message):
    path = _write(tmp_path / "m.jsonl", [line])
    with pytest.raises(ManifestError, match=message):
        read_manifest(path)


def test_duplicate_ids_name_both_lines(tmp_path):
    path = _write(tmp_path / "m.jsonl", [_record(), "", _record()])
    with pytest.raises(ManifestError, match=r":3: field 'id': duplicate id 'p1', first seen on line 1"):
        read_manifest(path)


def test_failed_write_keeps_the_previous_manifest(tmp_path):
    good = [IDCPair("a", tmp_path / "a0.png", tmp_path / "a1.png", ["c"])]
    path = write_manifest(good, tmp_path / "m.jsonl")
    before = path.read_text()
    with pytest.raises(ValueError, match="duplicate id 'a'"):
        write_manifest(good + good, path)
    assert path.read_text() == before
    assert list(tmp_path.glob(".m.jsonl.*")) == []


def test_pair_validation_names_the_pair():
    with pytest.raises(ValueError, match=r"pair 'x': split: must be one of"):
        IDCPair("x", "a.png", "b.png", ["c"], split="holdout")


def test_a_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + (_record(id="first") + "\n" + _record(id="second") + "\n").encode())
    assert [p.id for p in read_manifest(path)] == ["first", "second"]


def test_bytes_that_are_not_utf8_name_the_file_and_line(tmp_path):
    path = tmp_path / "m.jsonl"
    second = json.dumps({**json.loads(_record()), "captions": ["la voiture a changé"]}, ensure_ascii=False)
    latin1 = _record(id="ok") + "\n" + second + "\n"
    path.write_bytes(latin1.encode("latin-1"))
    with pytest.raises(ManifestError, match=r"m\.jsonl:2: not UTF-8 text \(byte 0xe9 at column \d+\)"):
        read_manifest(path)


@pytest.mark.parametrize("captions", ["omitted", []])
def test_a_row_without_captions_is_a_pair_without_references(tmp_path, captions):
    record = {"id": "p1", "reference": "a.png", "modified": "b.png"}
    if captions != "omitted":
        record["captions"] = captions
    path = _write(tmp_path / "m.jsonl", [json.dumps(record), _record(id="p2", split="validation", captions=[])])
    pair, described_later = read_manifest(path)
    assert pair.captions == [] and not pair.has_references
    assert pair.split == "test"  # to be captioned and reviewed, not trained on
    assert described_later.split == "validation"
    assert read_manifest(_write(tmp_path / "n.jsonl", [_record()]))[0].has_references


def test_pairs_without_references_round_trip(tmp_path):
    pairs = [
        IDCPair("new", tmp_path / "a0.png", tmp_path / "a1.png"),
        IDCPair("held", tmp_path / "b0.png", tmp_path / "b1.png", [], "train", None, {"reference_relpath": "b0.png"}),
        IDCPair("done", tmp_path / "c0.png", tmp_path / "c1.png", ["x left"]),
    ]
    assert [p.split for p in pairs] == ["test", "train", "train"]
    path = write_manifest(pairs, tmp_path / "m.jsonl")
    assert json.loads(path.read_text().splitlines()[0])["captions"] == []
    assert read_manifest(path) == pairs


def test_a_caption_that_is_present_must_still_be_text():
    with pytest.raises(ValueError, match=r"pair 'x': captions: caption 0 must be a non-empty string, got ' '"):
        IDCPair("x", "a.png", "b.png", [" "])
    with pytest.raises(ValueError, match=r"pair 'x': captions: must be a non-empty list of strings, or \[\]"):
        IDCPair("x", "a.png", "b.png", None)
