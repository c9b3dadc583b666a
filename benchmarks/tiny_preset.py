"""Throughput, memory and the concat-vs-two-stream comparison for the tiny preset on this machine.

    python benchmarks/tiny_preset.py --out runs/benchmarks            # speed and memory (~2 min)
    python benchmarks/tiny_preset.py --out runs/benchmarks --encodings 10   # + 10 CPU-min per encoding

Prints a table and writes ``tiny_preset.json`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path

import torch
from transformers.utils import logging as hf_logging

from idc_engine.data.loading import load_pairs
from idc_engine.data.manifest import read_manifest
from idc_engine.data.pair import split_pairs
from idc_engine.data.shapes_change import generate
from idc_engine.inference.caption import GenerationConfig, caption_pairs
from idc_engine.metrics.baselines import mean_sentence
from idc_engine.metrics.captions import score_captions
from idc_engine.model.config import LoraSettings
from idc_engine.model.loading import load_model
from idc_engine.pretrain import PretrainConfig, pretrain_tiny
from idc_engine.train.config import TrainConfig
from idc_engine.train.loop import PairStream, prepare_model


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def training_speed(model_spec: str, pairs, finetune: str, batch_size: int, steps: int) -> float:
    """Pairs per second of optimizer steps (forward, backward, AdamW), after two warm-up steps."""
    model = load_model(model_spec, for_training=True)
    config = TrainConfig(finetune=finetune, lora=LoraSettings(rank=16), batch_size=batch_size)
    prepare_model(model, config)
    model.train()
    _, images, _ = load_pairs(pairs)
    stream = PairStream(pairs, images, config)
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=1e-4)
    for step in range(steps + 2):
        if step == 2:
            started = time.perf_counter()
        pixel_values, captions, _ = stream.batch(model, step * batch_size)
        model.loss(pixel_values, captions).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return steps * batch_size / (time.perf_counter() - started)


def inference_speed(model_spec: str, images, batch_size: int) -> float:
    model = load_model(model_spec)
    caption_pairs(model, images[:batch_size], GenerationConfig(batch_size=batch_size))  # warm-up
    started = time.perf_counter()
    caption_pairs(model, images, GenerationConfig(batch_size=batch_size))
    return len(images) / (time.perf_counter() - started)


def encoding_comparison(minutes: float, data_dir: Path, out: Path) -> dict:
    """Pretrain each encoding from random weights for the same CPU minutes; score the test split."""
    pairs = read_manifest(data_dir / "manifest.jsonl")
    test, train_pairs = split_pairs(pairs, "test"), split_pairs(pairs, "train")
    test, images, _ = load_pairs(test)
    references = {p.id: p.captions for p in test}
    sentence = mean_sentence([p.captions for p in train_pairs])
    baseline = score_captions({p.id: sentence for p in test}, references, ("CIDEr-D",)).corpus["CIDEr-D"]
    results = {"minutes": minutes, "mean_sentence_cider": baseline}
    for encoding in ("concat", "two-stream"):
        checkpoint = pretrain_tiny(
            PretrainConfig(encoding=encoding, minutes=minutes, pairs=8000, validation_pairs=100), out / encoding
        )
        record = json.loads((checkpoint / "pretraining.json").read_text())
        model = load_model(str(checkpoint))
        captions = caption_pairs(model, images, GenerationConfig(batch_size=64))
        cider = score_captions({p.id: c for p, c in zip(test, captions)}, references, ("CIDEr-D",)).corpus["CIDEr-D"]
        results[encoding] = {"cider": cider, "steps": record["steps"], "vs_mean_sentence": cider / baseline}
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/benchmarks")
    parser.add_argument("--model", default="tiny", help="model spec to time (default: the embedded tiny preset)")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--pairs", type=int, default=256, help="pairs captioned for inference speed")
    parser.add_argument("--encodings", type=float, default=0.0, help="CPU minutes per encoding; 0 skips")
    args = parser.parse_args(argv)
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    data_dir = out / "data"
    if not (data_dir / "manifest.jsonl").is_file():
        generate(data_dir, train=max(args.pairs, 2000), test=500, validation=0)
    pairs = read_manifest(data_dir / "manifest.jsonl")
    train_pairs = split_pairs(pairs, "train")[: args.pairs]
    _, images, _ = load_pairs(train_pairs)

    results = {
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "processor": platform.processor() or platform.machine(),
        },
        "model": args.model,
        "batch_size": args.batch_size,
    }
    results["train_pairs_per_s_lora"] = training_speed(args.model, train_pairs, "lora", args.batch_size, args.steps)
    results["train_pairs_per_s_full"] = training_speed(args.model, train_pairs, "full", args.batch_size, args.steps)
    results["infer_pairs_per_s_batched"] = inference_speed(args.model, images, 64)
    results["infer_pairs_per_s_single"] = inference_speed(args.model, images[:64], 1)
    results["peak_rss_mb"] = peak_rss_mb()
    if args.encodings > 0:
        results["encodings"] = encoding_comparison(args.encodings, data_dir, out / "encodings")

    print(f"{'tiny preset on ' + results['machine']['processor']:<44}{'value':>12}")
    for key in (
        "train_pairs_per_s_lora",
        "train_pairs_per_s_full",
        "infer_pairs_per_s_batched",
        "infer_pairs_per_s_single",
        "peak_rss_mb",
    ):
        print(f"{key:<44}{results[key]:>12.1f}")
    if "encodings" in results:
        enc = results["encodings"]
        print(f"\nconcat vs two-stream, {enc['minutes']:g} CPU minutes each from random weights (test CIDEr-D x100)")
        print(f"{'mean sentence':<44}{enc['mean_sentence_cider'] * 100:>12.1f}")
        for encoding in ("concat", "two-stream"):
            row = enc[encoding]
            print(
                f"{encoding + ' (' + str(row['steps']) + ' steps)':<44}{row['cider'] * 100:>12.1f}"
                f"   {row['vs_mean_sentence']:.2f}x mean sentence"
            )
    (out / "tiny_preset.json").write_text(json.dumps(results, indent=2))
    print(f"\n-> {out / 'tiny_preset.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
