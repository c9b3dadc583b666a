import json
import shutil
from pathlib import Path

import pytest

from idc_engine.data.formats import AnnotationError, read_format
from idc_engine.data.formats.syned import read_syned
from tests.data.formats import FIXTURES, requires_fixtures, write_images

SYNED = FIXTURES / "syned_blip2idc"


@pytest.fixture(scope="module")
def syned():
    return read_syned(SYNED, "/nonexistent", check_images=False)


@requires_fixtures
def test_counts_per_split_follow_splits_json_and_the_test_file(syned):
    assert syned.split_counts() == {"train": 3050, "validation": 539, "test": 2022}
    assert syned.skipped == [] and syned.missing == []
    assert {p.metadata["emu_edit_split"] for p in syned.pairs if p.split == "test"} == {"validation"}


@requires_fixtures
def test_idx_restarting_in_each_file_gives_distinct_ids_and_image_paths(syned):
    by_id = {p.id: p for p in syned.pairs}
    train0, test0 = by_id["train-0"], by_id["test-0"]
    assert train0.reference == Path("/nonexistent/train/0_image.png")
    assert test0.modified == Path("/nonexistent/test/0_edited.png")
    assert len(by_id) == 5611


@requires_fixtures
def test_extra_space_after_separator_and_trailing_spaces_are_stripped(syned):
    by_id = {p.id: p for p in syned.pairs}
    # "0 <INSTRUCT>  Make the sky night instead of day" (two spaces after the separator)
    assert by_id["train-0"].captions == ["Make the sky night instead of day"]
    assert all(c == c.strip() for p in syned.pairs for c in p.captions)


@requires_fixtures
def test_paraphrase_keys_with_trailing_space_are_matched_and_follow_the_instruction(syned):
    test0 = {p.id: p for p in syned.pairs}["test-0"]
    assert test0.captions == [
        "Aadd a goat outside the fence looking at the cows.",
        "Add a goat peeking over the fence",
        "Place a curious goat near the fence",
        "Position a goat on the other side of the fence",
        "Have a goat lean against the fence, casually looking in the direction of the cows.",
    ]
    assert test0.metadata["paraphrases"] == 4


@requires_fixtures
def test_empty_paraphrase_lists_leave_the_instruction_alone(syned):
    pair = {p.id: p for p in syned.pairs}["test-1228"]
    assert pair.captions == ["Delete the person who is holding a cup at the table."]
    assert pair.metadata["paraphrases"] == 0


@requires_fixtures
def test_wrapping_quotes_are_removed_and_llm_junk_is_dropped(syned):
    test = [p for p in syned.pairs if p.split == "test"]
    assert not any(c.startswith('"') or c.endswith('"') for p in test for c in p.captions[1:])
    by_id = {p.id: p for p in test}
    assert "{Dadaist variation}" not in by_id["test-1051"].captions
    assert by_id["test-1051"].metadata["dropped_paraphrases"] == 4
    assert by_id["test-1244"].captions == [by_id["test-1244"].metadata["instruction"]]
    # 8031 paraphrases: 43 refusals/preambles/labels, 2 empty strings, one bare "4." dropped.
    assert sum(p.metadata.get("dropped_paraphrases", 0) for p in test) == 46
    assert sum(len(p.captions) for p in test) == 2022 + 8031 - 46
    kept = read_syned(SYNED, "/nonexistent", check_images=False, filter_llm_junk=False)
    assert sum(p.metadata.get("dropped_paraphrases", 0) for p in kept.pairs) == 3


@requires_fixtures
def test_paraphrases_can_be_turned_off():
    result = read_syned(SYNED, "/nonexistent", check_images=False, paraphrases=False)
    assert all(len(p.captions) == 1 for p in result.pairs)


@requires_fixtures
def test_missing_images_are_counted_with_exact_totals(tmp_path):
    write_images(tmp_path / "test" / f"{i}_{kind}.png" for i in range(25) for kind in ("image", "edited"))
    write_images([tmp_path / "train" / "0_image.png"])
    result = read_format("syned", SYNED / "splits.json", tmp_path)
    assert [p.id for p in sorted(result.pairs, key=lambda p: p.metadata["idx"])] == [f"test-{i}" for i in range(25)]
    assert len(result.missing) == 5611 - 25
    assert dict(result.missing)["train-0"] == f"modified image {tmp_path / 'train' / '0_edited.png'} does not exist"


@requires_fixtures
def test_categories_come_from_a_caller_mapping(tmp_path):
    mapping = {"test": {"0": "Add", "102": "Local"}, "train": {"180": "Style"}}
    (tmp_path / "tasks.json").write_text(json.dumps(mapping))
    result = read_syned(SYNED, "/nonexistent", check_images=False, categories=tmp_path / "tasks.json")
    by_id = {p.id: p for p in result.pairs}
    assert (by_id["test-0"].category, by_id["test-102"].category, by_id["train-180"].category) == (
        "add",
        "local",
        "style",
    )
    assert sum(1 for p in result.pairs if p.category is not None) == 3


@requires_fixtures
def test_without_splits_json_every_train_file_row_is_train(tmp_path):
    shutil.copy(SYNED / "instructions_with_idx_train_split.txt", tmp_path)
    result = read_syned(tmp_path, tmp_path, check_images=False)
    assert result.split_counts() == {"train": 3589, "validation": 0, "test": 0}
    assert result.notes == [
        "instructions_with_idx_test_split.txt is absent; its rows were not read",
        "no splits.json: every row of the train file is train",
        "no gt_augmented_test_clean.json: test pairs have only their instruction",
    ]


def test_malformed_lines_are_skipped_with_their_line_number(tmp_path):
    lines = [
        "0 <INSTRUCT> Add a cat.",
        "no separator here",
        "x <INSTRUCT> Add a dog.",
        "",
        "3 <INSTRUCT>  ",
        "0 <INSTRUCT> again",
    ]
    (tmp_path / "instructions_with_idx_test_split.txt").write_text("\n".join(lines) + "\n")
    result = read_syned(tmp_path, tmp_path, check_images=False)
    assert [(p.id, p.captions) for p in result.pairs] == [("test-0", ["Add a cat."]), ("test-0-2", ["again"])]
    assert result.skipped == [
        ("instructions_with_idx_test_split.txt:2", "line has no <INSTRUCT> separator"),
        ("instructions_with_idx_test_split.txt:3", "idx 'x' is not a number"),
        ("test-3", "test pair has no usable caption (1 given, none with a letter)"),
    ]


def test_absent_files_and_bad_json_raise_naming_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"holds neither instructions_with_idx_train_split\.txt nor"):
        read_syned(tmp_path, tmp_path)
    (tmp_path / "instructions_with_idx_test_split.txt").write_text("0 <INSTRUCT> Add a cat.\n")
    (tmp_path / "gt_augmented_test_clean.json").write_text('{"0 ": [')
    with pytest.raises(AnnotationError, match=r"gt_augmented_test_clean\.json: not valid JSON"):
        read_syned(tmp_path, tmp_path)
    with pytest.raises(FileNotFoundError, match=r"Syned annotation folder .*nowhere does not exist"):
        read_syned(tmp_path / "nowhere", tmp_path)


def test_malformed_categories_are_rejected_naming_the_option(tmp_path):
    (tmp_path / "instructions_with_idx_test_split.txt").write_text("0 <INSTRUCT> Add a cat.\n")
    with pytest.raises(ValueError, match=r"categories must map 'train' and/or 'test' to \{idx: task\}, got key 'val'"):
        read_syned(tmp_path, tmp_path, categories={"val": {0: "add"}})
    with pytest.raises(ValueError, match=r"got idx 'zero' under 'test'"):
        read_syned(tmp_path, tmp_path, categories={"test": {"zero": "add"}})
