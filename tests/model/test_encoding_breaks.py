"""break-18: the 'difference' encoding must never be silently swapped for another one, and the
pretraining recipes must not teach a description of a panel the model does not see."""

import pytest

from idc_engine.model.blip2idc import BLIP2IDC
from idc_engine.model.config import BLIP2IDCConfig, LoraSettings
from idc_engine.pretrain import PhotoPretrainConfig, PretrainConfig
from idc_engine.train.config import TrainConfig
from idc_engine.train.loop import train


def test_an_idc_flag_at_training_does_not_reset_the_saved_encoding(tiny_dir, shapes_dir, tmp_path):
    from idc_engine.cli import main

    difference = BLIP2IDC.from_pretrained(tiny_dir, device="cpu", config=BLIP2IDCConfig(encoding="difference"))
    saved = difference.save_pretrained(tmp_path / "difference")
    run = tmp_path / "run"
    # One --idc-* flag: the rest of the IDC config comes from the dataclass defaults, not from the model's
    argv = ["train", "--manifest", str(shapes_dir / "manifest.jsonl"), "--out", str(run), "--model", str(saved)]
    argv += ["--max-steps", "1", "--batch-size", "4", "--eval-every", "0", "--idc-max-caption-tokens", "32"]
    assert main(argv) == 0
    trained = BLIP2IDCConfig.load(run / "model")
    assert trained.max_caption_tokens == 32
    assert trained.encoding == "difference", "weights trained on 'difference' are now trained and fed on 'concat'"


def test_resuming_a_run_with_another_encoding_is_refused(tiny_dir, shapes_pairs, tmp_path):
    train_pairs = [p for p in shapes_pairs if p.split == "train"][:8]
    config = TrainConfig(
        finetune="lora", lora=LoraSettings(rank=2), batch_size=4, max_steps=2, warmup_steps=0,
        eval_every=0, checkpoint_every=1, log_every=1,
    )  # fmt: skip

    class Killed(Exception):
        pass

    def kill(step, logs):
        if step == 1:
            raise Killed

    concat = BLIP2IDC.from_pretrained(tiny_dir, device="cpu")
    with pytest.raises(Killed):
        train(concat, train_pairs, None, config, tmp_path / "run", show_progress=False, on_step=kill)
    # the run is resumed after PhotoPretrainConfig's default encoding changed: its checkpoint holds no encoding
    difference = BLIP2IDC.from_pretrained(tiny_dir, device="cpu", config=BLIP2IDCConfig(encoding="difference"))
    with pytest.raises(ValueError, match="encoding"):
        train(difference, train_pairs, None, config, tmp_path / "run", resume=True, show_progress=False)


@pytest.mark.parametrize(
    "build",
    [
        lambda: PretrainConfig(encoding="difference"),  # default description_share 0.5
        lambda: PhotoPretrainConfig(description_share=0.3),  # docs/photo_preset.md's recipe, default encoding
    ],
)
def test_describing_both_images_is_refused_with_the_difference_encoding(build):
    # describe_pair says "top: <reference>. bottom: <modified>", but the top panel is the difference image
    with pytest.raises(ValueError, match="description_share"):
        build()
