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


@pytest.fixture
def image_folders(tmp_path):
    """Originals and edits (one saved as .png, one in a subfolder) and one unmatched file on each side."""
    from tests.data.formats import png_bytes

    originals, edited = tmp_path / "originals", tmp_path / "edited"
    for folder, color, names in (
        (originals, (200, 30, 30), ("a.jpg", "street/c.png", "only_original.png")),
        (edited, (30, 30, 200), ("a.png", "street/c.png", "street/only_edit.png")),
    ):
        for name in names:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(png_bytes(color))
    return originals, edited


def test_image_folders_import_pairs_without_captions_that_read_back_and_export(image_folders, tmp_path):
    import fiftyone as fo

    originals, edited = image_folders
    dataset, result = import_idc_dataset("image-folders", reference_dir=originals, modified_dir=edited)
    try:
        assert sorted(m for m, _ in result.missing) == ["only_original.png", "street/only_edit.png"]
        modified = dataset.select_group_slices(MODIFIED)
        assert sorted(modified.values("pair_id")) == ["a", "street/c"]
        assert modified.distinct("tags") == ["unlabeled"]  # a split of their own, apart from any test split
        assert dataset.select_group_slices().values("captions") == [[], [], [], []]
        captions_field = dataset.get_field("captions")
        assert isinstance(captions_field, fo.ListField) and isinstance(captions_field.field, fo.StringField)
        assert dataset.info["idc_import"]["source"] == str(originals)
        assert dataset.info["idc_import"]["images_dir"] == str(edited)
        assert "2 missing images" in dataset.info["idc_import"]["summary"]
        pairs = dataset_to_pairs(dataset)
        assert {p.id: p for p in pairs} == {p.id: p for p in result.pairs}
        assert not any(p.has_references for p in pairs)

        manifest = export_manifest(dataset, tmp_path / "export" / "manifest.jsonl")
        again, _ = import_idc_dataset("manifest", manifest)
        try:
            assert {p.id: p for p in dataset_to_pairs(again)} == {p.id: p for p in read_manifest(manifest)}
            assert {p.id: p for p in read_manifest(manifest)} == {p.id: p for p in pairs}
        finally:
            again.delete()
    finally:
        dataset.delete()


def test_pairs_without_captions_can_be_captioned_and_get_heatmaps(image_folders, tiny_model):
    from fiftyone_plugin.captioning import caption_samples
    from fiftyone_plugin.heatmaps import compute_heatmaps
    from idc_engine.inference.caption import GenerationConfig

    dataset, _ = import_idc_dataset("image-folders", *image_folders, split="validation")
    try:
        summary = caption_samples(dataset, tiny_model, generation=GenerationConfig(max_new_tokens=4))
        assert summary["captioned"] == 2
        assert compute_heatmaps(dataset, tiny_model, kind="rollout", region_source="pixels")["pairs"] == 2
        modified = dataset.select_group_slices(MODIFIED)
        assert all(isinstance(c, str) for c in modified.values("idc_caption"))
        assert modified.distinct("tags") == ["validation"]
        assert modified.count("idc_attention") == 2 and modified.count("idc_regions") == 2
    finally:
        dataset.delete()


def test_the_import_operator_pairs_two_folders(image_folders):
    import fiftyone as fo
    import fiftyone.operators as foo

    originals, edited = image_folders
    params = {"format": "image-folders", "source": str(originals), "images_dir": str(edited), "name": "idc-folders"}
    result = foo.execute_operator("@idc/idc/import_idc_dataset", ctx=dict(params={**params, "match_extension": True}))
    try:
        result.raise_exceptions()
        assert (result.result["pairs"], result.result["missing"]) == (1, 4)  # a.jpg and a.png no longer pair
        assert fo.load_dataset("idc-folders").select_group_slices(MODIFIED).values("pair_id") == ["street/c"]
    finally:
        if fo.dataset_exists("idc-folders"):
            fo.delete_dataset("idc-folders")


def test_training_on_samples_leaves_out_pairs_without_captions(image_folders, shapes_pairs, tiny_dir, tmp_path):
    from fiftyone_plugin.dataset import pairs_to_dataset
    from fiftyone_plugin.runs import train_on_samples
    from idc_engine.data.formats import read_format
    from idc_engine.model.config import LoraSettings
    from idc_engine.train.config import TrainConfig

    config = TrainConfig(lora=LoraSettings(rank=2), batch_size=2, max_steps=1, eval_every=0, log_every=1)
    unlabelled = read_format("image-folders", *image_folders, split="train").pairs
    dataset = pairs_to_dataset(unlabelled)
    try:
        with pytest.raises(ValueError, match="samples: none of the view's 2 pairs tagged 'train' has reference"):
            train_on_samples(dataset, tmp_path / "none", str(tiny_dir), config)
        add_pairs(dataset, [p for p in shapes_pairs if p.split == "train"][:4])
        summary = train_on_samples(dataset, tmp_path / "run", str(tiny_dir), config, run_key="mixed")
        assert summary["unreferenced"] == {"train": 2, "validation": 0} and summary["train_pairs"] == 4
        assert dataset.load_run_results("mixed").unreferenced == {"train": 2, "validation": 0}
    finally:
        dataset.delete()
