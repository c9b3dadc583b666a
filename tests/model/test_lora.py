import pytest
import torch

from idc_engine.model.blip2idc import BLIP2IDC
from idc_engine.model.config import LoraSettings
from idc_engine.model.lora import group_of


@pytest.mark.parametrize("groups", [("vit",), ("qformer",), ("llm",), ("vit", "qformer", "llm")])
def test_lora_targets_exactly_the_chosen_groups(tiny_model, groups):
    tiny_model.add_lora(LoraSettings(rank=4, targets=groups))
    adapted = {name.rsplit(".lora_A", 1)[0] for name, _ in tiny_model.base.named_parameters() if ".lora_A" in name}
    found = {group_of(name.replace("base_model.model.", "")) for name in adapted}
    assert found == set(groups)
    expected = {"vit": 4, "qformer": 2 * 2 * 3, "llm": 2 * 3}  # tiny: 4 ViT, 2 Q-Former (self+cross), 2 OPT layers
    assert len(adapted) == sum(expected[g] for g in groups)


def test_only_adapter_weights_train(tiny_model):
    tiny_model.add_lora(LoraSettings(rank=4))
    trainable = [n for n, p in tiny_model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    total = sum(p.numel() for p in tiny_model.parameters())
    assert sum(p.numel() for p in tiny_model.trainable_parameters()) < 0.2 * total


def _nudge_adapters(model):
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5)


def test_adapter_round_trip_and_merge_give_the_same_captions(tiny_model, tiny_dir, image_pairs, tmp_path):
    tiny_model.add_lora(LoraSettings(rank=4))
    _nudge_adapters(tiny_model)
    tiny_model.eval()
    pixel_values = tiny_model.pixel_values(image_pairs)
    before = tiny_model.generate(pixel_values, max_new_tokens=8)
    plain = BLIP2IDC.from_pretrained(tiny_dir, device="cpu").generate(pixel_values, max_new_tokens=8)
    assert before != plain  # the adapter really changes the model

    saved = tiny_model.save_pretrained(tmp_path / "adapter")
    assert (saved / "adapter_model.safetensors").is_file()
    assert not (saved / "model.safetensors").exists()
    reloaded = BLIP2IDC.from_pretrained(saved, device="cpu")
    assert reloaded.has_adapter and reloaded.generate(pixel_values, max_new_tokens=8) == before

    reloaded.merge_lora()
    assert not reloaded.has_adapter
    assert reloaded.generate(pixel_values, max_new_tokens=8) == before
    merged = reloaded.save_pretrained(tmp_path / "merged")
    assert BLIP2IDC.from_pretrained(merged, device="cpu").generate(pixel_values, max_new_tokens=8) == before


def test_bad_lora_settings_name_the_field():
    with pytest.raises(ValueError, match=r"targets must be a non-empty subset of .*'decoder'"):
        LoraSettings(targets=("vit", "decoder"))
    with pytest.raises(ValueError, match="rank must be a positive integer, got 0"):
        LoraSettings(rank=0)
