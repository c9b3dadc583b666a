"""Does Syned help the embedded model on scarce shapes-change data? Several seeds, both selection rules.

    nice python benchmarks/syned.py [--train 300 --variations 4 --steps 900 --seeds 3]
                                    [--out benchmarks/results/syned.json]

Not the paper's Table 4: there is no diffusion editor, no LLM and no photograph here (none can run on these
machines); it asks the same question at toy scale. A scarce training set (``--train`` pairs) of
shapes-change scenes with objects smaller than any the embedded checkpoint was pretrained on; the embedded
model adapted with LoRA for the same number of steps (equal compute) in two arms: on the scarce set alone
("real only"), and on it plus ``--variations`` Syned variants per original made from the same instructions
(each pair's own change carried out again on its reference scene: "real + Syned"). Each arm runs once per
seed (the seed drives LoRA's initialisation, the batch order and the variants); the data and test set stay
the same, so the two arms of a seed are a paired comparison.

Selection rule, fixed before running: each run keeps the step of its **lowest validation loss** (the
primary rule, the rule this benchmark first used; it does not look at the metric reported). Every run also
records the step of its best validation CIDEr-D and is scored at that step too (the secondary rule), from
the same training run. Reported per arm: mean and standard deviation over seeds of test CIDEr-D (x100) and
exact change reading; and the paired difference (Syned minus real) with a 95 % t-interval. Where that
interval includes zero the headline says "no measurable gain".

Also the editors' throughput on this machine (variants per second): the shapes-scene editor, the procedural
editor on photographs, and the tiny random InstructPix2Pix pipeline (the real pipeline class, toy size,
random weights: a lower bound on a real checkpoint's cost) at several working sizes; and what else was
running (load average, the busiest other processes), since the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers.utils import logging as hf_logging

from idc_engine.data.manifest import read_manifest
from idc_engine.data.pair import split_pairs
from idc_engine.data.shapes_change import ShapesChangeConfig, generate
from idc_engine.inference.caption import GenerationConfig, caption_idc_pairs
from idc_engine.metrics.baselines import BaselineConfig, mean_sentence
from idc_engine.metrics.report import score_system
from idc_engine.model.config import LoraSettings
from idc_engine.model.loading import load_model
from idc_engine.synth.augment import SynedConfig, augment
from idc_engine.train.checkpoint import load_trainable_state, trainable_state
from idc_engine.train.config import TrainConfig
from idc_engine.train.loop import train

SHIFTED = dict(min_radius=0.10, max_radius=0.12)  # the embedded checkpoint was pretrained on 0.15-0.19
PRIMARY, SECONDARY = "loss", "cider"
ARMS = ("real only", "real + Syned")
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def adapt(train_pairs, val_pairs, steps: int, seed: int, out: Path) -> tuple[object, dict]:
    """One LoRA run; returns the model at its best-CIDEr step and the loss-best weights beside its record."""
    model = load_model("tiny", for_training=True)
    config = TrainConfig(
        lora=LoraSettings(rank=16, alpha=32, dropout=0.0),
        learning_rate=1e-3,
        batch_size=32,
        max_steps=steps,
        warmup_steps=50,
        eval_every=max(steps // 6, 1),
        eval_metric="cider",  # validates loss and CIDEr-D at every evaluation; the loss-best is kept below
        eval_max_pairs=len(val_pairs),
        checkpoint_every=steps,
        seed=seed,
    )
    best_loss = {"value": None, "step": None, "state": None}

    def keep_loss_best(step, logs):
        if "val_loss" in logs and (best_loss["value"] is None or logs["val_loss"] < best_loss["value"]):
            best_loss.update(value=logs["val_loss"], step=step, state=trainable_state(model))

    started = time.perf_counter()
    result = train(
        model, train_pairs, val_pairs, config, out, show_progress=False, on_step=keep_loss_best, overwrite=True
    )
    record = {
        "steps": result.steps,
        "seconds": round(time.perf_counter() - started, 1),
        "best_cider_step": result.best["step"],
        "best_cider_value": round(result.best["value"], 4),
        "best_loss_step": best_loss["step"],
        "best_loss_value": round(best_loss["value"], 4),
        "validation": [
            {
                k: round(v, 4) if isinstance(v, float) else v
                for k, v in h.items()
                if k in ("step", "val_loss", "val_cider")
            }
            for h in result.history
            if "val_loss" in h
        ],
    }
    return model, best_loss["state"], record


def scores(predictions, test_pairs) -> dict:
    system = score_system("run", predictions, test_pairs)
    return {
        c: {"cider": round(100 * system.table[c]["CIDEr-D"], 1), "exact": round(system.reading[c]["exact"], 3)}
        for c in system.table
    }


def summary(values: list[float]) -> dict:
    array = np.asarray(values, dtype=float)
    std = float(array.std(ddof=1)) if len(array) > 1 else 0.0
    return {"mean": round(float(array.mean()), 2), "std": round(std, 2), "values": [round(v, 2) for v in values]}


def paired(syned: list[float], real: list[float]) -> dict:
    difference = np.asarray(syned, float) - np.asarray(real, float)
    n = len(difference)
    mean = float(difference.mean())
    sd = float(difference.std(ddof=1)) if n > 1 else float("nan")
    half = T_975.get(n - 1, 1.96) * sd / np.sqrt(n) if n > 1 else float("nan")
    low, high = mean - half, mean + half
    verdict = "no measurable gain" if low <= 0 <= high else ("Syned helps" if low > 0 else "Syned hurts")
    return {"mean": round(mean, 2), "std": round(sd, 2), "ci95": [round(low, 2), round(high, 2)], "verdict": verdict}


def editor_throughput(seconds: float = 6.0) -> dict:
    """Variants per second, one thread (on a busy 2-core machine a second thread slowed the small pipeline
    up to tenfold: threads waiting on each other)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _editor_throughput(seconds)
    finally:
        torch.set_num_threads(threads)


def _editor_throughput(seconds: float) -> dict:
    from skimage import data

    from idc_engine.synth.ip2p import InstructPix2PixConfig, InstructPix2PixEditor
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
    with tempfile.TemporaryDirectory() as folder:
        build_tiny_ip2p(folder)
        for size, batch in ((64, 1), (64, 8), (128, 1), (256, 1)):
            ip2p = InstructPix2PixEditor(
                folder, InstructPix2PixConfig(num_inference_steps=2, resolution=size, batch_size=batch)
            )
            items = [(photo, "make it snow", "global", s) for s in range(batch)]
            ip2p.edit_batch(items)  # loads the pipeline
            started, done = time.perf_counter(), 0
            while time.perf_counter() - started < seconds:
                ip2p.edit_batch(items)
                done += batch
            figures[f"tiny_ip2p_{size}px_2steps_batch{batch}"] = done / (time.perf_counter() - started)
    return {k: round(v, 2) for k, v in figures.items()}


def _rate(edit, seconds: float) -> float:
    edit(0)
    started, done = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        done += 1
        edit(done)
    return done / (time.perf_counter() - started)


def machine_load() -> dict:
    """The load average and the busiest processes other than this one (the machine is shared)."""
    try:
        listing = subprocess.run(
            ["ps", "-eo", "pid,pcpu,comm,args", "--sort=-pcpu"], capture_output=True, text=True, timeout=10
        ).stdout.splitlines()[1:]
    except (OSError, subprocess.SubprocessError):
        listing = []
    others = []
    for line in listing:
        pid, cpu, command, *args = line.split(None, 3)
        if int(pid) != os.getpid() and float(cpu) >= 5.0:
            others.append({"cpu_percent": float(cpu), "command": command, "args": (args[0] if args else "")[:100]})
    return {"load_average": [round(x, 2) for x in os.getloadavg()], "busiest_other_processes": others[:8]}


def _write_partial(out: str, results: dict) -> None:
    """What is done so far, so that a long run (hours on a busy machine) leaves its finished seeds behind."""
    path = Path(out).with_suffix(".partial.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")


def _resumed(args, fresh: dict) -> tuple[dict, dict]:
    """The partial results of an interrupted run with the same settings, and what this resumption adds to them
    (its own load, since the runs it keeps were timed under another)."""
    path = Path(args.out).with_suffix(".partial.json")
    if not path.exists():
        raise SystemExit(f"--resume: no partial results at {path}")
    saved = json.loads(path.read_text())
    if saved["settings"] != fresh["settings"]:
        raise SystemExit(
            f"--resume: the settings of {path} ({saved['settings']}) differ from these ({fresh['settings']})"
        )
    kept = {arm: saved["runs"].get(arm, []) for arm in ARMS}
    saved.setdefault("resumed", []).append(
        {
            "command": fresh["command"],
            "load_at_resume": fresh["load_at_start"],
            "runs_kept": {arm: [r["seed"] for r in kept[arm]] for arm in ARMS},
        }
    )
    saved.pop("partial", None)
    return saved, kept


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=300, help="scarce training pairs")
    parser.add_argument("--validation", type=int, default=100)
    parser.add_argument("--test", type=int, default=400)
    parser.add_argument("--variations", type=int, default=4, help="Syned variants per training pair")
    parser.add_argument("--steps", type=int, default=900, help="training steps of batch 32, every run")
    parser.add_argument("--data-seed", type=int, default=11, help="shapes-change seed of the data (the demo's is 0)")
    parser.add_argument("--seeds", type=int, default=3, help="runs per arm (training and Syned seeds 0..n-1)")
    parser.add_argument("--out", default="benchmarks/results/syned.json")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the runs already saved in the .partial.json beside --out (same settings) and run only the rest",
    )
    args = parser.parse_args(argv)
    if args.seeds < 2:
        raise SystemExit(f"--seeds must be at least 2 for a standard deviation, got {args.seeds}")
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.disable_progress_bar()
    started = time.perf_counter()
    results = {
        "date": date.today().isoformat(),
        "command": "nice python benchmarks/syned.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
        "load_at_start": machine_load(),
        "settings": {k: v for k, v in vars(args).items() if k != "resume"},
        "selection": {"primary": "lowest validation loss", "secondary": "highest validation CIDEr-D"},
    }
    seeds = list(range(args.seeds))
    runs = {arm: [] for arm in ARMS}
    if args.resume:
        results, runs = _resumed(args, results)
    with tempfile.TemporaryDirectory(prefix="idc-syned-bench-") as work:
        work = Path(work)
        shapes = ShapesChangeConfig(seed=args.data_seed, **SHIFTED)
        pairs = read_manifest(generate(work / "data", args.train, args.test, args.validation, shapes))
        train_pairs, val_pairs = split_pairs(pairs, "train"), split_pairs(pairs, "validation")
        test_pairs = split_pairs(pairs, "test")
        generation = GenerationConfig(batch_size=64)
        before = caption_idc_pairs(load_model("tiny"), test_pairs, generation).captions
        sentence = mean_sentence([p.captions for p in train_pairs], [p.captions for p in val_pairs], BaselineConfig())
        results["baselines"] = {
            "before adaptation": scores(before, test_pairs),
            "mean sentence": scores({p.id: sentence for p in test_pairs}, test_pairs),
        }
        for seed in seeds:
            syned_started = time.perf_counter()
            report = augment(train_pairs, work / f"syned-{seed}", SynedConfig(variations=args.variations, seed=seed))
            synthetic = read_manifest(work / f"syned-{seed}" / "synthetic.jsonl")
            augmentation = {
                "variants": report.variants,
                "accepted": report.accepted,
                "rejected": dict(report.rejected),
                "editors": dict(report.editors),
                "seconds": round(time.perf_counter() - syned_started, 1),
            }
            for arm, training in (("real only", train_pairs), ("real + Syned", train_pairs + synthetic)):
                if any(r["seed"] == seed for r in runs[arm]):
                    print(f"seed {seed}, {arm}: kept from the partial results", flush=True)
                    continue
                print(f"seed {seed}, {arm}: training on {len(training)} pairs", flush=True)
                model, loss_state, record = adapt(training, val_pairs, args.steps, seed, work / f"run-{seed}")
                at_cider = caption_idc_pairs(model, test_pairs, generation).captions
                load_trainable_state(model, loss_state)
                at_loss = caption_idc_pairs(model, test_pairs, generation).captions
                run = {
                    "seed": seed,
                    "train_pairs": len(training),
                    "training": record,
                    "test": {PRIMARY: scores(at_loss, test_pairs), SECONDARY: scores(at_cider, test_pairs)},
                }
                if arm == "real + Syned":
                    run["augmentation"] = augmentation
                runs[arm].append(run)
                _write_partial(args.out, {**results, "runs": runs, "partial": True})
                print(
                    f"  test CIDEr-D at the loss-best step {record['best_loss_step']}: "
                    f"{run['test'][PRIMARY]['all']['cider']}, at the CIDEr-best step {record['best_cider_step']}: "
                    f"{run['test'][SECONDARY]['all']['cider']} ({record['seconds']} s)",
                    flush=True,
                )
    results["runs"] = runs
    table = {}
    for rule in (PRIMARY, SECONDARY):
        per_arm = {}
        for arm in ARMS:
            categories = runs[arm][0]["test"][rule]
            per_arm[arm] = {
                c: {
                    "cider": summary([r["test"][rule][c]["cider"] for r in runs[arm]]),
                    "exact": summary([100 * r["test"][rule][c]["exact"] for r in runs[arm]]),
                }
                for c in categories
            }
        cider = {arm: [r["test"][rule]["all"]["cider"] for r in runs[arm]] for arm in ARMS}
        exact = {arm: [100 * r["test"][rule]["all"]["exact"] for r in runs[arm]] for arm in ARMS}
        table[rule] = {
            "arms": per_arm,
            "syned_minus_real": {
                "cider": paired(cider["real + Syned"], cider["real only"]),
                "exact_percent": paired(exact["real + Syned"], exact["real only"]),
            },
        }
    results["summary"] = table
    results["headline"] = {
        rule: f"{table[rule]['syned_minus_real']['cider']['verdict']}: Syned minus real "
        f"{table[rule]['syned_minus_real']['cider']['mean']:+.1f} CIDEr-D (95 % CI "
        f"{table[rule]['syned_minus_real']['cider']['ci95'][0]:+.1f} to "
        f"{table[rule]['syned_minus_real']['cider']['ci95'][1]:+.1f}, {args.seeds} seeds)"
        for rule in (PRIMARY, SECONDARY)
    }
    results["editors_per_second"] = editor_throughput()
    results["load_at_end"] = machine_load()
    results["seconds"] = round(time.perf_counter() - started, 1)

    for rule, name in ((PRIMARY, "lowest validation loss (primary)"), (SECONDARY, "highest validation CIDEr-D")):
        print(f"\nselected by {name}: test CIDEr-D x100 / exact reading %, mean ± std over {args.seeds} seeds")
        arms = table[rule]["arms"]
        for c in arms["real only"]:
            row = "".join(
                f"   {arm}: {arms[arm][c]['cider']['mean']:6.1f} ± {arms[arm][c]['cider']['std']:4.1f}"
                f" / {arms[arm][c]['exact']['mean']:4.1f} ± {arms[arm][c]['exact']['std']:3.1f}"
                for arm in ARMS
            )
            print(f"{c:<6}{row}")
        print(results["headline"][rule])
    print(f"\neditors, variants per second: {results['editors_per_second']}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    out.with_suffix(".partial.json").unlink(missing_ok=True)
    print(f"-> {out} ({results['seconds']} s)")
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
