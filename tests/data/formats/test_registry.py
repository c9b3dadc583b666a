import json
from pathlib import Path

import pytest

import idc_engine.data.formats as formats
from idc_engine.data.formats import FORMATS, ImportResult, format_options, read_format
from idc_engine.data.pair import IDCPair


def test_every_documented_format_is_registered():
    assert list(FORMATS) == ["spot-the-diff", "ier", "clevr-change", "clevr-dc", "syned", "magicbrush", "image-folders"]


def test_unknown_format_name_is_rejected_naming_the_argument_and_value(tmp_path):
    with pytest.raises(ValueError, match=r"format name must be one of spot-the-diff, .*image-folders, got 'coco'"):
        read_format("coco", tmp_path, tmp_path)


def test_unknown_option_is_rejected_naming_the_valid_ones(tmp_path):
    with pytest.raises(ValueError, match=r"options for format 'ier' must be among split, .*; got unknown 'pattern'"):
        read_format("ier", tmp_path, tmp_path, pattern="{uid}.png")


def test_names_are_matched_case_and_underscore_insensitively(tmp_path):
    (tmp_path / "test.json").write_text(json.dumps([{"img_id": "1", "sentences": ["a van left"]}]))
    result = read_format("Spot_The_Diff", tmp_path, tmp_path, check_images=False)
    assert [p.id for p in result.pairs] == ["1"]
    assert "merge_repeats" in format_options("spot-the-diff")


def test_summary_counts_pairs_per_split_and_lists_examples():
    pair = IDCPair("a", Path("a.png"), Path("b.png"), ["x"], "test")
    result = ImportResult(
        [pair], [("b", "reference image /x/b.png does not exist")], [("c", "no caption")], ["hi"], "ier"
    )
    assert result.summary() == (
        "ier: 1 pairs (train 0, validation 0, test 1); 1 missing images; 1 skipped records\n"
        "  missing b: reference image /x/b.png does not exist\n"
        "  skipped c: no caption\n"
        "  note: hi"
    )


def test_importers_never_import_fiftyone():
    sources = Path(formats.__file__).parent.glob("*.py")
    assert not [p.name for p in sources if "import fiftyone" in p.read_text() or "from fiftyone" in p.read_text()]
