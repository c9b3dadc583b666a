"""The embedded photo preset as a user meets it: two folders of their own photographs, the model choice
in the forms, apply_model with heatmaps and regions, and the photo demo dataset."""

from pathlib import Path

import fiftyone as fo
import fiftyone.operators as foo
import numpy as np
import pytest
from PIL import Image, ImageDraw

from fiftyone_plugin.dataset import MODIFIED, REFERENCE, pairs_to_dataset
from fiftyone_plugin.importers import import_idc_dataset
from fiftyone_plugin.model import BLIP2IDCModel, BLIP2IDCModelConfig
from idc_engine.attention.localization import best_iou, inside
from idc_engine.data.pair import IDCPair
from idc_engine.data.photo_edits import PHOTO_SPLITS, load_photo
from idc_engine.metrics.photo_reading import read_edit
from idc_engine.model.discovery import TINY_PHOTO_DESCRIPTION, local_models
from tests.tiny_photo import requires_tiny_photo

PLUGIN = "@idc/idc"

pytestmark = requires_tiny_photo


# Where a user might paste a disc: four corners and the middle of a 300 x 200 photograph (60-px discs).
DISCS = {
    "top left": (22, 15),
    "top right": (218, 15),
    "center": (120, 70),
    "bottom left": (22, 125),
    "bottom right": (218, 125),
}


def _own_photographs(tmp_path):
    """Originals the preset never saw (the held-out test photographs, as a user's own shots would be) and
    copies with a red disc pasted at one of five places, in two folders, as a user keeps them."""
    originals, edited = tmp_path / "originals", tmp_path / "edited"
    originals.mkdir()
    edited.mkdir()
    truth = {}
    for name in PHOTO_SPLITS["test"]:  # never seen in pretraining, not even cropped
        photo = load_photo(name).convert("RGB").resize((300, 200))
        for place, (x, y) in DISCS.items():
            stem = f"{name}-{place.replace(' ', '-')}"
            photo.save(originals / f"{stem}.jpg", quality=95)
            copy = photo.copy()
            ImageDraw.Draw(copy).ellipse([x, y, x + 60, y + 60], fill=(220, 30, 30))
            copy.save(edited / f"{stem}.jpg", quality=95)
            truth[stem] = place
    return originals, edited, truth


def test_two_folders_of_own_photographs_get_sensible_captions_with_heatmaps_and_regions(tmp_path):
    """Measured with the embedded checkpoint (2026-12-02): the place named right on 15 of 15 pairs, 'a red
    <shape> was added' on 12 (on the coffee cup, 3 discs read as something painted over or removed, at
    the right place). The checkpoint it replaced named 'top left' or 'center' for most discs wherever
    they were, so the place is what this test holds it to."""
    originals, edited, truth = _own_photographs(tmp_path)
    dataset, result = import_idc_dataset("image-folders", reference_dir=originals, modified_dir=edited, name="own")
    try:
        assert len(result.pairs) == len(truth) == 15
        model = BLIP2IDCModel(
            BLIP2IDCModelConfig(model="tiny-photo", attention_field="idc_attention", regions_field="idc_regions")
        )
        modified = dataset.select_group_slices(MODIFIED)
        modified.apply_model(model, label_field="idc_caption")
        filepaths, captions = modified.values(["filepath", "idc_caption"])
        readings = {Path(f).stem: read_edit(c) for f, c in zip(filepaths, captions)}
        said = dict(zip((Path(f).stem for f in filepaths), captions))
        placed = [stem for stem, place in truth.items() if readings[stem] and readings[stem].place == place]
        added = [s for s, r in readings.items() if r and (r.kind, r.color) == ("add", "red")]
        assert len(placed) >= 14, said
        assert len(added) >= 10, said
        assert sorted(dataset.select_group_slices(REFERENCE).values("idc_caption")) == sorted(captions)
        for heatmap in modified.values("idc_attention"):
            assert isinstance(heatmap, fo.Heatmap) and np.asarray(heatmap.map).max() > 0
        # Regions come from the pixel difference for this difference-encoding model ('auto'). Measured
        # 2026-12-02: the strongest region is centred on the disc on 15 of 15 pairs and overlaps it with IoU
        # >= 0.5 on 13 (on the coffee cup's reds the disc differs less, IoU 0.11 and 0.26); the attention
        # regions it had before were centred on the disc on 6 of 15, none with IoU above 0.37.
        overlaps = []
        for filepath, regions in zip(filepaths, modified.values("idc_regions")):
            assert isinstance(regions, fo.Detections) and regions.detections
            x, y = DISCS[truth[Path(filepath).stem]]
            disc = [x / 300, y / 200, 60 / 300, 60 / 200]
            left, top, width, height = max(regions.detections, key=lambda d: d.confidence).bounding_box
            assert inside((left + width / 2, top + height / 2), disc), (filepath, regions)
            overlaps.append(best_iou([d.bounding_box for d in regions.detections], [disc]))
        assert sum(o >= 0.5 for o in overlaps) >= 12, overlaps
    finally:
        dataset.delete()


def test_forms_offer_the_photo_preset_for_photographs_and_the_shapes_warning_points_to_it(
    idc_dataset, tmp_path, monkeypatch
):
    from fiftyone.operators.executor import ExecutionContext

    monkeypatch.chdir(tmp_path)  # the forms also offer models trained under ./runs: none here (a `make demo` has some)

    def form(dataset, params):
        uri = f"{PLUGIN}/apply_blip2idc"
        ctx = ExecutionContext(request_params={"dataset_name": dataset.name, "params": params}, operator_uri=uri)
        return foo.get_operator(uri).resolve_input(ctx).to_json()["type"]["properties"]

    originals, edited, _ = _own_photographs(tmp_path)
    photo = IDCPair("photo", originals / "coffee-top-left.jpg", edited / "coffee-top-left.jpg", [], split="test")
    photos = pairs_to_dataset([photo])
    try:
        offered = {c["value"]: c["description"] for c in form(photos, {})["model"]["view"]["choices"]}
        assert offered["tiny-photo"] == TINY_PHOTO_DESCRIPTION and "no object names" in TINY_PHOTO_DESCRIPTION
        assert list(offered).index("tiny-photo") < list(offered).index("tiny")
        assert form(photos, {})["model"]["default"] == "tiny-photo"  # nothing trained here yet
        warning = form(photos, {"model": "tiny"})["model_warning"]["view"]["description"]
        assert "'tiny-photo'" in warning
        assert "model_warning" not in form(photos, {"model": "tiny-photo"})
    finally:
        photos.delete()
    # On shapes-change pairs the photo preset is not offered: 'tiny' is the model that fits.
    assert "tiny-photo" not in {c["value"] for c in form(idc_dataset, {})["model"]["view"]["choices"]}
    assert [m.spec for m in local_models(shapes=True)][-1] == "tiny"


@pytest.mark.slow
def test_the_photo_demo_builds_its_dataset_with_captions_heatmaps_and_regions(tmp_path, capsys):
    from fiftyone_plugin.demo_photos import build_photo_demo_dataset
    from idc_engine.demo_photos import PhotoDemoConfig, run_photo_demo

    summary = run_photo_demo(PhotoDemoConfig(train_pairs=60, validation_pairs=9, test_pairs=27), tmp_path)
    printed = capsys.readouterr().out
    assert "right edit (exact / kind)" in printed and "unchanged pairs called a change" in printed
    model = summary["reading"]["model"]["all"]
    assert model["count"] == 27 and model["unread"] < 0.2  # the preset speaks in the benchmark's words
    dataset, results, maps = build_photo_demo_dataset(tmp_path, name="idc-demo-photos-test")
    try:
        test = dataset.match_tags("test")
        assert {p for p in dataset.distinct("tags")} == {"test", "validation"}  # held-out photographs only
        assert results.metrics["count"] == 27 and maps["pairs"] == 27
        assert all(isinstance(c, str) for c in test.select_group_slices(MODIFIED).values("idc_caption"))
        assert all(c <= 0.0 for c in test.select_group_slices(MODIFIED).values("idc_caption_confidence"))
        assert all(isinstance(h, fo.Heatmap) for h in test.select_group_slices(REFERENCE).values("idc_attention"))
        assert maps["regions"] > 0
    finally:
        dataset.delete()


def test_an_image_the_preset_reads_is_an_image_of_any_size(tmp_path):
    """The preset takes photographs of any size and aspect: the pair is resized as the processor says."""
    from idc_engine.inference.caption import GenerationConfig, caption_pairs
    from idc_engine.model.loading import load_model

    model = load_model("tiny-photo")
    wide = load_photo("china").resize((640, 200))
    tall = Image.fromarray(np.asarray(wide)[:, :150]).resize((90, 300))
    captions = caption_pairs(model, [(wide, wide), (tall, tall)], GenerationConfig(max_new_tokens=20))
    assert all(read_edit(c) is not None for c in captions), captions
