"""The full-size BLIP-2 layout, narrowed to run on a CPU in seconds.

The 3.8 B-parameter model only fits a GPU (tests/test_gpu.py). Everything that differs from the tiny
preset besides width and depth is kept here: 224-pixel images in 14-pixel patches (a 16x16 grid,
257 tokens), 32 queries, a Q-Former with cross-attention only in every second layer, and OPT with
its projection and pre-norm layout. LoRA targets, the loss, generation and attention maps must all
work on it.
"""

import pytest
import torch
from transformers import Blip2ForConditionalGeneration

from idc_engine.attention.maps import AttentionConfig, attention_maps
from idc_engine.model.blip2idc import BLIP2IDC
from idc_engine.model.config import LoraSettings
from idc_engine.model.full_size import narrowed_config
from idc_engine.model.lora import group_of


@pytest.fixture
def narrowed(full_size_processor):
    torch.manual_seed(0)
    config = narrowed_config()
    config.image_token_index = full_size_processor.tokenizer.image_token_id
    return BLIP2IDC(Blip2ForConditionalGeneration(config), full_size_processor)


def test_full_size_layout_is_kept(narrowed):
    config = narrowed.base.config
    assert (config.vision_config.image_size, config.vision_config.patch_size) == (224, 14)
    assert config.qformer_config.cross_attention_frequency == 2
    assert narrowed.num_query_tokens == 32


def test_lora_finds_every_group_in_the_full_size_layout(narrowed):
    narrowed.add_lora(LoraSettings(rank=4))
    adapted = {name.rsplit(".lora_A", 1)[0] for name, _ in narrowed.base.named_parameters() if ".lora_A" in name}
    groups = [group_of(name.replace("base_model.model.", "")) for name in adapted]
    # 3 ViT qkv; Q-Former: 4 self-attention + 2 cross-attention blocks of query/key/value; OPT: 2 x q/k/v.
    assert groups.count("vit") == 3
    assert groups.count("qformer") == (4 + 2) * 3
    assert groups.count("llm") == 2 * 3


def test_loss_generation_and_maps_on_the_full_size_layout(narrowed, image_pairs):
    narrowed.add_lora(LoraSettings(rank=4))
    pixel_values = narrowed.pixel_values(image_pairs)
    assert pixel_values.shape[-2:] == (224, 224)  # the stacked pair, resized like any BLIP-2 input
    loss = narrowed.loss(pixel_values, ["the red circle turned blue"] * len(image_pairs))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in narrowed.trainable_parameters())

    narrowed.eval()
    captions = narrowed.generate(pixel_values, max_new_tokens=4)
    assert len(captions) == len(image_pairs)

    maps = attention_maps(narrowed, image_pairs, AttentionConfig(batch_size=2))
    for pair, result in zip(image_pairs, maps):
        assert set(result.maps) == {"cls", "rollout", "qformer"}
        for (reference, modified), kind in ((result.maps[k], k) for k in result.maps):
            assert reference.shape == pair[0].size[::-1], kind
            assert modified.shape == pair[1].size[::-1], kind
            assert 0.0 <= min(reference.min(), modified.min()) and max(reference.max(), modified.max()) == 1.0
