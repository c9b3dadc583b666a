"""Does Syned help? The paper's Table 4 in miniature, on the embedded default, whatever the sign.

    python benchmarks/syned.py [--train 300 --variations 4 --steps 900 --select cider]
                               [--out benchmarks/results/syned.json]

A scarce training set (``--train`` pairs) of shapes-change scenes whose objects are smaller than any
the embedded checkpoint was pretrained on; the embedded model adapted with LoRA for the same number
of steps (equal compute) twice, each run keeping its best step by validation CIDEr-D (``--select``):
on the scarce set alone, and on it plus ``--variations`` Syned variants per original, made from the
same instructions (each pair's own change carried out again on its reference scene). Both scored on
the same test pairs: CIDEr-D (x100) and exact change reading per category, beside the model before
adaptation and the mean sentence. Also the editors' throughput on this machine: the shapes-scene
editor, the procedural editor on photographs, and a tiny random InstructPix2Pix pipeline (the real
pipeline class at toy size). Prints tables and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers.utils import logging as hf_logging

from idc_engine.data.manifest import read_manifest
from idc_engine.data.pair import split_pairs
from idc_engine.data.shapes_change import ShapesChangeConfig, generate
from idc_engine.inference.caption import GenerationConfig, caption_idc_pairs
from idc_engine.metrics.report import evaluate, score_system
from idc_engine.model.config import LoraSettings
from idc_engine.model.loading import load_model
from idc_engine.synth.augment import SynedConfig, augment
from idc_engine.train.config import TrainConfig
from idc_engine.train.loop import train

SHIFTED = dict(min_radius=0.10, max_radius=0.12)  # the embedded checkpoint was pretrained on 0.15-0.19


def adapt(train_pairs, val_pairs, steps: int, seed: int, out: Path, select: str):
    model = load_model("tiny", for_training=True)
    config = TrainConfig(
        lora=LoraSettings(rank=16, alpha=32, dropout=0.0),
        learning_rate=1e-3,
        batch_size=32,
        max_steps=steps,
        warmup_steps=50,
        eval_every=max(steps // 6, 1),
        eval_metric=select,
        eval_max_pairs=len(val_pairs),
        checkpoint_every=steps,
        seed=seed,
    )
    started = time.perf_counter()
    result = train(model, train_pairs, val_pairs, config, out, show_progress=False, overwrite=True)
    return model, {"steps": result.steps, "best": result.best, "seconds": round(time.perf_counter() - started, 1)}


def editor_throughput(seconds: float = 8.0) -> dict:
    from skimage import data

    from idc_engine.synth.procedural import ProceduralEditor
    from idc_engine.synth.shapes import edit_shapes_scene
    from idc_engine.synth.tiny_ip2p import build_tiny_ip2p

    figures = {}
    scene = [{"color": "red", "shape": "circle", "x": 0.3, "y": 0.3, "r": 0.11}]
    scene.append({"color": "blue", "shape": "square", "x": 0.7, "y": 0.6, "r": 0.11})
    figures["shapes_scene_64px"] = _rate(lambda s: edit_shapes_scene(scene, "color", s), seconds)
    photo = Image.fromarray(data.astronaut()).resize((256, 256))
    editor = ProceduralEditor()
    figures["procedural_256px"] = _rate(lambda s: editor.edit(photo, None, None, s), seconds)
    from idc_engine.synth.ip2p import InstructPix2PixConfig, InstructPix2PixEditor

    with tempfile.TemporaryDirectory() as folder:
        build_tiny_ip2p(folder)
        small = photo.resize((64, 64))
        for batch in (1, 8):
            ip2p = InstructPix2PixEditor(
                folder, InstructPix2PixConfig(num_inference_steps=2, resolution=None, batch_size=batch)
            )
            items = [(small, "make it snow", "global", s) for s in range(batch)]
            ip2p.edit_batch(items)  # loads the pipeline
            started, done = time.perf_counter(), 0
            while time.perf_counter() - started < seconds:
                ip2p.edit_batch(items)
                done += batch
            figures[f"tiny_ip2p_64px_2steps_batch{batch}"] = done / (time.perf_counter() - started)
    return {k: round(v, 1) for k, v in figures.items()}


def _rate(edit, seconds: float) -> float:
    edit(0)
    started, done = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        done += 1
        edit(done)
    return done / (time.perf_counter() - started)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=300, help="scarce training pairs")
    parser.add_argument("--validation", type=int, default=100)
    parser.add_argument("--test", type=int, default=400)
    parser.add_argument("--variations", type=int, default=4, help="Syned variants per training pair")
    parser.add_argument("--steps", type=int, default=900, help="training steps of batch 32, both runs")
    parser.add_argument("--seed", type=int, default=11, help="shapes-change seed (the demo's is 0)")
    parser.add_argument(
        "--select",
        choices=["cider", "loss"],
        default="cider",
        help="validation measure that picks the step each run keeps (its best)",
    )
    parser.add_argument("--out", default="benchmarks/results/syned.json")
    args = parser.parse_args(argv)
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.disable_progress_bar()
    results = {
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
        "settings": vars(args),
    }
    with tempfile.TemporaryDirectory(prefix="idc-syned-bench-") as work:
        work = Path(work)
        shapes = ShapesChangeConfig(seed=args.seed, **SHIFTED)
        pairs = read_manifest(generate(work / "data", args.train, args.test, args.validation, shapes))
        train_pairs, val_pairs = split_pairs(pairs, "train"), split_pairs(pairs, "validation")
        test_pairs = split_pairs(pairs, "test")
        started = time.perf_counter()
        report = augment(train_pairs, work / "syned", SynedConfig(variations=args.variations, seed=args.seed))
        synthetic = read_manifest(work / "syned" / "synthetic.jsonl")
        results["augmentation"] = {
            "variants": report.variants,
            "accepted": report.accepted,
            "rejected": dict(report.rejected),
            "skipped_sources": len(report.skipped_sources),
            "seconds": round(time.perf_counter() - started, 1),
        }
        generation = GenerationConfig(batch_size=64)
        before = caption_idc_pairs(load_model("tiny"), test_pairs, generation).captions
        runs = {}
        for name, training in (("real only", train_pairs), ("real + Syned", train_pairs + synthetic)):
            model, record = adapt(
                training, val_pairs, args.steps, args.seed, work / name.replace(" ", "_"), args.select
            )
            runs[name] = (caption_idc_pairs(model, test_pairs, generation).captions, record)
            results.setdefault("training", {})[name] = {**record, "train_pairs": len(training)}
    report = evaluate(test_pairs, runs["real only"][0], train_pairs, validation_pairs=val_pairs, nearest=False)
    report.systems["real only"] = report.systems.pop("model")
    report.systems["real + Syned"] = score_system("real + Syned", runs["real + Syned"][0], test_pairs)
    report.systems["before adaptation"] = score_system("before adaptation", before, test_pairs)
    order = ["real + Syned", "real only", "before adaptation", "mean_sentence"]
    categories = list(report.systems["real only"].table)
    table = {
        name: {
            c: {
                "cider": round(100 * report.systems[name].table[c]["CIDEr-D"], 1),
                "exact": round(report.systems[name].reading[c]["exact"], 3),
            }
            for c in categories
        }
        for name in order
    }
    results["test"] = table
    results["editors_per_second"] = editor_throughput()

    print(f"test CIDEr-D x100 / exact reading, {len(test_pairs)} pairs; {args.train} real training pairs")
    print(f"{'category':<10}" + "".join(f"{name:>22}" for name in order))
    for c in categories:
        row = "".join(f"{table[n][c]['cider']:>13.1f} / {table[n][c]['exact']:>5.0%}" for n in order)
        print(f"{c:<10}{row}")
    print(f"\naugmentation: {results['augmentation']}")
    print(f"training: {results['training']}")
    print(f"editors, variants per second: {results['editors_per_second']}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
