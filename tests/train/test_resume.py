import json

import pytest
import torch

from idc_engine.data.loading import load_pairs
from idc_engine.data.pair import IDCPair
from idc_engine.model.blip2idc import BLIP2IDC
from idc_engine.model.config import LoraSettings
from idc_engine.train.config import TrainConfig
from idc_engine.train.loop import train


class Killed(Exception):
    pass


def _config(**overrides):
    values = dict(
        finetune="lora",
        lora=LoraSettings(rank=4, dropout=0.1),
        learning_rate=5e-3,
        batch_size=4,
        max_steps=6,
        warmup_steps=2,
        eval_every=0,
        checkpoint_every=3,
        log_every=1,
        seed=3,
    )
    values.update(overrides)
    return TrainConfig(**values)


def _adapter_state(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def test_resume_after_a_kill_reaches_the_same_state(tiny_dir, shapes_pairs, tmp_path):
    train_pairs = [p for p in shapes_pairs if p.split == "train"]
    straight = BLIP2IDC.from_pretrained(tiny_dir, device="cpu")
    train(straight, train_pairs, None, _config(), tmp_path / "straight", show_progress=False)

    def kill_after_checkpoint(step, logs):
        if step == 4:  # one step past the checkpoint at step 3: that step's work is lost, as in a real kill
            raise Killed

    interrupted = BLIP2IDC.from_pretrained(tiny_dir, device="cpu")
    with pytest.raises(Killed):
        train(
            interrupted,
            train_pairs,
            None,
            _config(),
            tmp_path / "resumed",
            show_progress=False,
            on_step=kill_after_checkpoint,
        )
    assert (tmp_path / "resumed" / "checkpoints" / "latest").read_text() == "checkpoint-3"

    resumed = BLIP2IDC.from_pretrained(tiny_dir, device="cpu")
    result = train(resumed, train_pairs, None, _config(), tmp_path / "resumed", resume=True, show_progress=False)
    assert result.steps == 6
    assert (result.model_dir / "adapter_model.safetensors").is_file()
    assert not (result.model_dir / "model.safetensors").exists()
    expected, actual = _adapter_state(straight), _adapter_state(resumed)
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.allclose(expected[name], actual[name], atol=1e-6), name
    record = json.loads((result.model_dir / "training.json").read_text())
    assert record["steps"] == 6 and record["seed"] == 3 and record["config"]["lora"]["rank"] == 4
    assert record["versions"]["torch"] and "git_revision" in record


def test_resume_without_a_checkpoint_is_an_error(tiny_model, shapes_pairs, tmp_path):
    with pytest.raises(FileNotFoundError, match="resume: no checkpoint under"):
        train(tiny_model, shapes_pairs[:4], None, _config(), tmp_path, resume=True, show_progress=False)


def test_validating_on_test_pairs_is_refused(tiny_model, shapes_pairs, tmp_path):
    test_pairs = [p for p in shapes_pairs if p.split == "test"]
    with pytest.raises(ValueError, match="val_pairs: contains test-split pairs"):
        train(tiny_model, shapes_pairs[:4], test_pairs, _config(), tmp_path, show_progress=False)


def test_training_lowers_the_loss(tiny_model, shapes_pairs, tmp_path):
    train_pairs = [p for p in shapes_pairs if p.split == "train"][:8]
    pixel_values = tiny_model.pixel_values(load_pairs(train_pairs)[1])
    captions = [p.captions[0] for p in train_pairs]
    with torch.no_grad():
        before = tiny_model.loss(pixel_values, captions).item()
    config = _config(finetune="full", max_steps=30, batch_size=8, learning_rate=3e-3)
    config.augment.blur_probability = config.augment.jpeg_probability = 0.0
    result = train(tiny_model, train_pairs, None, config, tmp_path, show_progress=False)
    tiny_model.eval()
    with torch.no_grad():
        after = tiny_model.loss(pixel_values, captions).item()
    assert after < 0.6 * before
    assert (result.model_dir / "model.safetensors").is_file()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"finetune": "prefix"}, "finetune must be one of"),
        ({"batch_size": 0}, "batch_size must be a positive integer, got 0"),
        ({"learning_rate": -1.0}, "learning_rate must be positive, got -1.0"),
        ({"schedule": "step"}, "schedule must be one of"),
    ],
)
def test_bad_train_config_names_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_a_time_budgeted_run_shows_progress_against_the_clock(tiny_model, shapes_pairs, tmp_path, capsys):
    """A 2-second budget with room for 10,000 steps must not show '/10000' steps."""
    config = _config(max_steps=10_000, time_budget_s=2.0, checkpoint_every=10_000, batch_size=2)
    result = train(tiny_model, shapes_pairs[:8], None, config, tmp_path, show_progress=True)
    assert result.stopped == "time_budget"
    final = capsys.readouterr().err.strip().splitlines()[-1].split("\r")[-1]
    assert f"{result.steps}/{result.steps}" in final and "/10000" not in final, final
    assert "(2 s budget)" in final


def _without_references(pairs):
    return [IDCPair(f"new-{p.id}", p.reference, p.modified, [], p.split) for p in pairs]


def test_training_leaves_out_pairs_without_references_and_says_how_many(tiny_model, shapes_pairs, tmp_path):
    train_pairs = [p for p in shapes_pairs if p.split == "train"][:8]
    val_pairs = [p for p in shapes_pairs if p.split == "validation"][:2]
    mixed_train = _without_references(train_pairs[:3]) + train_pairs
    mixed_val = val_pairs + _without_references(val_pairs[:1])
    config = _config(max_steps=2, eval_every=2, checkpoint_every=2)
    result = train(tiny_model, mixed_train, mixed_val, config, tmp_path / "run", show_progress=False)
    assert result.unreferenced == {"train": 3, "validation": 1}
    assert result.history[-1]["val_loss"] > 0
    record = json.loads((result.model_dir / "training.json").read_text())
    assert record["unreferenced"] == {"train": 3, "validation": 1}
    assert (record["train_pairs"], record["validation_pairs"]) == (8, 2)


def test_training_on_pairs_without_references_only_is_refused(tiny_model, shapes_pairs, tmp_path):
    unlabelled = _without_references([p for p in shapes_pairs if p.split == "train"][:3])
    with pytest.raises(ValueError, match="train_pairs: none of the 3 pairs has reference captions"):
        train(tiny_model, unlabelled, None, _config(), tmp_path / "run", show_progress=False)
    assert not (tmp_path / "run").exists()


def test_resume_with_loader_workers_and_dropout_is_bit_identical(tiny_dir, shapes_pairs, tmp_path):
    """Batches prepared by a worker process and LoRA dropout on: a run killed after a checkpoint and
    resumed ends with the uninterrupted run's weights, bit for bit. (The DataLoader used to draw its
    seed from the global generator right after the checkpoint restored it, shifting every later
    dropout mask.)"""
    train_pairs = [p for p in shapes_pairs if p.split == "train"][:16]
    config = _config(loader_workers=1, lora=LoraSettings(rank=4, dropout=0.3))
    straight = BLIP2IDC.from_pretrained(tiny_dir, device="cpu")
    train(straight, train_pairs, None, config, tmp_path / "straight", show_progress=False)

    def kill(step, logs):
        if step == 4:
            raise Killed

    with pytest.raises(Killed):
        train(
            BLIP2IDC.from_pretrained(tiny_dir, device="cpu"),
            train_pairs,
            None,
            config,
            tmp_path / "run",
            False,
            False,
            kill,
        )
    resumed = BLIP2IDC.from_pretrained(tiny_dir, device="cpu")
    train(resumed, train_pairs, None, config, tmp_path / "run", resume=True, show_progress=False)
    expected, actual = _adapter_state(straight), _adapter_state(resumed)
    assert expected.keys() == actual.keys()
    assert all(torch.equal(expected[name], actual[name]) for name in expected)
