"""`idc import`: every importable source into a manifest, through the same reader as the FiftyOne importer."""

import json
from collections import Counter

import pytest
from PIL import Image

from idc_engine.cli import main
from idc_engine.data.formats import read_format
from idc_engine.data.importing import IMPORT_FORMATS, read_pairs
from idc_engine.data.manifest import read_manifest
from tests.data.formats import FIXTURES, requires_fixtures, write_images
from tests.data.formats.test_magicbrush import _row


def _import(capsys, *argv):
    code = main(["import", *map(str, argv)])
    return code, capsys.readouterr()


def _split_counts(manifest):
    return Counter(p.split for p in read_manifest(manifest))


def test_every_format_of_the_fiftyone_importer_is_offered():
    from idc_engine.data.formats import FORMATS

    assert IMPORT_FORMATS == ("manifest", "shapes-change", *FORMATS)


@requires_fixtures
@pytest.mark.parametrize(
    ("fmt", "source", "counts"),
    [
        ("spot-the-diff", "spot_the_diff", {"train": 9477, "validation": 1628, "test": 1397}),
        ("ier", "ier", {"train": 3061, "validation": 383, "test": 495}),
        ("syned", "syned_blip2idc", {"train": 3050, "validation": 539, "test": 2022}),
    ],
)
def test_real_annotation_files_become_a_manifest_with_every_pair(fmt, source, counts, tmp_path, capsys):
    out = tmp_path / "manifest.jsonl"
    code, printed = _import(
        capsys,
        fmt,
        FIXTURES / source,
        "--images-dir",
        tmp_path / "images",
        "--option",
        "check_images=false",
        "--out",
        out,
    )
    assert code == 0, printed.err
    assert _split_counts(out) == counts
    expected = read_format(fmt, FIXTURES / source, tmp_path / "images", check_images=False)
    assert [p.captions for p in read_manifest(out)] == [p.captions for p in expected.pairs]
    assert f"wrote {sum(counts.values())} pairs -> {out}" in printed.out


@requires_fixtures
def test_pairs_with_missing_images_are_counted_and_left_out(tmp_path, capsys):
    records = json.loads((FIXTURES / "ier" / "valid.json").read_text())
    images = tmp_path / "images"
    write_images(images / name for record in records[:5] for name in (record["img0"], record["img1"]))
    out = tmp_path / "ier.jsonl"
    code, printed = _import(capsys, "ier", FIXTURES / "ier" / "valid.json", "--images-dir", images, "--out", out)
    assert code == 0, printed.err
    pairs = read_manifest(out)
    assert len(pairs) >= 5 and all(p.reference.is_file() and p.modified.is_file() for p in pairs)
    assert f"{len(records) - len(pairs)} missing images" in printed.out


@requires_fixtures
def test_clevr_dc_and_clevr_change_read_their_caption_files(tmp_path, capsys):
    captions = tmp_path / "captions.json"
    captions.write_text(json.dumps({str(i): [f"scene {i} changed"] for i in range(48000)}))
    out = tmp_path / "dc.jsonl"
    code, printed = _import(
        capsys,
        "clevr-dc",
        FIXTURES / "clevr_dc",
        "--images-dir",
        tmp_path,
        "--option",
        f"captions={json.dumps(str(captions))}",
        "--option",
        "check_images=false",
        "--out",
        out,
    )
    assert code == 0, printed.err
    assert _split_counts(out) == {"train": 40800, "validation": 2400, "test": 4800}

    release = tmp_path / "clevr"
    release.mkdir()
    (release / "splits.json").write_text(json.dumps({"train": [1], "val": [2], "test": [3]}))
    (release / "change_captions.json").write_text(
        json.dumps({f"CLEVR_default_{i:06d}.png": [f"the cube {i} moved"] for i in (1, 2, 3)})
    )
    (release / "no_change_captions.json").write_text(
        json.dumps({f"CLEVR_default_{i:06d}.png": ["no change was made"] for i in (1, 2, 3)})
    )
    code, printed = _import(
        capsys,
        "clevr-change",
        release,
        "--images-dir",
        tmp_path,
        "--option",
        "check_images=false",
        "--out",
        out,
        "--overwrite",
    )
    assert code == 0, printed.err
    assert _split_counts(out) == {"train": 2, "validation": 2, "test": 2}


def test_magicbrush_parquet_images_are_written_beside_the_manifest(tmp_path, capsys):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    schema = pa.schema(
        [("img_id", pa.string()), ("turn_index", pa.int32()), ("source_img", image), ("mask_img", image)]
        + [("instruction", pa.string()), ("target_img", image)]
    )
    (tmp_path / "data").mkdir()
    rows = [_row(img_id=i) for i in ("1", "2")]
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp_path / "data" / "dev-00000-of-00001.parquet")
    out = tmp_path / "mb" / "manifest.jsonl"
    code, printed = _import(
        capsys, "magicbrush", tmp_path / "data", "--images-dir", tmp_path / "mb" / "images", "--out", out
    )
    assert code == 0, printed.err
    pairs = read_manifest(out)
    assert [(p.id, p.split, p.captions) for p in pairs] == [
        ("1-1", "validation", ["put a hat on the dog"]),
        ("2-1", "validation", ["put a hat on the dog"]),
    ]
    assert all(p.modified.is_file() for p in pairs)
    assert '"reference": "images/1-1-source.png"' in out.read_text()  # relative: the folder can move


def test_two_folders_of_images_pair_by_name_without_captions(tmp_path, capsys):
    for folder, color in (("originals", "red"), ("edited", "blue")):
        (tmp_path / folder / "sub").mkdir(parents=True)
        for name in ("a.png", "sub/b.png"):
            Image.new("RGB", (8, 8), color).save(tmp_path / folder / name)
    Image.new("RGB", (8, 8)).save(tmp_path / "edited" / "stray.png")
    out = tmp_path / "folders.jsonl"
    code, printed = _import(
        capsys,
        "image-folders",
        tmp_path / "originals",
        "--images-dir",
        tmp_path / "edited",
        "--option",
        "split=train",
        "--out",
        out,
    )
    assert code == 0, printed.err
    pairs = read_manifest(out)
    assert sorted(p.reference.relative_to(tmp_path / "originals").as_posix() for p in pairs) == ["a.png", "sub/b.png"]
    assert all(p.captions == [] and p.split == "train" for p in pairs)
    assert "stray.png" in printed.out


def test_shapes_change_and_a_manifest_import_like_any_format(tmp_path, capsys):
    out = tmp_path / "shapes.jsonl"
    code, printed = _import(
        capsys,
        "shapes-change",
        tmp_path / "sc",
        "--option",
        "train=4",
        "--option",
        "test=2",
        "--option",
        "validation=0",
        "--out",
        out,
    )
    assert code == 0, printed.err
    assert _split_counts(out) == {"train": 4, "test": 2}
    again = tmp_path / "again.jsonl"
    assert _import(capsys, "manifest", out, "--out", again)[0] == 0
    assert [p.id for p in read_manifest(again)] == [p.id for p in read_manifest(out)]


def test_errors_are_the_fiftyone_importers_and_nothing_is_written(tmp_path, capsys):
    out = tmp_path / "m.jsonl"
    with pytest.raises(ValueError) as same:
        read_pairs("ier", tmp_path / "valid.json")
    code, printed = _import(capsys, "ier", tmp_path / "valid.json", "--out", out)
    assert code == 2 and f"idc import: error: {same.value}" in printed.err
    assert "images_dir: format 'ier' needs the folder that holds its images" in printed.err
    assert not out.exists()

    code, printed = _import(capsys, "ier", tmp_path, "--images-dir", tmp_path, "--option", "pattern", "--out", out)
    assert code == 2 and "--option must be KEY=VALUE, got 'pattern'" in printed.err
    code, printed = _import(capsys, "ier", tmp_path, "--images-dir", tmp_path, "--option", "pattern=x", "--out", out)
    assert code == 2 and "options for format 'ier' must be among split" in printed.err

    (tmp_path / "edited").mkdir()
    code, printed = _import(
        capsys, "image-folders", tmp_path / "edited", "--images-dir", tmp_path / "edited", "--out", out
    )
    assert code == 2 and not out.exists()


def test_an_existing_manifest_is_kept_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "m.jsonl"
    out.write_text("keep me\n")
    code, printed = _import(capsys, "shapes-change", tmp_path / "sc", "--option", "train=2", "--out", out)
    assert code == 2 and "--out" in printed.err and "pass --overwrite" in printed.err
    assert out.read_text() == "keep me\n"
    code, _ = _import(capsys, "shapes-change", tmp_path / "sc", "--option", "train=2", "--out", out, "--overwrite")
    assert code == 0 and len(read_manifest(out)) == 2 + 50 + 100
