import pytest

from fiftyone_plugin.dataset import MODIFIED, REFERENCE, dataset_to_pairs
from fiftyone_plugin.model import BLIP2IDCModel, BLIP2IDCModelConfig
from idc_engine.data.loading import load_pairs
from idc_engine.inference.caption import GenerationConfig, caption_pairs


def test_apply_model_captions_the_modified_slice_and_mirrors_to_the_reference(idc_dataset, tiny_dir):
    view = idc_dataset.select_group_slices(MODIFIED).limit(10)
    model = BLIP2IDCModel(BLIP2IDCModelConfig(model=str(tiny_dir), max_new_tokens=8))
    view.apply_model(model, label_field="idc_caption", batch_size=4, skip_failures=False)

    pair_ids, captions = view.values(["pair_id", "idc_caption"])
    assert all(isinstance(c, str) for c in captions)
    # The same pairs captioned by the engine directly: FiftyOne passed each sample with its own reference.
    pairs = {p.id: p for p in dataset_to_pairs(idc_dataset)}
    _, images, _ = load_pairs([pairs[i] for i in pair_ids])
    expected = caption_pairs(model.idc, images, GenerationConfig(batch_size=10, max_new_tokens=8))
    assert captions == expected

    reference = idc_dataset.select_group_slices(REFERENCE)
    mirrored = dict(zip(*reference.match({"pair_id": {"$in": pair_ids}}).values(["pair_id", "idc_caption"])))
    assert mirrored == dict(zip(pair_ids, captions))
    untouched = reference.match({"pair_id": {"$nin": pair_ids}}).values("idc_caption")
    assert set(untouched) == {None}


def test_zoo_source_loads_the_model(tiny_dir):
    import fiftyone.zoo as foz

    from fiftyone_plugin.zoo import register_local_source

    register_local_source()
    model = foz.load_zoo_model("blip2idc", model=str(tiny_dir), max_new_tokens=5)
    assert isinstance(model, BLIP2IDCModel) and model.config.model == str(tiny_dir)
    tiny = foz.load_zoo_model("blip2idc-tiny")
    assert tiny.config.model == "tiny"


def test_apply_model_mirrors_to_the_field_it_was_called_with(idc_dataset, tiny_dir):
    view = idc_dataset.select_group_slices(MODIFIED).limit(6)
    pair_ids = view.values("pair_id")
    view.apply_model(BLIP2IDCModel(BLIP2IDCModelConfig(model=str(tiny_dir), max_new_tokens=6)), label_field="first")
    model = BLIP2IDCModel(BLIP2IDCModelConfig(model=str(tiny_dir), max_new_tokens=3))
    view.apply_model(model, label_field="v2", batch_size=4)
    reference = idc_dataset.select_group_slices(REFERENCE).match({"pair_id": {"$in": pair_ids}})
    assert reference.values("v2") == [
        dict(zip(*view.values(["pair_id", "v2"])))[p] for p in reference.values("pair_id")
    ]
    assert reference.values("first") != reference.values("v2")  # the earlier model's mirror is untouched
    for slice_view in (view, reference):
        assert all(c is not None and c <= 0.0 for c in slice_view.values("v2_confidence"))
    assert not idc_dataset.has_sample_field("idc_caption")


def test_apply_model_refuses_the_reference_slice_and_datasets_that_are_not_idc(idc_dataset, tiny_dir):
    import fiftyone as fo

    model = BLIP2IDCModel(BLIP2IDCModelConfig(model=str(tiny_dir), max_new_tokens=3))
    references = idc_dataset.select_group_slices(REFERENCE).limit(2)
    with pytest.raises(ValueError, match=r"is on the 'reference' slice of dataset .*select_group_slices\('modified'\)"):
        references.apply_model(model, label_field="nope")
    assert not idc_dataset.has_sample_field("nope")

    flat = fo.Dataset()
    try:
        flat.add_samples([fo.Sample(filepath=p) for p in references.values("filepath")])
        with pytest.raises(ValueError, match=f"dataset {flat.name!r}: not an IDC dataset"):
            flat.apply_model(model, label_field="nope")
    finally:
        flat.delete()


def test_a_bad_image_skips_its_pair_not_its_batch(shapes_pairs, tiny_dir, tmp_path):
    import shutil

    from fiftyone_plugin.captioning import caption_samples
    from fiftyone_plugin.dataset import pairs_to_dataset
    from idc_engine.data.pair import IDCPair

    pairs = []
    for pair in shapes_pairs[:6]:
        reference, modified = tmp_path / f"{pair.id}_r.png", tmp_path / f"{pair.id}_m.png"
        shutil.copy(pair.reference, reference)
        shutil.copy(pair.modified, modified)
        pairs.append(IDCPair(pair.id, reference, modified, pair.captions, pair.split, pair.category))
    dataset = pairs_to_dataset(pairs)
    try:
        pairs[1].reference.write_bytes(b"truncated")  # a reference only BLIP2IDC reads
        model = BLIP2IDCModel(BLIP2IDCModelConfig(model=str(tiny_dir), max_new_tokens=3))
        view = dataset.select_group_slices(MODIFIED)
        view.apply_model(model, label_field="idc_caption", batch_size=6)
        captions = dict(zip(*view.values(["pair_id", "idc_caption"])))
        assert captions[pairs[1].id] is None
        assert all(isinstance(captions[p.id], str) for p in pairs if p is not pairs[1])
        assert model.last_report.skipped_count == 1 and pairs[1].id in model.last_report.skipped[0][1]

        pairs[4].modified.write_bytes(b"")  # the operator's path skips a bad modified image alike
        summary = caption_samples(dataset, model.idc, "by_operator")
        assert summary["captioned"] == 4 and summary["skipped"] == 2
        assert "file is empty" in " ".join(summary["skipped_examples"])
    finally:
        dataset.delete()


def test_a_group_added_after_the_first_call_is_found(shapes_pairs, tiny_dir):
    from fiftyone_plugin.dataset import add_pairs, pairs_to_dataset

    dataset = pairs_to_dataset(shapes_pairs[:3])
    try:
        model = BLIP2IDCModel(BLIP2IDCModelConfig(model=str(tiny_dir), max_new_tokens=3))
        dataset.select_group_slices(MODIFIED).apply_model(model, label_field="idc_caption")
        add_pairs(dataset, shapes_pairs[3:5])
        dataset.select_group_slices(MODIFIED).apply_model(model, label_field="idc_caption", skip_failures=False)
        assert all(isinstance(c, str) for c in dataset.select_group_slices(REFERENCE).values("idc_caption"))
    finally:
        dataset.delete()


def test_the_zoo_models_require_this_project_not_a_namesake_on_the_registry():
    import json
    from pathlib import Path

    import fiftyone.zoo as foz
    import yaml
    from packaging.requirements import Requirement

    from fiftyone_plugin.zoo import ZOO_SOURCE, register_local_source

    url = yaml.safe_load((Path(ZOO_SOURCE).parent / "fiftyone.yml").read_text())["url"]
    for entry in json.loads((Path(ZOO_SOURCE) / "manifest.json").read_text())["models"]:
        requirements = [Requirement(spec) for spec in entry["requirements"]["packages"]]
        assert [(r.name, r.url) for r in requirements] == [("idc", f"git+{url}")], entry["base_name"]
    register_local_source()
    foz.ensure_zoo_model_requirements("blip2idc-tiny", error_level=0)  # raises unless this project is installed
