"""The embedded photo preset: loaded like any checkpoint, named by adapters, and honest about its record."""

import json
from dataclasses import asdict

import pytest

from idc_engine.data.photo_edits import PHOTO_SPLITS
from idc_engine.model import base_reference
from idc_engine.model.base_reference import TINY_PHOTO_CHECKPOINT
from idc_engine.model.blip2idc import BLIP2IDC
from idc_engine.model.config import LoraSettings
from idc_engine.model.loading import load_model
from idc_engine.pretrain import PRETRAIN_RECORD, PhotoPretrainConfig
from tests.tiny_photo import requires_tiny_photo


@requires_tiny_photo
def test_the_photo_preset_loads_by_name_and_from_its_folder_alike(image_pairs):
    by_name = load_model("tiny-photo")
    by_folder = BLIP2IDC.from_pretrained(TINY_PHOTO_CHECKPOINT, device="cpu")
    assert by_name.spec == "tiny-photo"
    pixel_values = by_name.pixel_values(image_pairs[:3])
    assert by_name.generate(pixel_values, max_new_tokens=12) == by_folder.generate(pixel_values, max_new_tokens=12)
    # A few MB, as the package can carry it.
    size = sum(f.stat().st_size for f in TINY_PHOTO_CHECKPOINT.iterdir())
    assert size < 15_000_000


@requires_tiny_photo
def test_its_record_names_the_data_the_steps_and_the_best_validation_step():
    record = json.loads((TINY_PHOTO_CHECKPOINT / PRETRAIN_RECORD).read_text())
    assert record["photographs"]["train"] == list(PHOTO_SPLITS["train"])
    assert not set(PHOTO_SPLITS["test"]) & set(record["photographs"]["train"] + record["photographs"]["validation"])
    assert record["best"]["step"] <= record["steps"] <= record["config"]["steps"]
    # A run that stopped short of its steps was stopped by its clock (--minutes), and its training says so.
    training = json.loads((TINY_PHOTO_CHECKPOINT / "training.json").read_text())
    assert training["steps"] == record["steps"]
    assert record["steps"] == record["config"]["steps"] or training["stopped"] == "time_budget"
    assert record["config"]["pairs"] > 0 and record["photo_edits"]["seed"] == record["config"]["data_seed"] != 0
    # `make pretrain-tiny-photo ARGS="--minutes M"` makes it: the defaults are the record's settings, and the
    # model reads pairs the way it was pretrained to.
    assert {**asdict(PhotoPretrainConfig()), "minutes": record["config"]["minutes"]} == record["config"]
    assert load_model("tiny-photo").config.encoding == record["config"]["encoding"]
    # ... and from the model it was built as: sine-cosine positions, without which no place was learned.
    assert record["preset"] == asdict(PhotoPretrainConfig().preset())
    assert record["preset"]["position_init"] == "sincos"


WHOLE = ("background", "style")  # whole-image edits (100 % and 93 % kind right, benchmarks/results/photo_preset.json)


@requires_tiny_photo
def test_it_says_no_change_on_re_encoded_copies_of_photographs_it_never_saw(tmp_path):
    """Its decision, as its training record says (calibrated on the validation photograph, or greedy captions
    when they were best there). A model or decision that says "no change" to everything would pass the
    first half, so whole-image edits it reads must stay changes."""
    from idc_engine.data.manifest import read_manifest
    from idc_engine.data.photo_edits import TEMPLATES, PhotoEditsConfig, generate
    from idc_engine.inference.caption import GenerationConfig, caption_idc_pairs
    from idc_engine.inference.no_change import is_no_change

    model = load_model("tiny-photo")
    # The calibration a training ends with, or the latest one made afterwards (idc calibrate-no-change).
    training = json.loads((TINY_PHOTO_CHECKPOINT / "training.json").read_text())
    calibration = (training.get("recalibrations") or [training["no_change"]])[-1]
    assert model.config.no_change_captions == TEMPLATES["none"]
    assert model.config.no_change_threshold == calibration["threshold"]
    assert list(model.config.no_change_weights) == calibration["weights"]

    manifest = generate(tmp_path, 0, 24, 0, PhotoEditsConfig(seed=0, unchanged_share=0.95))
    unchanged = [p for p in read_manifest(manifest) if p.metadata["edit"]["kind"] == "none"]
    assert len(unchanged) >= 16  # held-out photographs, only re-encoded or resized
    captions = caption_idc_pairs(model, unchanged, GenerationConfig(), skip_bad=False).captions
    said_none = sum(is_no_change(c, TEMPLATES["none"]) for c in captions.values())
    assert said_none >= 0.9 * len(unchanged), captions

    edits = generate(tmp_path / "edits", 0, 24, 0, PhotoEditsConfig(seed=0, unchanged_share=0.0, categories=WHOLE))
    captions = caption_idc_pairs(model, read_manifest(edits), GenerationConfig(), skip_bad=False).captions
    still_changes = sum(not is_no_change(c, TEMPLATES["none"]) for c in captions.values())
    assert still_changes >= 20, captions  # 23 of 24 measured (and 24 of 24 unchanged pairs said no change)


@requires_tiny_photo
def test_an_adapter_of_the_photo_preset_names_it_and_reloads(image_pairs, tmp_path):
    model = load_model("tiny-photo")
    model.add_lora(LoraSettings(rank=2))
    for name, parameter in model.named_parameters():
        if "lora_B" in name:
            parameter.data.normal_(0, 0.5)
    model.eval()
    saved = model.save_pretrained(tmp_path / "adapter")
    assert json.loads((saved / "adapter_config.json").read_text())["base_model_name_or_path"] == "tiny-photo"
    pixel_values = model.pixel_values(image_pairs[:2])
    assert load_model(str(saved)).generate(pixel_values, max_new_tokens=8) == model.generate(
        pixel_values, max_new_tokens=8
    )


def test_a_missing_photo_preset_says_how_to_make_it(tmp_path, monkeypatch):
    monkeypatch.setitem(base_reference.EMBEDDED, "tiny-photo", tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match=r"model 'tiny-photo': .* run `make pretrain-tiny-photo`"):
        load_model("tiny-photo")
