import fiftyone as fo
import fiftyone.operators as foo
import numpy as np

from fiftyone_plugin.dataset import MODIFIED, REFERENCE
from fiftyone_plugin.heatmaps import compute_heatmaps
from fiftyone_plugin.model import BLIP2IDCModel, BLIP2IDCModelConfig
from idc_engine.data.images import load_image


def test_heatmaps_are_stored_on_both_slices_and_reload(idc_dataset, tiny_model):
    test = idc_dataset.match_tags("test")
    summary = compute_heatmaps(test, tiny_model, kind="rollout", region_source="pixels", caption_field=None)
    assert summary["pairs"] == len(test.select_group_slices(MODIFIED))
    reloaded = fo.load_dataset(idc_dataset.name)
    for slice_name in (REFERENCE, MODIFIED):
        for sample in reloaded.match_tags("test").select_group_slices(slice_name):
            heatmap = sample.idc_attention
            assert isinstance(heatmap, fo.Heatmap) and heatmap.range == [0, 255]
            width, height = load_image(sample.filepath).size
            assert heatmap.map.shape == (height, width) and heatmap.map.max() > 0
    modified = reloaded.match_tags("test").select_group_slices(MODIFIED)
    regions = dict(zip(*modified.values(["category", "idc_regions"])))
    assert all(isinstance(d, fo.Detections) for d in modified.values("idc_regions"))
    for category, found in zip(*modified.values(["category", "idc_regions"])):
        assert (len(found.detections) == 0) == (category == "none")
    assert regions
    assert not reloaded.select_group_slices(REFERENCE).has_field("idc_regions") or set(
        reloaded.select_group_slices(REFERENCE).values("idc_regions")
    ) == {None}


def test_apply_model_can_write_heatmaps_and_regions(idc_dataset, tiny_dir):
    view = idc_dataset.select_group_slices(MODIFIED).limit(4)
    config = BLIP2IDCModelConfig(model=str(tiny_dir), max_new_tokens=5, attention_field="attn", regions_field="boxes")
    view.apply_model(BLIP2IDCModel(config), label_field="idc_caption", batch_size=2, skip_failures=False)
    assert all(isinstance(c, str) for c in view.values("idc_caption"))
    assert all(isinstance(h, fo.Heatmap) for h in view.values("attn"))
    assert all(isinstance(d, fo.Detections) for d in view.values("boxes"))
    pair_ids = view.values("pair_id")
    reference = idc_dataset.select_group_slices(REFERENCE).match({"pair_id": {"$in": pair_ids}})
    assert all(isinstance(h, fo.Heatmap) and np.asarray(h.map).ndim == 2 for h in reference.values("attn"))


def test_heatmap_operator_runs_through_fiftyone(idc_dataset, tiny_dir):
    result = foo.execute_operator(
        "@idc/idc/compute_idc_heatmaps",
        ctx=dict(
            view=idc_dataset.match_tags("validation"),
            params={"model": str(tiny_dir), "kind": "qformer", "region_source": "pixels"},
        ),
    )
    assert result.result["kind"] == "qformer" and result.result["pairs"] == 16


def test_auto_regions_follow_the_models_encoding(idc_dataset, tiny_model, monkeypatch):
    """'auto' (the default) is resolved per model: attention for concat, the pixel difference for the
    difference encoding. Before this test, comparing the unresolved value (``region_source == 'attention'``)
    in heatmap_values, which sends every model to the pixel difference, passed every test."""
    import fiftyone_plugin.heatmaps as heatmaps
    from fiftyone_plugin.dataset import dataset_to_pairs

    pairs = dataset_to_pairs(idc_dataset.match_tags("test").limit(3))
    calls = []
    monkeypatch.setattr(heatmaps, "pixel_regions", lambda *a, **k: calls.append("pixels") or [])
    monkeypatch.setattr(heatmaps, "map_regions", lambda *a, **k: calls.append("attention") or [])
    heatmaps.heatmap_values(tiny_model, pairs)
    assert calls == ["attention"] * len(pairs)
    calls.clear()
    monkeypatch.setattr(tiny_model.config, "encoding", "difference")
    heatmaps.heatmap_values(tiny_model, pairs)
    assert calls == ["pixels"] * len(pairs)
