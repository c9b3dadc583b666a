"""Saying "no change" when nothing changed: every approach tried, at equal training steps.

    python benchmarks/no_change.py [--steps 2400] [--trainings demo-mix more-unchanged ...] [--preset]
                                   [--work runs/no_change] [--out benchmarks/results/no_change.json]
                                   [--beams 1] [--markdown]

The demo's task: the embedded tiny checkpoint adapted with LoRA (rank 16, lr 1e-3, batch 32; the
demo's recipe until full fine-tuning replaced it) to shapes-change scenes of smaller objects (radius
0.10-0.12, seed 0, 4,000 training pairs unless a training says otherwise), for ``--steps`` optimizer
steps, each run keeping its best step by validation CIDEr-D. Trainings differ in their data (the
training mix) and, where a training names them, in ``finetune`` ("full": every weight, the demo's
recipe now) and ``learning_rate``; every trained model is then captioned greedily and scored under
each decision:

- ``greedy``: captions as generated (greedy decoding; with ``--beams N``, beam search, in an entry of its own);
- ``model``: the model's own probability of no change (the summed probability of the five no-change
  sentences, teacher-forced) against a threshold calibrated on the 200 validation pairs;
- ``model + prior``: that probability and the difference prior of the aligned pair, combined by
  logistic weights and a threshold, both calibrated on the same validation pairs (what idc ships);
- ``prior alone`` (a reference, not shipped): "no change" wherever the difference prior finds none;
- ``linear head`` (baseline training only): a logistic change detector on the frozen image tokens
  the LLM reads, fitted on 3,000 training pairs, its threshold calibrated on validation.

Scored on two test sets of 500 pairs: the demo's own (``demo test``) and a harder one (``hard test``:
a quarter of the changed pairs hold two changes, 30 % of all pairs carry strong non-semantic noise:
a camera shift of up to 2 px, contrast jitter, heavy JPEG or sensor noise). Figures per set: right
on unchanged pairs (true-negative rate), exact on changed pairs, false-change rate, change-level
precision / recall / F1, hallucination rate, CIDEr-D. With ``--preset``: the embedded checkpoint on
its own distribution (radius 0.15-0.19; calibrated on 300 validation pairs of seed 7, tested on the
500 test pairs of seed 0 that benchmarks/review_queue.py uses), and the decision it ships with
(``shipped``: calibrated on its pretraining's own validation pairs, seed 1,000,003).

Trained models are kept under ``--work`` and reused; results of trainings not run this time are kept
in the JSON, so it holds every approach tried. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from idc_engine.data.loading import load_pairs
from idc_engine.data.manifest import read_manifest
from idc_engine.data.pair import split_pairs
from idc_engine.data.shapes_change import TEMPLATES, ShapesChangeConfig, generate
from idc_engine.inference.caption import GenerationConfig, caption_idc_pairs, caption_pairs
from idc_engine.inference.no_change import (
    _image_features,
    choose_threshold,
    decision_probability,
    difference_area,
    features,
    fit_logistic,
    is_no_change,
    no_change_probability,
)
from idc_engine.metrics.captions import score_captions
from idc_engine.metrics.change_level import SHAPES_READER, score_changes
from idc_engine.model.config import LoraSettings
from idc_engine.model.loading import load_model
from idc_engine.train.augment import AugmentConfig
from idc_engine.train.config import TrainConfig
from idc_engine.train.loop import train

NONE = TEMPLATES["none"]
NO_AUGMENTATION = AugmentConfig(blur_probability=0.0, jpeg_probability=0.0)
SMALL = dict(min_radius=0.10, max_radius=0.12)
TRAININGS = {
    "demo-mix": {"about": "the demo's data: 4,000 pairs, one in five unchanged", "shapes": {}, "pairs": 4000},
    "more-unchanged": {
        "about": "4,000 pairs, 40 % unchanged (this run kept its best step by validation pairs of the same mix)",
        "shapes": {"none_share": 0.4},
        "pairs": 4000,
    },
    "hard-negatives": {
        "about": "4,000 pairs, 30 % unchanged, 20 % of all pairs with strong non-semantic noise",
        "shapes": {"none_share": 0.3, "strong_noise_share": 0.2},
        "pairs": 4000,
    },
    "more-pairs": {"about": "12,000 pairs of the demo's mix", "shapes": {}, "pairs": 12000},
    "no-augmentation": {
        "about": "the demo's data, without training's blur / JPEG augmentation of both images",
        "shapes": {},
        "pairs": 4000,
        "augment": False,
    },
    "more-pairs-full": {
        "about": "12,000 pairs of the demo's mix, every weight trained (lr 3e-4) instead of LoRA adapters",
        "shapes": {},
        "pairs": 12000,
        "finetune": "full",
        "learning_rate": 3e-4,
    },
    "more-pairs-no-augmentation": {
        "about": "12,000 pairs of the demo's mix, without training's blur / JPEG augmentation",
        "shapes": {},
        "pairs": 12000,
        "augment": False,
    },
}
TESTS = {
    "demo test": ShapesChangeConfig(seed=0, **SMALL),
    "hard test": ShapesChangeConfig(seed=0, two_change_share=0.25, strong_noise_share=0.3, **SMALL),
}
DECISIONS = ("greedy", "model", "model + prior", "prior alone", "linear head")


def _unchanged(pairs) -> np.ndarray:
    return np.array([not SHAPES_READER.truth(p) for p in pairs])


GREEDY = GenerationConfig(batch_size=64)


def observe(model, pairs, generation: GenerationConfig = GREEDY) -> dict:
    """Captions as generated (no decision), the model's probability of no change, the difference prior."""
    model.config.no_change_threshold, model.config.no_change_weights = None, ()
    _, images, _ = load_pairs(pairs, skip_bad=False)
    captions = caption_pairs(model, images, generation)
    with torch.inference_mode():
        model_says = np.concatenate(
            [
                no_change_probability(model, model.pixel_values(images[s : s + 64]), NONE)
                for s in range(0, len(images), 64)
            ]
        )
    return {
        "pairs": pairs,
        "captions": captions,
        "model_says": model_says,
        "areas": np.array([difference_area(*pair) for pair in images]),
    }


def image_tokens(model, pairs) -> np.ndarray:
    _, images, _ = load_pairs(pairs, skip_bad=False)
    with torch.inference_mode():
        return np.concatenate(
            [
                _image_features(model, model.pixel_values(images[s : s + 128])).flatten(1).float().numpy()
                for s in range(0, len(images), 128)
            ]
        )


def decided_captions(observed: dict, decided: np.ndarray) -> list[str]:
    """As captioning decides: a change caption turned into "no change"; a no-change wording kept."""
    return [NONE[0] if d and not is_no_change(c, NONE) else c for c, d in zip(observed["captions"], decided)]


def score(observed: dict, decided: np.ndarray) -> dict:
    pairs = observed["pairs"]
    captions = decided_captions(observed, decided)
    predictions = {p.id: c for p, c in zip(pairs, captions)}
    level = score_changes(predictions, pairs, SHAPES_READER).summary
    cider = score_captions(predictions, {p.id: p.captions for p in pairs}, ("CIDEr-D",)).corpus["CIDEr-D"]
    keys = ("true_negative_rate", "false_change_rate", "exact_changed", "exact", "precision", "recall", "f1")
    figures = {k: round(level[k], 4) if level[k] is not None else None for k in keys}
    figures["hallucination_rate"] = round(level["hallucination_rate"], 4)
    figures["cider_d"] = round(cider * 100, 1)
    figures["pairs"], figures["unchanged_pairs"] = level["pairs"], level["unchanged_pairs"]
    return figures


def calibrated(validation: dict, prior: bool):
    """(weights, threshold) chosen on the validation observations, as calibrate_no_change chooses them."""
    unchanged = _unchanged(validation["pairs"])
    greedy_none = np.array([is_no_change(c, NONE) for c in validation["captions"]])
    areas = validation["areas"] if prior else None
    weights = fit_logistic(features(validation["model_says"], areas), unchanged) if prior else ()
    probabilities = decision_probability(validation["model_says"], areas, weights)
    threshold, _, _ = choose_threshold(probabilities, unchanged, greedy_none)
    return weights, threshold


def decisions(model, validation: dict, tests: dict[str, dict], head_pairs=None) -> tuple[dict, dict]:
    settings, decided = {}, {name: {} for name in tests}
    for name, observed in tests.items():
        decided[name]["greedy"] = np.zeros(len(observed["pairs"]), bool)
        decided[name]["prior alone"] = observed["areas"] == 0.0
    for decision, prior in (("model", False), ("model + prior", True)):
        weights, threshold = calibrated(validation, prior)
        settings[decision] = {"weights": list(weights), "threshold": threshold}
        for name, observed in tests.items():
            probabilities = decision_probability(observed["model_says"], observed["areas"] if prior else None, weights)
            decided[name][decision] = (
                probabilities >= threshold if threshold is not None else np.zeros(len(probabilities), bool)
            )
    if head_pairs is not None:
        from sklearn.linear_model import LogisticRegression

        x = image_tokens(model, head_pairs)
        mean, spread = x.mean(0), x.std(0) + 1e-6
        head = LogisticRegression(C=0.1, max_iter=3000).fit((x - mean) / spread, _unchanged(head_pairs))

        def head_says(pairs):
            return head.predict_proba((image_tokens(model, pairs) - mean) / spread)[:, 1]

        pairs = validation["pairs"]
        greedy_none = np.array([is_no_change(c, NONE) for c in validation["captions"]])
        unchanged = _unchanged(pairs)
        threshold, _, _ = choose_threshold(head_says(pairs), unchanged, greedy_none)
        settings["linear head"] = {"threshold": threshold, "fitted_on_pairs": len(head_pairs)}
        for name, observed in tests.items():
            says = head_says(observed["pairs"])
            decided[name]["linear head"] = says >= threshold if threshold is not None else np.zeros(len(says), bool)
    return settings, decided


def check_one_path(
    model, observed: dict, settings: dict, decided: np.ndarray, generation: GenerationConfig = GREEDY
) -> bool:
    """The shipped decision, set in the model's config and run by caption_idc_pairs, gives the captions
    this benchmark computed for it."""
    model.config.no_change_captions = NONE
    model.config.no_change_weights = tuple(settings["weights"])
    model.config.no_change_threshold = settings["threshold"]
    try:
        result = caption_idc_pairs(model, observed["pairs"], generation, skip_bad=False)
    finally:
        model.config.no_change_threshold, model.config.no_change_weights = None, ()
    expected = decided_captions(observed, decided)
    return [result.captions[p.id] for p in observed["pairs"]] == expected


def dataset(folder: Path, config: ShapesChangeConfig, train_pairs: int, test_pairs: int, validation_pairs: int):
    stamp = folder / "benchmark.json"
    wanted = {"config": repr(config), "train": train_pairs, "test": test_pairs, "validation": validation_pairs}
    if not (stamp.is_file() and json.loads(stamp.read_text()) == wanted):
        generate(folder, train_pairs, test_pairs, validation_pairs, config)
        stamp.write_text(json.dumps(wanted))
    return read_manifest(folder / "manifest.jsonl")


def run_training(
    name: str, steps: int, work: Path, validation: list, tests: dict, head: bool, generation: GenerationConfig = GREEDY
) -> dict:
    spec = TRAININGS[name]
    shapes = ShapesChangeConfig(seed=0, **SMALL, **spec["shapes"])
    pairs = split_pairs(dataset(work / "data" / name, shapes, spec["pairs"], 0, 0), "train")
    out = work / "runs" / f"{name}-{steps}"
    record_path = out / "model" / "training.json"
    if record_path.is_file() and json.loads(record_path.read_text()).get("steps") == steps:
        model = load_model(str(out / "model"))
        record = json.loads(record_path.read_text())
        training = {
            "steps": record["steps"],
            "best": record["best"],
            "seconds": record.get("elapsed_s"),
            "reused": True,
        }
    else:
        model = load_model("tiny", for_training=True)
        config = TrainConfig(
            finetune=spec.get("finetune", "lora"),
            lora=LoraSettings(rank=16, alpha=32, dropout=0.0),
            learning_rate=spec.get("learning_rate", 1e-3),
            batch_size=32,
            max_steps=steps,
            warmup_steps=50,
            eval_every=300,
            eval_max_pairs=len(validation),
            checkpoint_every=300,
            seed=0,
            augment=AugmentConfig() if spec.get("augment", True) else NO_AUGMENTATION,
        )
        started = time.perf_counter()
        result = train(model, pairs, validation, config, out, overwrite=True)
        training = {"steps": result.steps, "best": result.best, "seconds": round(time.perf_counter() - started, 1)}
    model.eval()
    observed_validation = observe(model, validation, generation)
    observed = {test: observe(model, test_pairs, generation) for test, test_pairs in tests.items()}
    settings, decided = decisions(model, observed_validation, observed, head_pairs=pairs[:3000] if head else None)
    results = {test: {d: score(observed[test], decided[test][d]) for d in decided[test]} for test in tests}
    one_path = check_one_path(
        model, observed["demo test"], settings["model + prior"], decided["demo test"]["model + prior"], generation
    )
    return {
        "about": spec["about"],
        "finetune": spec.get("finetune", "lora"),
        "learning_rate": spec.get("learning_rate", 1e-3),
        "shapes_change": spec["shapes"],
        "train_pairs": spec["pairs"],
        "beams": generation.num_beams,
        "augmentation": spec.get("augment", True),
        "threads": torch.get_num_threads(),  # trainings run days apart, with different threads
        "training": training,
        "decisions": settings,
        "shipped_decision_equals_captioning_path": one_path,
        "results": results,
    }


def run_preset(work: Path) -> dict:
    own = dict(min_radius=0.15, max_radius=0.19)
    validation = split_pairs(
        dataset(work / "data" / "preset-validation", ShapesChangeConfig(seed=7, **own), 0, 0, 300), "validation"
    )
    test = split_pairs(dataset(work / "data" / "preset-test", ShapesChangeConfig(seed=0, **own), 0, 500, 0), "test")
    hard = split_pairs(
        dataset(
            work / "data" / "preset-hard",
            ShapesChangeConfig(seed=0, two_change_share=0.25, strong_noise_share=0.3, **own),
            0,
            500,
            0,
        ),
        "test",
    )
    model = load_model("tiny")
    shipped = {"threshold": model.config.no_change_threshold, "weights": list(model.config.no_change_weights)}
    observed = {"own test": observe(model, test), "own hard test": observe(model, hard)}
    settings, decided = decisions(model, observe(model, validation), observed)
    for name, seen in observed.items():
        if shipped["threshold"] is not None:
            areas = seen["areas"] if len(shipped["weights"]) == 3 else None
            probabilities = decision_probability(seen["model_says"], areas, tuple(shipped["weights"]))
            decided[name]["shipped"] = probabilities >= shipped["threshold"]
    results = {name: {d: score(observed[name], decided[name][d]) for d in decided[name]} for name in observed}
    return {"calibrated_here": settings, "shipped_in_idc_config": shipped, "results": results}


COLUMNS = (
    ("true_negative_rate", "no-change right", "%"),
    ("exact_changed", "changed exact", "%"),
    ("false_change_rate", "false change", "%"),
    ("f1", "change F1", "%"),
    ("recall", "recall", "%"),
    ("hallucination_rate", "hallucinated", "%"),
    ("cider_d", "CIDEr-D", ""),
)


def table(results: dict) -> str:
    lines = [f"{'':<42}" + "".join(f"{label:>16}" for _, label, _ in COLUMNS)]
    for training, entry in results.get("trainings", {}).items():
        for test, by_decision in entry["results"].items():
            for decision, row in by_decision.items():
                cells = "".join(
                    f"{'-' if row[k] is None else (f'{row[k] * 100:.1f}%' if unit else f'{row[k]:.1f}'):>16}"
                    for k, _, unit in COLUMNS
                )
                lines.append(f"{training[:14]:<15}{test:<11}{decision:<16}" + cells)
    for test, by_decision in results.get("preset", {}).get("results", {}).items():
        for decision, row in by_decision.items():
            cells = "".join(
                f"{'-' if row[k] is None else (f'{row[k] * 100:.1f}%' if unit else f'{row[k]:.1f}'):>16}"
                for k, _, unit in COLUMNS
            )
            lines.append(f"{'tiny preset':<15}{test[:10]:<11}{decision:<16}" + cells)
    return "\n".join(lines)


def markdown(results: dict) -> str:
    """The same figures as markdown tables, one per test set (for docs/no_change.md)."""

    def cell(row, key, unit):
        value = row[key]
        return "–" if value is None else (f"{value * 100:.1f} %" if unit else f"{value:.1f}")

    header = "| training | decision | " + " | ".join(label for _, label, _ in COLUMNS) + " |"
    rule = "|---|---|" + "---|" * len(COLUMNS)
    blocks = []
    tests = sorted({t for e in results.get("trainings", {}).values() for t in e["results"]}, key=list(TESTS).index)
    for test in tests:
        lines = [f"**{test}**", "", header, rule]
        for training, entry in results["trainings"].items():
            for decision, row in entry["results"].get(test, {}).items():
                cells = " | ".join(cell(row, k, u) for k, _, u in COLUMNS)
                lines.append(f"| {training} | {decision} | {cells} |")
        blocks.append("\n".join(lines))
    preset = results.get("preset", {}).get("results", {})
    for test, by_decision in preset.items():
        lines = [f"**embedded preset, {test}**", "", header.replace("training", "model"), rule]
        for decision, row in by_decision.items():
            lines.append(f"| tiny | {decision} | " + " | ".join(cell(row, k, u) for k, _, u in COLUMNS) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2400, help="optimizer steps of every training (equal compute)")
    parser.add_argument("--trainings", nargs="*", default=["demo-mix"], choices=list(TRAININGS))
    parser.add_argument("--preset", action="store_true", help="also the embedded checkpoint on its own distribution")
    parser.add_argument("--work", default="runs/no_change", help="data and trained models (reused)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "no_change.json"))
    parser.add_argument("--note", default="", help="what else ran on the machine meanwhile (kept in the JSON)")
    parser.add_argument("--beams", type=int, default=1, help="beam search of the captions (1: greedy, as idc captions)")
    parser.add_argument("--markdown", action="store_true", help="print markdown tables instead of the text table")
    args = parser.parse_args(argv)
    work = Path(args.work)
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.is_file() else {}
    results.setdefault("trainings", {})
    eval_pairs = dataset(work / "data" / "evaluation", ShapesChangeConfig(seed=0, **SMALL), 0, 500, 200)
    validation = split_pairs(eval_pairs, "validation")
    tests = {"demo test": split_pairs(eval_pairs, "test")}
    tests["hard test"] = split_pairs(dataset(work / "data" / "hard", TESTS["hard test"], 0, 500, 0), "test")
    for name in args.trainings:
        print(f"training {name!r} for {args.steps} steps")
        generation = GenerationConfig(batch_size=64, num_beams=args.beams)
        head = name == "demo-mix" and args.beams == 1
        entry = run_training(name, args.steps, work, validation, tests, head=head, generation=generation)
        beams = f", {args.beams} beams" if args.beams > 1 else ""
        results["trainings"][f"{name} ({args.steps} steps{beams})"] = entry
    if args.preset:
        results["preset"] = run_preset(work)
    results["machine"] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "note": args.note or results.get("machine", {}).get("note", ""),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results) if args.markdown else table(results))
    print(f"-> {out}")


if __name__ == "__main__":
    main()
