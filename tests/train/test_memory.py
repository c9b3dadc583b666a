"""What makes the full-size model fit one GPU, checked on the tiny one: frozen weights in bf16 with
float32 adapters under autocast, gradient checkpointing, and batches prepared by worker processes."""

import torch

from idc_engine.model.blip2idc import BLIP2IDC
from idc_engine.model.config import LoraSettings
from idc_engine.train.config import TrainConfig
from idc_engine.train.loop import prepare_model, train


def _config(**overrides):
    values = dict(
        lora=LoraSettings(rank=4, dropout=0.0),
        learning_rate=3e-3,
        batch_size=8,
        max_steps=6,
        log_every=1,
        warmup_steps=0,
        eval_every=0,
        checkpoint_every=100,
        seed=2,
    )
    values.update(overrides)
    return TrainConfig(**values)


def test_frozen_bf16_with_float32_adapters_trains_and_saves_an_adapter_that_reloads(
    tiny_dir, shapes_pairs, image_pairs, tmp_path
):
    model = BLIP2IDC.from_pretrained(tiny_dir, device="cpu")
    config = _config(frozen_dtype="bf16", mixed_precision="bf16")
    result = train(model, shapes_pairs[:16], None, config, tmp_path, show_progress=False)
    frozen = {p.dtype for p in model.parameters() if not p.requires_grad}
    trained = {p.dtype for p in model.parameters() if p.requires_grad}
    assert frozen == {torch.bfloat16} and trained == {torch.float32}
    losses = [entry["loss"] for entry in result.history]
    assert losses[-1] < losses[0]
    reloaded = BLIP2IDC.from_pretrained(result.model_dir, device="cpu")
    assert len(reloaded.generate(reloaded.pixel_values(image_pairs), max_new_tokens=4)) == len(image_pairs)


def test_auto_leaves_cpu_weights_in_float32(tiny_model):
    prepare_model(tiny_model, _config())
    assert {p.dtype for p in tiny_model.parameters()} == {torch.float32}


def test_gradient_checkpointing_gives_the_same_loss_and_gradients(tiny_dir, image_pairs):
    captions = ["the red circle turned blue"] * len(image_pairs)
    results = []
    for checkpointing in (False, True):
        model = BLIP2IDC.from_pretrained(tiny_dir, device="cpu")
        torch.manual_seed(0)  # the same LoRA initialisation for both
        prepare_model(model, _config(gradient_checkpointing=checkpointing))
        model.train()
        loss = model.loss(model.pixel_values(image_pairs), captions)
        loss.backward()
        results.append((loss.item(), [p.grad.clone() for p in model.trainable_parameters()]))
    (loss_a, grads_a), (loss_b, grads_b) = results
    assert abs(loss_a - loss_b) < 1e-6
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(grads_a, grads_b))


def test_loader_worker_processes_change_nothing_but_where_batches_are_made(tiny_dir, shapes_pairs, tmp_path):
    weights = []
    for workers in (0, 2):
        model = BLIP2IDC.from_pretrained(tiny_dir, device="cpu")
        train(
            model,
            shapes_pairs[:16],
            None,
            _config(loader_workers=workers),
            tmp_path / str(workers),
            show_progress=False,
        )
        weights.append([p.detach().clone() for p in model.trainable_parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*weights))
