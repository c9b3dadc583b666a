"""Full-size BLIP2IDC on a GPU: the real architecture (random weights) trains, captions and maps.

Skipped without CUDA (see conftest); run with `pytest -m gpu` on a machine that has one.
"""

import pytest
import torch

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def full_size(full_size_processor):
    from transformers import Blip2ForConditionalGeneration

    from idc_engine.model.blip2idc import BLIP2IDC
    from idc_engine.model.full_size import blip2_opt_2_7b_config

    torch.manual_seed(0)
    model = Blip2ForConditionalGeneration(blip2_opt_2_7b_config()).to("cuda", torch.bfloat16)
    idc = BLIP2IDC(model, full_size_processor)
    idc.base.config.image_token_index = full_size_processor.tokenizer.image_token_id
    return idc


def test_lora_step_generate_and_attention_on_gpu(full_size, image_pairs):
    from idc_engine.attention.maps import attention_maps
    from idc_engine.model.config import LoraSettings

    full_size.add_lora(LoraSettings(rank=16))
    trainable = sum(p.numel() for p in full_size.trainable_parameters())
    assert 1e6 < trainable < 3e7  # the paper's adapter is ~20 MB
    pixel_values = full_size.pixel_values(image_pairs)
    torch.cuda.reset_peak_memory_stats()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = full_size.loss(pixel_values, ["the red circle turned blue"] * len(image_pairs))
    loss.backward()
    assert torch.isfinite(loss)
    full_size.eval()
    captions = full_size.generate(pixel_values, max_new_tokens=5)
    assert len(captions) == len(image_pairs)
    maps = attention_maps(full_size, image_pairs)
    assert maps[0].maps["rollout"][1].shape == image_pairs[0][1].size[::-1]
    print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB, LoRA parameters {trainable}")
