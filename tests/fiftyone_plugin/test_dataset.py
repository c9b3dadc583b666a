import pytest

from fiftyone_plugin.dataset import MODIFIED, REFERENCE, add_pairs, dataset_to_pairs
from fiftyone_plugin.importers import export_manifest, import_idc_dataset
from idc_engine.data.manifest import read_manifest


def test_pairs_become_groups_with_two_slices(idc_dataset, shapes_pairs):
    assert idc_dataset.media_type == "group" and idc_dataset.group_field == "group"
    assert set(idc_dataset.group_slices) == {REFERENCE, MODIFIED}
    assert idc_dataset.default_group_slice == MODIFIED
    for slice_name in (REFERENCE, MODIFIED):
        view = idc_dataset.select_group_slices(slice_name)
        assert len(view) == len(shapes_pairs)
        assert sorted(view.values("pair_id")) == sorted(p.id for p in shapes_pairs)
    first = shapes_pairs[0]
    group = idc_dataset.get_group(
        idc_dataset.select_group_slices(MODIFIED).match({"pair_id": first.id}).first().group.id
    )
    assert group[REFERENCE].filepath == str(first.reference.resolve())
    assert group[MODIFIED].filepath == str(first.modified.resolve())
    for sample in group.values():
        assert sample.captions == first.captions and sample.category == first.category
        assert sample.tags == [first.split]
        assert sample.idc_metadata["boxes"] == first.metadata["boxes"]


def test_export_then_import_is_lossless(idc_dataset, shapes_pairs, tmp_path):
    manifest = export_manifest(idc_dataset, tmp_path / "export" / "manifest.jsonl")
    again, result = import_idc_dataset("manifest", manifest)
    try:
        assert not result.missing
        by_id = {p.id: p for p in read_manifest(manifest)}
        assert by_id == {p.id: p for p in shapes_pairs}
        assert {p.id: p for p in dataset_to_pairs(again)} == by_id
    finally:
        again.delete()


def test_adding_a_pair_id_twice_is_refused_and_changes_nothing(idc_dataset, shapes_pairs):
    before = len(idc_dataset.select_group_slices())
    with pytest.raises(ValueError, match=f"pair id '{shapes_pairs[0].id}' is already in dataset"):
        add_pairs(idc_dataset, shapes_pairs[:1])
    assert len(idc_dataset.select_group_slices()) == before


def test_missing_images_are_counted_not_imported(shapes_pairs, tmp_path):
    from idc_engine.data.manifest import write_manifest

    pairs = [p for p in shapes_pairs[:6]]
    broken = pairs[2].__class__(**{**pairs[2].__dict__, "modified": tmp_path / "gone.png"})
    manifest = write_manifest(pairs[:2] + [broken] + pairs[3:], tmp_path / "m.jsonl")
    dataset, result = import_idc_dataset("manifest", manifest)
    try:
        assert len(result.pairs) == 5 and len(result.missing) == 1
        assert result.missing[0][0] == broken.id and "gone.png does not exist" in result.missing[0][1]
        assert len(dataset.select_group_slices(MODIFIED)) == 5
    finally:
        dataset.delete()


def test_existing_dataset_is_not_overwritten_by_default(idc_dataset, shapes_dir):
    idc_dataset.name = "idc-keep-me"
    with pytest.raises(ValueError, match="name: dataset 'idc-keep-me' already exists"):
        import_idc_dataset("manifest", shapes_dir / "manifest.jsonl", name="idc-keep-me")
    assert len(idc_dataset.select_group_slices(MODIFIED)) > 0


def test_real_ier_annotations_import_into_a_grouped_dataset(tmp_path):
    import json

    from tests.data.formats import FIXTURES, write_images

    annotations = FIXTURES / "ier" / "valid.json"
    if not annotations.is_file():
        pytest.skip(f"real IDC annotation fixtures not found at {FIXTURES}")
    records = json.loads(annotations.read_text())
    write_images(tmp_path / name for record in records[:12] for name in (record["img0"], record["img1"]))
    dataset, result = import_idc_dataset("ier", annotations, images_dir=tmp_path)
    try:
        kept = len(result.pairs)
        assert kept >= 12 and len(result.missing) == len(records) - kept - len(result.skipped)
        modified = dataset.select_group_slices(MODIFIED)
        assert len(modified) == kept and set(modified.distinct("tags")) == {"validation"}
        assert all(captions and all(c == c.strip() for c in captions) for captions in modified.values("captions"))
        assert "missing images" in dataset.info["idc_import"]["summary"]
    finally:
        dataset.delete()


def test_shapes_change_imports_directly(tmp_path):
    dataset, result = import_idc_dataset("shapes-change", tmp_path / "sc", train=6, validation=2, test=4, seed=3)
    try:
        assert len(dataset.select_group_slices(MODIFIED)) == 12
        assert sorted(dataset.select_group_slices(MODIFIED).distinct("tags")) == ["test", "train", "validation"]
    finally:
        dataset.delete()
