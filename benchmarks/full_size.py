"""BLIP-2 OPT-2.7b's architecture with random weights: the real model's memory and speed.

    python benchmarks/full_size.py [--out benchmarks/results/full_size.json]   # on a CUDA GPU
    python benchmarks/full_size.py --narrow                                     # any machine (CI)

No weights can be downloaded, but the same shapes cost the same FLOPs and memory. On a GPU: the
peak memory of one LoRA training step at batch 1 for ranks 8 / 16 / 32, measured after the model is
built and cast (the paper's Table 4: 8.65 / 8.75 / 8.95 GB in fp16), apart from the peak while it is
built (its fp32 weights pass through memory first), the adapter's size, the largest batch that fits,
training pairs/s, and captioning pairs/s batched against a naive one-pair-at-a-time fp16 loop (the
reference code's demo style). Training runs the way ``idc train`` does: frozen weights in bf16 (fp16
where bf16 is not supported), the adapter in float32, autocast. ``--narrow`` (the default without
CUDA) runs the same layout at toy width and depth on the CPU, so the code path is exercised
everywhere; its figures say nothing about the real model (on the CPU the peaks are resident set
sizes, sampled). Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers.utils import logging as hf_logging

from idc_engine.model.config import LoraSettings
from idc_engine.model.full_size import full_size_blip2idc
from idc_engine.train.config import TrainConfig
from idc_engine.train.loop import _autocast, prepare_model


def _pairs(count: int, size: int = 224) -> list[tuple[Image.Image, Image.Image]]:
    rng = np.random.default_rng(0)
    pairs = []
    for _ in range(count):
        reference = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        modified = reference.copy()
        modified[40:90, 40:90] = 255 - modified[40:90, 40:90]
        pairs.append((Image.fromarray(reference), Image.fromarray(modified)))
    return pairs


class _Peak:
    """The peak memory in use during one phase (``with _Peak(device) as peak: ...``; ``peak.bytes``).

    CUDA: the allocator's peak, reset when the phase starts. CPU: the largest resident set size that a
    thread sampling ``/proc/self/statm`` every millisecond sees (the process's own maximum RSS cannot be
    reset, and would still hold an earlier phase's peak).
    """

    def __init__(self, device):
        self.device, self.bytes = device, 0
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        else:
            self.bytes = _resident_bytes()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.001):
            self.bytes = max(self.bytes, _resident_bytes())

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.bytes = torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            self._thread.join()
            self.bytes = max(self.bytes, _resident_bytes())
        return False

    @property
    def gb(self) -> float:
        return round(self.bytes / 1e9, 3)


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _model(narrow: bool, device, rank: int):
    model = full_size_blip2idc(narrow=narrow).to(device)
    config = TrainConfig(lora=LoraSettings(rank=rank, alpha=2 * rank, dropout=0.05), mixed_precision="auto")
    prepare_model(model, config)
    model.train()
    autocast, scaler = _autocast(device, config.mixed_precision)
    return model, autocast, scaler


def training_step(model, autocast, pairs) -> float:
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=1e-4)
    with autocast:
        loss = model.loss(model.pixel_values(pairs), ["the red circle turned blue"] * len(pairs))
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss)


def lora_memory(narrow: bool, device, ranks) -> dict:
    """Per LoRA rank: the peak while the model is built and cast (``load_peak_gb``: the fp32 weights pass
    through memory before the frozen ones become bf16) and, measured apart, the peak of one training
    step at batch 1 with the cast model resident (``step_peak_gb``: the figure the paper's Table 4 gives)."""
    rows = {}
    for rank in ranks:
        with _Peak(device) as load:
            model, autocast, _ = _model(narrow, device, rank)
        with _Peak(device) as step:
            training_step(model, autocast, _pairs(1))
        with tempfile.TemporaryDirectory() as folder:
            model.save_pretrained(folder)
            adapter = Path(folder, "adapter_model.safetensors").stat().st_size
        rows[rank] = {
            "load_peak_gb": load.gb,
            "step_peak_gb": step.gb,
            "weights_gb": round(sum(p.numel() * p.element_size() for p in model.parameters()) / 1e9, 3),
            "adapter_mb": round(adapter / 1e6, 1),
            "trainable_parameters": sum(p.numel() for p in model.trainable_parameters()),
        }
        del model
        gc.collect()
    return rows


def largest_batch(narrow: bool, device, rank: int, limit: int) -> int:
    """The largest power-of-two batch one training step fits (CUDA only: the CPU does not run out)."""
    model, autocast, _ = _model(narrow, device, rank)
    fits, batch = 0, 1
    while batch <= limit:
        try:
            training_step(model, autocast, _pairs(batch))
            fits, batch = batch, batch * 2
        except torch.OutOfMemoryError:
            break
    return fits


def training_speed(narrow: bool, device, rank: int, batch: int, steps: int) -> float:
    model, autocast, _ = _model(narrow, device, rank)
    pairs = _pairs(batch)
    training_step(model, autocast, pairs)  # warm-up
    _sync(device)
    started = time.perf_counter()
    for _ in range(steps):
        training_step(model, autocast, pairs)
    _sync(device)
    return steps * batch / (time.perf_counter() - started)


def captioning_speed(narrow: bool, device, batch: int, count: int) -> dict:
    """Batched captioning (idc) against one pair at a time in fp16 (the reference code's demo)."""
    from idc_engine.inference.caption import GenerationConfig, caption_pairs

    low = torch.float16 if device.type == "cuda" else torch.float32
    model = full_size_blip2idc(narrow=narrow).to(device, low).eval()
    pairs = _pairs(count)
    caption_pairs(model, pairs[:batch], GenerationConfig(batch_size=batch, max_new_tokens=20))  # warm-up
    _sync(device)
    started = time.perf_counter()
    caption_pairs(model, pairs, GenerationConfig(batch_size=batch, max_new_tokens=20))
    _sync(device)
    batched = count / (time.perf_counter() - started)
    started = time.perf_counter()
    with torch.inference_mode():
        for pair in pairs:
            model.generate(model.pixel_values([pair]), max_new_tokens=20)
    _sync(device)
    return {"batched": batched, "one_at_a_time_fp16": count / (time.perf_counter() - started), "batch": batch}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--narrow", action="store_true", help="toy width and depth (the default without CUDA)")
    parser.add_argument("--ranks", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--steps", type=int, default=10, help="timed training steps")
    parser.add_argument("--batch-limit", type=int, default=64, help="largest batch tried")
    parser.add_argument("--caption-pairs", type=int, default=64)
    parser.add_argument("--out", default="benchmarks/results/full_size.json")
    args = parser.parse_args(argv)
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    narrow = args.narrow or device.type != "cuda"
    results = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or "cpu",
        "narrowed": narrow,
        "torch": torch.__version__,
        "lora_batch1": lora_memory(narrow, device, args.ranks),
    }
    if device.type == "cuda":
        results["largest_batch_rank16"] = largest_batch(narrow, device, 16, args.batch_limit)
    batch = max(1, min(8, results.get("largest_batch_rank16", 8)))
    results["train_pairs_per_s_rank16"] = round(training_speed(narrow, device, 16, batch, args.steps), 2)
    results["train_batch"] = batch
    results["captioning_pairs_per_s"] = captioning_speed(
        narrow, device, min(16, args.caption_pairs), args.caption_pairs
    )

    kind = "narrowed layout (toy widths: not the real figures)" if narrow else "BLIP-2 OPT-2.7b, random weights"
    print(f"{kind} on {results['device']}")
    print(f"{'LoRA rank':<12}{'load peak GB':>14}{'step peak GB (batch 1)':>24}{'adapter MB':>12}{'trainable':>14}")
    for rank, row in results["lora_batch1"].items():
        print(
            f"{rank:<12}{row['load_peak_gb']:>14.2f}{row['step_peak_gb']:>24.2f}{row['adapter_mb']:>12.1f}"
            f"{row['trainable_parameters']:>14,}"
        )
    if "largest_batch_rank16" in results:
        print(f"largest batch that fits (rank 16): {results['largest_batch_rank16']}")
    speed = results["captioning_pairs_per_s"]
    print(f"training: {results['train_pairs_per_s_rank16']:.2f} pairs/s at batch {batch} (rank 16)")
    print(
        f"captioning: {speed['batched']:.2f} pairs/s batched ({speed['batch']}) against "
        f"{speed['one_at_a_time_fp16']:.2f} one at a time"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
