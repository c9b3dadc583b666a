"""MagicBrush: rows as the HF parquet holds them (images embedded as bytes), no real parquet file.

The row logic is tested on plain dicts; the parquet round trip needs pyarrow, which the engine
does not depend on, so that one test is skipped where pyarrow is absent.
"""

import io
from pathlib import Path

import pytest
from PIL import Image

from idc_engine.data.formats import read_format
from idc_engine.data.formats._common import PairCollector
from idc_engine.data.formats.magicbrush import add_rows, read_magicbrush
from tests.data.formats import png_bytes


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 10)).save(buffer, format="JPEG")
    return buffer.getvalue()


def _row(img_id="327726", turn=1, instruction="put a hat on the dog", **images):
    row = {
        "img_id": img_id,
        "turn_index": turn,
        "source_img": {"bytes": png_bytes(), "path": None},
        "mask_img": {"bytes": png_bytes((255, 255, 255)), "path": None},
        "instruction": instruction,
        "target_img": {"bytes": _jpeg(), "path": None},
    }
    row.update(images)
    return row


def _import(rows, images_dir, **options):
    collector = PairCollector("magicbrush")
    add_rows(collector, rows, Path("train-00000-of-00001.parquet"), "train", images_dir, **options)
    return collector.result


def test_embedded_images_are_written_with_the_suffix_their_bytes_reveal(tmp_path):
    result = _import([_row(), _row(turn=2, instruction=" make it red ")], tmp_path)
    first, second = result.pairs
    assert (first.id, second.id) == ("327726-1", "327726-2")
    assert first.reference == tmp_path / "327726-1-source.png"
    assert first.modified == tmp_path / "327726-1-target.jpg"
    assert first.reference.read_bytes() == png_bytes()
    assert first.metadata == {"img_id": "327726", "turn_index": 1, "mask": str(tmp_path / "327726-1-mask.png")}
    assert second.captions == ["make it red"]
    assert (first.split, first.category) == ("train", None)


def test_raw_bytes_and_existing_paths_work_and_existing_files_are_kept(tmp_path):
    (tmp_path / "shared.png").write_bytes(png_bytes())
    row = _row(source_img=png_bytes(), target_img={"bytes": None, "path": "shared.png"})
    collector = PairCollector("magicbrush")
    add_rows(collector, [row], tmp_path / "dev.parquet", "validation", tmp_path / "out", write_masks=False)
    [pair] = collector.result.pairs
    assert pair.modified == tmp_path / "shared.png"
    assert "mask" not in pair.metadata and not (tmp_path / "out" / "327726-1-mask.png").exists()
    pair.reference.write_bytes(b"kept")
    add_rows(collector, [row], tmp_path / "dev.parquet", "validation", tmp_path / "out", write_masks=False)
    assert pair.reference.read_bytes() == b"kept"


def test_rows_without_images_are_missing_and_rows_without_instruction_skipped(tmp_path):
    rows = [
        _row(img_id="1", source_img={"bytes": None, "path": None}),
        _row(img_id="2", target_img={"bytes": b"not an image", "path": None}),
        _row(img_id="3", instruction="  "),
        {"img_id": "4", "turn_index": 1},
        _row(img_id="5", turn="one"),
    ]
    result = _import(rows, tmp_path)
    assert result.pairs == []
    assert result.missing == [
        ("1-1", "reference image: 1-1-source has no embedded bytes"),
        ("2-1", "modified image: embedded bytes for 2-1-target are not a known image format"),
    ]
    assert result.skipped == [
        ("3-1", "train pair has no usable caption (instruction '  ')"),
        ("train-00000-of-00001.parquet[3]", "row lacks source_img, mask_img, instruction, target_img"),
        ("train-00000-of-00001.parquet[4]", "bad img_id '5' or turn_index 'one'"),
    ]
    assert not (tmp_path / "3-1-source.png").exists()


def test_repeated_turns_get_suffixed_ids(tmp_path):
    result = _import([_row(), _row()], tmp_path)
    assert [p.id for p in result.pairs] == ["327726-1", "327726-1-2"]
    assert result.pairs[1].metadata["source_id"] == "327726-1"
    assert result.pairs[1].reference == tmp_path / "327726-1-2-source.png"


def test_split_comes_from_the_file_name_or_the_option(tmp_path):
    (tmp_path / "shard.parquet").write_bytes(b"PAR1")
    with pytest.raises(ValueError, match=r"cannot tell the split of shard\.parquet; pass split="):
        read_magicbrush(tmp_path, tmp_path / "images")
    with pytest.raises(ValueError, match=r"magicbrush: split must be one of .*got 'holdout'"):
        read_magicbrush(tmp_path, tmp_path / "images", split="holdout")
    with pytest.raises(FileNotFoundError, match=r"MagicBrush folder .*empty holds no \.parquet file"):
        (tmp_path / "empty").mkdir()
        read_magicbrush(tmp_path / "empty", tmp_path / "images")


def test_parquet_files_written_like_the_hf_release_round_trip(tmp_path):
    pa = pytest.importorskip("pyarrow", reason="pyarrow is not installed; the parquet round trip needs it")
    pq = pytest.importorskip("pyarrow.parquet")
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    schema = pa.schema(
        [
            ("img_id", pa.string()),
            ("turn_index", pa.int32()),
            ("source_img", image),
            ("mask_img", image),
            ("instruction", pa.string()),
            ("target_img", image),
        ]
    )
    (tmp_path / "data").mkdir()
    for name, ids in (("train-00000-of-00001.parquet", ["1", "2"]), ("dev-00000-of-00001.parquet", ["9"])):
        rows = [_row(img_id=i) for i in ids]
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp_path / "data" / name)
    result = read_format("magicbrush", tmp_path / "data", tmp_path / "images", batch_size=1)
    assert result.split_counts() == {"train": 2, "validation": 1, "test": 0}
    assert sorted(p.id for p in result.pairs) == ["1-1", "2-1", "9-1"]
    assert all(p.reference.is_file() and p.modified.suffix == ".jpg" for p in result.pairs)
