import numpy as np
import pytest
from PIL import Image

from idc_engine.attention.localization import best_iou, pointing_hit, random_boxes, summarize, true_boxes
from idc_engine.attention.regions import (
    RegionConfig,
    changed_object,
    map_regions,
    pixel_regions,
    region_source_for,
    says_no_change,
)
from idc_engine.data.loading import load_pair


def test_identical_images_and_no_change_captions_give_no_region():
    image = Image.effect_noise((48, 48), 60).convert("RGB")
    assert pixel_regions(image, image.copy()) == []
    flat_peak = np.zeros((48, 48), dtype=np.float32)
    flat_peak[10:20, 10:20] = 1.0
    assert map_regions(flat_peak, "there is no change") == []
    assert map_regions(flat_peak, "nothing has changed") == []
    assert len(map_regions(flat_peak, "a red circle was added")) == 1


def test_noise_only_pairs_yield_no_pixel_region(shapes_pairs):
    for pair in [p for p in shapes_pairs if p.category == "none"]:
        assert pixel_regions(*load_pair(pair)) == [], pair.id


def test_pixel_regions_find_the_changed_object(shapes_pairs):
    for pair in [p for p in shapes_pairs if p.category in ("color", "add", "drop", "move")]:
        regions = pixel_regions(*load_pair(pair), pair.captions[0])
        assert regions, pair.id
        assert best_iou([r.box for r in regions], true_boxes(pair.metadata)) > 0.5, pair.id
        assert regions[0].label == f"{pair.metadata['change']['color']} {pair.metadata['change']['shape']}"


def test_map_region_boxes_a_blob_in_relative_coordinates():
    values = np.zeros((50, 100), dtype=np.float32)
    values[10:20, 30:60] = 1.0
    (region,) = map_regions(values, "the blue square moved")
    assert np.allclose(region.box, [0.3, 0.2, 0.3, 0.2])
    assert region.label == "blue square" and region.score == 1.0


def test_auto_region_source_is_the_pixel_difference_only_for_models_that_read_it():
    assert RegionConfig().source == "auto"
    assert region_source_for("auto", "difference") == "pixels"
    for encoding in ("concat", "two-stream"):
        assert region_source_for("auto", encoding) == "attention"
    for encoding in ("difference", "concat"):  # a source asked for by name is kept whatever the model
        assert region_source_for("attention", encoding) == "attention"
        assert region_source_for("pixels", encoding) == "pixels"
    with pytest.raises(ValueError, match="region_source.*'pixel'"):
        region_source_for("pixel", "concat")
    with pytest.raises(ValueError, match="region_source.*'attn'"):
        RegionConfig(source="attn")


def test_caption_parsing():
    assert changed_object("the red circle turned blue") == "red circle"
    assert changed_object("a new green square appeared") == "new green square"
    assert changed_object("there is no change") is None
    assert says_no_change("The two images are the same")


def test_pointing_and_summary():
    values = np.zeros((10, 10), dtype=np.float32)
    values[7, 2] = 1.0
    assert pointing_hit(values, [[0.1, 0.6, 0.2, 0.2]])
    assert not pointing_hit(values, [[0.6, 0.1, 0.2, 0.2]])
    assert len(random_boxes([(0.2, 0.2), (0.4, 0.4)], 5)) == 5
    table = summarize(
        [
            {"category": "add", "method": "m", "hit": True, "iou": 0.5, "regions": 1},
            {"category": "none", "method": "m", "hit": None, "iou": 0.0, "regions": 0},
        ]
    )
    assert table["add"]["m"]["pointing"] == 1.0 and table["none"]["m"]["no_region"] == 1.0
