"""Training on several processes (torchrun, gloo on the CPU) follows the single-process run and resumes.

Two processes at global batch 8 (4 pairs each) are compared with one process at batch 8: the
per-step losses, the validation losses and the final adapter weights must agree to float noise,
because each rank's loss is weighted by its share of the batch's caption tokens. Measured on 2
cores: losses within 1.3e-7 relative and weights within 3.3e-7 after 8 steps (a plain mean of the
ranks' mean losses, without the weighting, was 1.2e-3 and 2.9e-2 off). The tolerances below leave a
margin of ~15x. A two-process run killed (SIGKILL of the launcher and its workers) after a
checkpoint and resumed with ``--resume`` ends with the uninterrupted run's weights, bit for bit.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from idc_engine.data.pair import split_pairs
from idc_engine.model.config import LoraSettings
from idc_engine.train import distributed
from idc_engine.train.checkpoint import load_checkpoint, rng_state, save_checkpoint
from idc_engine.train.config import TrainConfig
from idc_engine.train.loop import train

# The same run, as TrainConfig fields and as `idc train` flags.
SETTINGS = dict(
    learning_rate=5e-3,
    batch_size=8,
    max_steps=8,
    warmup_steps=2,
    eval_every=4,
    eval_metric="loss",
    eval_max_pairs=8,
    checkpoint_every=2,
    log_every=1,
    seed=3,
)
LORA = dict(rank=4, dropout=0.0)  # dropout masks differ between one process and two: none here
LOSS_RTOL = 2e-6
WEIGHT_ATOL = 5e-6


def _flags() -> list[str]:
    values = {**SETTINGS, **{f"lora_{k}": v for k, v in LORA.items()}}
    return [item for k, v in values.items() for item in (f"--{k.replace('_', '-')}", str(v))]


def _torchrun(tiny_dir, shapes_dir, out, *extra) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--standalone",
        "-m",
        "idc_engine.cli",
        "train",
        "--manifest",
        str(shapes_dir / "manifest.jsonl"),
        "--model",
        str(tiny_dir),
        "--device",
        "cpu",
        "--out",
        str(out),
        *_flags(),
        *extra,
    ]


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _run(command, timeout=240) -> subprocess.CompletedProcess:
    done = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _adapter(run_dir) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "model" / "adapter_model.safetensors"))


def _last_trainable(run_dir) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "checkpoints" / f"checkpoint-{SETTINGS['max_steps']}" / "trainable.safetensors"))


def _max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys() and a
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


@pytest.fixture(scope="module")
def two_process_run(tiny_dir, shapes_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp") / "run"
    started = time.perf_counter()
    done = _run(_torchrun(tiny_dir, shapes_dir, out))
    print(f"two-process run: {time.perf_counter() - started:.1f} s")
    return out, done


@pytest.mark.distributed
def test_two_processes_follow_one_process_at_the_same_global_batch(two_process_run, shapes_pairs, tmp_path):
    from idc_engine.model.loading import load_model

    out, done = two_process_run
    assert done.stdout.count("completed after 8 steps") == 1  # printed by rank 0 alone
    record = json.loads((out / "model" / "training.json").read_text())
    assert record["processes"] == 2 and record["steps"] == 8

    config = TrainConfig(lora=LoraSettings(**LORA), **SETTINGS)
    model = load_model(str(record["base_model"]), device="cpu", for_training=True)
    single = train(
        model,
        split_pairs(shapes_pairs, "train"),
        split_pairs(shapes_pairs, "validation"),
        config,
        tmp_path / "single",
        show_progress=False,
    )
    assert [h["step"] for h in record["history"]] == [h["step"] for h in single.history] == list(range(1, 9))
    worst = 0.0
    for two, one in zip(record["history"], single.history):
        for key in ("loss", "val_loss", "lr"):
            if key in one:
                assert two[key] == pytest.approx(one[key], rel=LOSS_RTOL), (two, one)
                worst = max(worst, abs(two[key] - one[key]) / abs(one[key]))
    assert record["history"][-1]["loss"] < record["history"][0]["loss"]  # it trained
    assert record["best"]["step"] == single.best["step"]
    assert record["best"]["value"] == pytest.approx(single.best["value"], rel=LOSS_RTOL)
    weights = _max_difference(_last_trainable(out), _last_trainable(tmp_path / "single"))
    adapter = _max_difference(_adapter(out), _adapter(tmp_path / "single"))
    print(f"largest relative loss difference {worst:.2e}; weights {weights:.2e}; adapter {adapter:.2e}")
    assert weights < WEIGHT_ATOL and adapter < WEIGHT_ATOL


@pytest.mark.distributed
def test_a_killed_two_process_run_resumes_to_the_same_weights(two_process_run, tiny_dir, shapes_dir, tmp_path):
    out = tmp_path / "run"
    latest = out / "checkpoints" / "latest"
    # The launcher and its two workers in a session of their own: SIGKILL them all, as a lost machine.
    launcher = subprocess.Popen(
        _torchrun(tiny_dir, shapes_dir, out),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not (latest.is_file() and latest.read_text() == "checkpoint-2"):
            assert launcher.poll() is None and time.monotonic() < deadline, "no first checkpoint"
            time.sleep(0.02)
    finally:
        os.killpg(launcher.pid, signal.SIGKILL)
        launcher.wait(timeout=60)
    assert launcher.returncode == -signal.SIGKILL
    assert not (out / "model").exists()  # killed mid-run, not after it

    _run(_torchrun(tiny_dir, shapes_dir, out, "--resume"))
    straight, _ = two_process_run
    record = json.loads((out / "model" / "training.json").read_text())
    expected = json.loads((straight / "model" / "training.json").read_text())
    assert record["steps"] == 8 and record["history"] == expected["history"]
    assert _max_difference(_last_trainable(out), _last_trainable(straight)) == 0.0
    assert _max_difference(_adapter(out), _adapter(straight)) == 0.0


def test_a_global_batch_that_does_not_divide_among_the_processes_is_refused():
    assert distributed.local_batch_size(8, 2) == 4
    with pytest.raises(ValueError, match="batch_size 6: the global micro-batch must divide evenly among 4"):
        distributed.local_batch_size(6, 4)


def test_a_single_process_has_no_process_group(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    context = distributed.setup("cpu")
    assert (context.rank, context.world_size, context.is_main, context.enabled) == (0, 1, True, False)
    assert context.all_sum([1.5]) == [1.5] and context.broadcast("x") == "x" and context.all_gather(3) == [3]
    with pytest.raises(KeyError):
        context.on_main(dict().__getitem__, "missing")


def test_each_rank_resumes_with_its_own_random_state(tiny_model, tmp_path):
    """Dropout masks differ between ranks; a resumed rank must continue its own sequence."""
    tiny_model.add_lora(LoraSettings(rank=2))
    optimizer = torch.optim.AdamW(tiny_model.trainable_parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    states = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        states.append(rng_state())
    written = save_checkpoint(tmp_path, 4, tiny_model, optimizer, scheduler, {"history": []}, rng_by_rank=states)
    for rank, seed in ((0, 1), (1, 2), (2, 1)):  # a rank the checkpoint does not know takes rank 0's
        torch.manual_seed(99)
        load_checkpoint(written, tiny_model, optimizer, scheduler, rank=rank)
        drawn = torch.rand(3)
        torch.manual_seed(seed)
        assert torch.equal(drawn, torch.rand(3)), rank


@pytest.mark.parametrize(
    ("environment", "config", "expected"),
    [
        ({}, {}, ("auto", 1)),
        ({"ACCELERATE_MIXED_PRECISION": "bf16"}, {}, ("bf16", 1)),
        ({"ACCELERATE_MIXED_PRECISION": "no"}, {"mixed_precision": "no"}, ("no", 1)),
        ({"ACCELERATE_GRADIENT_ACCUMULATION_STEPS": "4"}, {}, ("auto", 4)),
    ],
)
def test_accelerate_launch_flags_are_taken_into_the_config(monkeypatch, environment, config, expected):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settled = distributed.launcher_settings(TrainConfig(**config))
    assert (settled.mixed_precision, settled.grad_accum_steps) == expected


@pytest.mark.parametrize(
    ("environment", "config", "message"),
    [
        (
            {"ACCELERATE_MIXED_PRECISION": "fp16"},
            {"mixed_precision": "bf16"},
            r"mixed_precision 'bf16' disagrees with accelerate launch's --mixed_precision 'fp16'",
        ),
        ({"ACCELERATE_MIXED_PRECISION": "fp8"}, {}, r"--mixed_precision fp8 .* is not supported"),
        (
            {"ACCELERATE_GRADIENT_ACCUMULATION_STEPS": "4"},
            {"grad_accum_steps": 2},
            r"grad_accum_steps 2 disagrees with accelerate launch's --gradient_accumulation_steps 4",
        ),
        ({"ACCELERATE_USE_DEEPSPEED": "true"}, {}, r"DeepSpeed \(--use_deepspeed\) .* is not supported"),
        ({"ACCELERATE_USE_FSDP": "true"}, {}, r"FSDP \(--use_fsdp\) .* is not supported"),
        (
            {"ACCELERATE_DYNAMO_BACKEND": "INDUCTOR"},
            {},
            r"--dynamo_backend inductor .* launch with --dynamo_backend no",
        ),
    ],
)
def test_accelerate_launch_flags_idc_cannot_honour_are_refused(monkeypatch, environment, config, message):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        distributed.launcher_settings(TrainConfig(**config))


@pytest.mark.distributed
def test_accelerate_launch_mixed_precision_reaches_the_training(tiny_dir, shapes_dir, tmp_path):
    """`accelerate launch --mixed_precision bf16`: the run trains in bf16 (it used to keep its own
    'auto', which is float32 on the CPU) and says so in training.json; --use_fsdp is refused."""
    accelerate = os.path.join(os.path.dirname(sys.executable), "accelerate")
    launch = [accelerate, "launch", "--cpu", "--num_processes", "1", "--num_machines", "1", "--dynamo_backend", "no"]
    train_args = ["-m", "idc_engine.cli", "train", "--manifest", str(shapes_dir / "manifest.jsonl"), "--model"]
    train_args += [str(tiny_dir), "--device", "cpu", "--max-steps", "2", "--batch-size", "2", "--eval-every", "0"]
    _run([*launch, "--mixed_precision", "bf16", *train_args, "--out", str(tmp_path / "bf16")])
    record = json.loads((tmp_path / "bf16" / "model" / "training.json").read_text())
    assert record["config"]["mixed_precision"] == "bf16" and record["steps"] == 2
    refused = subprocess.run(
        [
            *launch,
            "--mixed_precision",
            "no",
            *train_args,
            "--out",
            str(tmp_path / "refused"),
            "--mixed-precision",
            "bf16",
        ],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert refused.returncode != 0
    assert "mixed_precision 'bf16' disagrees with accelerate launch's --mixed_precision 'no'" in refused.stderr
