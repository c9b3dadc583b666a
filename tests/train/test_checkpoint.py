"""Checkpoints: the best weights are the ones saved, and a folder never mixes two runs."""

import json

import pytest
import torch
from safetensors.torch import load_file

from idc_engine.model.config import LoraSettings
from idc_engine.train import checkpoint as checkpoint_module
from idc_engine.train.checkpoint import load_best, save_checkpoint, trainable_state
from idc_engine.train.config import TrainConfig
from idc_engine.train.loop import train


def _config(**overrides):
    values = dict(
        finetune="lora",
        lora=LoraSettings(rank=4, dropout=0.0),
        learning_rate=1e-3,
        batch_size=4,
        max_steps=6,
        warmup_steps=0,
        eval_every=2,
        eval_metric="loss",
        eval_max_pairs=8,
        checkpoint_every=3,
        log_every=1,
        seed=5,
    )
    values.update(overrides)
    return TrainConfig(**values)


def test_trainable_state_is_a_copy_not_the_live_weights(tiny_model):
    tiny_model.add_lora(LoraSettings(rank=2))
    snapshot = trainable_state(tiny_model)
    name, parameter = next((n, p) for n, p in tiny_model.named_parameters() if p.requires_grad)
    with torch.no_grad():
        parameter.add_(1.0)
    assert not torch.equal(snapshot[name], parameter.detach())


def test_the_best_validation_step_is_saved_not_the_last(shapes_pairs, tmp_path):
    from idc_engine.model.loading import load_model

    tiny_model = load_model("tiny", for_training=True)  # trained: noise on its adapter surely hurts
    train_pairs = [p for p in shapes_pairs if p.split == "train"][:16]
    val_pairs = [p for p in shapes_pairs if p.split == "validation"][:8]
    at_best = {}

    def spoil_after_the_first_evaluation(step, logs):
        if step == 2:
            at_best.update(trainable_state(tiny_model))
        if step > 2:  # later evaluations (steps 4 and 6) now score far worse than step 2
            with torch.no_grad():
                for parameter in tiny_model.trainable_parameters():
                    parameter.add_(torch.randn_like(parameter) * 3.0)

    spoil = spoil_after_the_first_evaluation
    result = train(tiny_model, train_pairs, val_pairs, _config(), tmp_path, show_progress=False, on_step=spoil)
    assert result.best["step"] == 2 and result.steps == 6
    best_file = load_best(tmp_path / "checkpoints" / "checkpoint-6")  # kept with the last checkpoint
    saved = load_file(str(result.model_dir / "adapter_model.safetensors"))
    live = trainable_state(tiny_model)
    assert best_file.keys() == at_best.keys() == live.keys()
    for name in at_best:
        assert torch.equal(best_file[name], at_best[name]), name
        assert torch.equal(live[name], at_best[name]), name  # the model in memory is the best step's too
    # The adapter file names its tensors peft's way; the set of values is the best step's.
    assert sorted(float(t.float().abs().sum()) for t in saved.values()) == pytest.approx(
        sorted(float(t.abs().sum()) for n, t in at_best.items() if "lora_" in n)
    )


def test_a_new_run_refuses_a_folder_that_holds_another_run(tiny_dir, shapes_pairs, tmp_path):
    from idc_engine.model.blip2idc import BLIP2IDC

    train_pairs = [p for p in shapes_pairs if p.split == "train"][:8]
    config = _config(eval_every=0, max_steps=3)
    train(BLIP2IDC.from_pretrained(tiny_dir), train_pairs, None, config, tmp_path, show_progress=False)
    with pytest.raises(ValueError, match="out_dir .*: not empty \\(holds checkpoints, model\\); resume the run"):
        train(BLIP2IDC.from_pretrained(tiny_dir), train_pairs, None, config, tmp_path, show_progress=False)
    result = train(
        BLIP2IDC.from_pretrained(tiny_dir), train_pairs, None, config, tmp_path, show_progress=False, overwrite=True
    )
    assert result.steps == 3 and (tmp_path / "checkpoints" / "checkpoint-3").is_dir()


def test_pruning_never_deletes_the_checkpoint_just_written(tiny_model, tmp_path):
    """An older, longer run's checkpoint-500 must not outrank the new run's checkpoint-3."""
    tiny_model.add_lora(LoraSettings(rank=2))
    optimizer = torch.optim.AdamW(tiny_model.trainable_parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    (tmp_path / "checkpoint-500").mkdir()
    written = save_checkpoint(tmp_path, 3, tiny_model, optimizer, scheduler, {"history": []})
    assert written.is_dir() and (tmp_path / "latest").read_text() == "checkpoint-3"
    assert checkpoint_module.latest_checkpoint(tmp_path) == written


def test_checkpoint_files_are_flushed_before_the_rename_that_publishes_them(tiny_model, tmp_path, monkeypatch):
    tiny_model.add_lora(LoraSettings(rank=2))
    optimizer = torch.optim.AdamW(tiny_model.trainable_parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    events = []
    real_fsync, real_replace = checkpoint_module._fsync_path, checkpoint_module.os.replace
    monkeypatch.setattr(checkpoint_module, "_fsync_path", lambda p: (events.append(("fsync", p.name)), real_fsync(p)))
    monkeypatch.setattr(
        checkpoint_module.os, "replace", lambda a, b: (events.append(("replace", str(b))), real_replace(a, b))
    )
    save_checkpoint(tmp_path, 7, tiny_model, optimizer, scheduler, {"history": []})
    publish = events.index(("replace", str(tmp_path / "checkpoint-7")))
    flushed = {name for kind, name in events[:publish] if kind == "fsync"}
    assert {"trainable.safetensors", "optimizer.pt", "state.json"} <= flushed


def test_the_best_weights_and_their_step_are_written_together(tiny_dir, shapes_pairs, tmp_path):
    """Killed right after a validation that improved, before the next checkpoint: the newest checkpoint's
    record of the best step and the best weights on disk must still belong together (the best weights
    used to be a file of their own, already the newer step's)."""
    from idc_engine.model.blip2idc import BLIP2IDC
    from idc_engine.train.checkpoint import latest_checkpoint

    model = BLIP2IDC.from_pretrained(tiny_dir)
    train_pairs = [p for p in shapes_pairs if p.split == "train"][:16]
    val_pairs = [p for p in shapes_pairs if p.split == "validation"][:8]
    weights, best = {}, [float("inf")]

    class Killed(Exception):
        pass

    def kill_after_an_improvement_between_checkpoints(step, logs):
        weights[step] = trainable_state(model)
        improved, best[0] = logs["val_loss"] < best[0], min(best[0], logs["val_loss"])
        if improved and step % 2 and step > 1:  # odd: the last checkpoint (even steps) is older
            raise Killed

    config = _config(learning_rate=5e-3, eval_every=1, checkpoint_every=2, max_steps=12)
    with pytest.raises(Killed):
        train(
            model,
            train_pairs,
            val_pairs,
            config,
            tmp_path,
            show_progress=False,
            on_step=kill_after_an_improvement_between_checkpoints,
        )
    found = latest_checkpoint(tmp_path / "checkpoints")
    recorded = json.loads((found / "state.json").read_text())["best"]
    assert recorded["step"] < max(weights)  # the kill's step improved, after this checkpoint
    on_disk = load_best(found)
    assert on_disk is not None and on_disk.keys() == weights[recorded["step"]].keys()
    assert all(torch.equal(on_disk[n], weights[recorded["step"]][n]) for n in on_disk)
