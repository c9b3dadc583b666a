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
