"""An adapter names its base so that it loads on another machine, or carries the base with it."""

import json
import shutil

import pytest

from idc_engine.model.base_reference import TINY_CHECKPOINT, base_reference
from idc_engine.model.blip2idc import BLIP2IDC
from idc_engine.model.config import LoraSettings
from idc_engine.model.loading import load_model
from idc_engine.model.tiny import build_tiny


def _adapted(model):
    model.add_lora(LoraSettings(rank=4))
    for name, parameter in model.named_parameters():
        if "lora_B" in name:
            parameter.data.normal_(0, 0.5)
    return model.eval()


def _recorded(adapter_dir):
    return json.loads((adapter_dir / "adapter_config.json").read_text())["base_model_name_or_path"]


def test_an_adapter_of_a_model_built_from_a_config_reloads_from_its_folder_alone(image_pairs, tmp_path):
    model = _adapted(build_tiny())
    pixel_values = model.pixel_values(image_pairs)
    captions = model.generate(pixel_values, max_new_tokens=8)
    saved = model.save_pretrained(tmp_path / "adapter")
    assert _recorded(saved) == "base" and (saved / "base" / "model.safetensors").is_file()
    moved = shutil.move(str(saved), str(tmp_path / "elsewhere"))
    reloaded = BLIP2IDC.from_pretrained(moved, device="cpu")
    assert reloaded.has_adapter and reloaded.generate(pixel_values, max_new_tokens=8) == captions


def test_an_adapter_of_the_embedded_preset_names_it_tiny(image_pairs, tmp_path):
    model = _adapted(load_model("tiny"))
    saved = model.save_pretrained(tmp_path / "adapter")
    assert _recorded(saved) == "tiny"
    pixel_values = model.pixel_values(image_pairs)
    reloaded = load_model(str(saved))
    assert reloaded.generate(pixel_values, max_new_tokens=8) == model.generate(pixel_values, max_new_tokens=8)


def test_a_base_missing_on_this_machine_is_named_and_can_be_given_at_load_time(tiny_dir, image_pairs, tmp_path):
    base = shutil.copytree(tiny_dir, tmp_path / "base-here")
    model = _adapted(BLIP2IDC.from_pretrained(base, device="cpu"))
    saved = model.save_pretrained(tmp_path / "adapter")
    assert _recorded(saved) == str(base.resolve())
    moved = shutil.move(str(base), str(tmp_path / "base-there"))
    with pytest.raises(
        FileNotFoundError, match=r"its base model '.*base-here' is not on this machine; pass base_model="
    ):
        load_model(str(saved))
    pixel_values = model.pixel_values(image_pairs)
    reloaded = load_model(str(saved), base_model=moved)
    assert reloaded.generate(pixel_values, max_new_tokens=8) == model.generate(pixel_values, max_new_tokens=8)
    with pytest.raises(ValueError, match="base_model: only an adapter folder takes one"):
        load_model(moved, base_model=moved)


def test_a_snapshot_of_the_hugging_face_cache_is_recorded_by_its_hub_id(tmp_path):
    snapshot = tmp_path / "hub" / "models--Salesforce--blip2-opt-2.7b" / "snapshots" / "59a1ef6c"
    snapshot.mkdir(parents=True)
    assert base_reference(str(snapshot)) == "Salesforce/blip2-opt-2.7b"
    assert base_reference("Salesforce/blip2-opt-2.7b") == "Salesforce/blip2-opt-2.7b"
    assert base_reference(str(TINY_CHECKPOINT)) == "tiny"
    assert base_reference(None) is None
