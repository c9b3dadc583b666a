"""Full-size BLIP2IDC on a GPU: the real architecture (random weights) trains, captions and maps.

Skipped without CUDA (see conftest); run with `pytest -m gpu` on a machine that has one.
"""

import pytest
import torch
from PIL import Image

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


def test_full_size_checkpoint_loads_from_disk_trains_and_resumes(tmp_path, shapes_pairs):
    """The user's path: a BLIP-2 folder on disk -> from_pretrained -> idc's train() with resume."""
    from idc_engine.model.blip2idc import BLIP2IDC
    from idc_engine.model.config import LoraSettings
    from idc_engine.model.full_size import full_size_blip2idc
    from idc_engine.train.config import TrainConfig
    from idc_engine.train.loop import train

    folder = tmp_path / "blip2-opt-2.7b-random"
    full_size_blip2idc().to(dtype=torch.bfloat16).save_pretrained(folder)
    config = TrainConfig(
        lora=LoraSettings(rank=8),
        batch_size=4,
        max_steps=4,
        warmup_steps=0,
        eval_every=0,
        checkpoint_every=2,
        gradient_checkpointing=True,
    )
    train_pairs = [p for p in shapes_pairs if p.split == "train"][:8]

    class Killed(Exception):
        pass

    def kill_at_three(step, logs):
        if step == 3:
            raise Killed

    model = BLIP2IDC.from_pretrained(folder, dtype="float32", trainable_adapter=True)
    assert model.device.type == "cuda"
    with pytest.raises(Killed):
        train(model, train_pairs, None, config, tmp_path / "run", show_progress=False, on_step=kill_at_three)
    resumed = BLIP2IDC.from_pretrained(folder, dtype="float32", trainable_adapter=True)
    result = train(resumed, train_pairs, None, config, tmp_path / "run", resume=True, show_progress=False)
    assert result.steps == 4
    frozen = {p.dtype for p in resumed.parameters() if not p.requires_grad}
    assert frozen <= {torch.bfloat16, torch.float16}  # frozen weights cast down, the adapter kept float32
    adapter = BLIP2IDC.from_pretrained(result.model_dir)
    pixel_values = adapter.pixel_values([(Image.new("RGB", (224, 224)), Image.new("RGB", (224, 224), "red"))])
    assert len(adapter.generate(pixel_values, max_new_tokens=5)) == 1
