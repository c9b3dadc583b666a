import numpy as np
import pytest
import torch
from PIL import Image

from idc_engine.attention.maps import AttentionConfig, attention_maps, eager_attention, split_concat_map
from idc_engine.model.blip2idc import BLIP2IDC
from idc_engine.model.config import BLIP2IDCConfig


def test_halves_of_a_vertical_map_go_to_the_right_images():
    grid = np.zeros((6, 6), dtype=np.float32)
    grid[:3] = 1.0  # attention only on the top half, where the reference is
    reference, modified = split_concat_map(grid, "vertical", (40, 30), (64, 48))
    assert reference.shape == (30, 40) and modified.shape == (48, 64)
    assert reference.mean() > 0.9 and modified.mean() < 0.1


def test_halves_of_a_horizontal_map_go_to_the_right_images():
    grid = np.zeros((6, 6), dtype=np.float32)
    grid[:, 3:] = 1.0  # right half: the modified image
    reference, modified = split_concat_map(grid, "horizontal", (64, 48), (64, 48))
    assert reference.mean() < 0.1 and modified.mean() > 0.9


def test_maps_have_each_images_size_and_unit_range(tiny_model):
    pairs = [(Image.new("RGB", (40, 30), "red"), Image.effect_noise((64, 48), 40).convert("RGB"))] * 2
    maps = attention_maps(tiny_model, pairs, AttentionConfig(per_head=True))
    assert len(maps) == 2
    for kind in ("cls", "rollout", "qformer"):
        reference, modified = maps[0].maps[kind]
        assert reference.shape == (30, 40) and modified.shape == (48, 64)
        low = min(reference.min(), modified.min())
        high = max(reference.max(), modified.max())
        assert low == pytest.approx(0.0, abs=1e-6) and high == pytest.approx(1.0, abs=1e-6)
    assert len(maps[0].heads) == tiny_model.base.config.vision_config.num_attention_heads


def test_hooked_cls_map_equals_the_models_own_attentions(tiny_model, image_pairs):
    maps = attention_maps(tiny_model, image_pairs[:2], AttentionConfig(kinds=("cls",)))
    pixel_values = tiny_model.pixel_values(image_pairs[:2])
    with eager_attention(tiny_model), torch.no_grad():
        output = tiny_model.base.vision_model(pixel_values=pixel_values, output_attentions=True)
    last = output.attentions[-1][:, :, 0, 1:].mean(1)
    side = int(last.shape[1] ** 0.5)
    for index in range(2):
        grid = last[index].reshape(side, side).numpy()
        reference, modified = split_concat_map(grid, "vertical", *(im.size for im in image_pairs[index]))
        low, high = min(reference.min(), modified.min()), max(reference.max(), modified.max())
        assert np.allclose((modified - low) / (high - low), maps[index].maps["cls"][1], atol=1e-5)


def test_batching_does_not_change_the_maps(tiny_model, image_pairs):
    one_batch = attention_maps(tiny_model, image_pairs, AttentionConfig(batch_size=len(image_pairs)))
    small = attention_maps(tiny_model, image_pairs, AttentionConfig(batch_size=1))
    for a, b in zip(one_batch, small):
        for kind in a.maps:
            assert np.allclose(a.maps[kind][1], b.maps[kind][1], atol=1e-5)


def test_attention_implementation_is_restored(tiny_model, image_pairs):
    before = tiny_model.base.config.vision_config._attn_implementation
    attention_maps(tiny_model, image_pairs[:1])
    assert tiny_model.base.config.vision_config._attn_implementation == before


def test_two_stream_maps(tiny_dir, image_pairs):
    model = BLIP2IDC.from_pretrained(tiny_dir, device="cpu", config=BLIP2IDCConfig(encoding="two-stream"))
    maps = attention_maps(model, image_pairs[:2])
    for kind in ("cls", "rollout", "qformer"):
        reference, modified = maps[0].maps[kind]
        assert reference.shape == image_pairs[0][0].size[::-1] and modified.shape == image_pairs[0][1].size[::-1]


def test_bad_kind_is_named():
    with pytest.raises(ValueError, match=r"kinds must be a non-empty subset of .*'gradcam'"):
        AttentionConfig(kinds=("gradcam",))
