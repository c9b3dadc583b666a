"""`idc demo`: shapes-change end to end on a CPU, with baselines, in a few minutes.

1. write a shapes-change benchmark (train / validation / test) whose objects are smaller than any
   the embedded checkpoint was pretrained on (radius 0.15-0.19 of the side), so that there is
   something for fine-tuning to learn: on its own pretraining distribution the checkpoint is already
   near its best, and LoRA there moves CIDEr-D by about 1 %,
2. load the embedded tiny BLIP2IDC and adapt it to the training split with LoRA,
3. caption the test split, before and after adaptation,
4. score both against the mean-sentence and nearest-neighbour baselines, overall and per change type.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from idc_engine.data.manifest import read_manifest
from idc_engine.data.pair import split_pairs
from idc_engine.data.shapes_change import ShapesChangeConfig, generate
from idc_engine.inference.caption import GenerationConfig, caption_idc_pairs
from idc_engine.metrics.report import evaluate, format_report, score_system
from idc_engine.model.config import LoraSettings
from idc_engine.model.loading import load_model
from idc_engine.train.config import TrainConfig
from idc_engine.train.loop import train


@dataclass
class DemoConfig:
    seed: int = field(default=0, metadata={"help": "shapes-change seed of the demo's pairs"})
    train_pairs: int = field(default=4000, metadata={"help": "training pairs"})
    validation_pairs: int = field(default=200, metadata={"help": "validation pairs (model selection)"})
    test_pairs: int = field(default=500, metadata={"help": "test pairs (scored once, at the end)"})
    min_radius: float = field(
        default=0.10, metadata={"help": "smallest object radius (the checkpoint was pretrained on 0.15-0.19)"}
    )
    max_radius: float = field(default=0.12, metadata={"help": "largest object radius, fraction of the side"})
    model: str = field(default="tiny", metadata={"help": "model to adapt: 'tiny', 'tiny-scratch' or a path"})
    finetune: str = field(default="lora", metadata={"help": "'lora' (as in the paper) or 'full'"})
    minutes: float = field(default=6.0, metadata={"help": "CPU minutes of training"})
    learning_rate: float = field(default=1e-3, metadata={"help": "peak learning rate"})
    lora_rank: int = field(default=16, metadata={"help": "LoRA rank"})
    batch_size: int = field(default=32, metadata={"help": "pairs per step"})
    examples: int = field(default=8, metadata={"help": "example captions printed"})

    def __post_init__(self):
        for name in ("train_pairs", "test_pairs", "batch_size", "lora_rank"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if not self.minutes > 0:
            raise ValueError(f"minutes must be positive, got {self.minutes!r}")


def _benchmark(config: DemoConfig, data_dir: Path) -> Path:
    """Generate the benchmark once; regenerate only when its size or seed changed."""
    shapes = ShapesChangeConfig(seed=config.seed, min_radius=config.min_radius, max_radius=config.max_radius)
    wanted = {
        "train": config.train_pairs,
        "validation": config.validation_pairs,
        "test": config.test_pairs,
        "shapes_change": asdict(shapes),
    }
    stamp = data_dir / "benchmark.json"
    manifest = data_dir / "manifest.jsonl"
    if manifest.is_file() and stamp.is_file() and json.loads(stamp.read_text()) == json.loads(json.dumps(wanted)):
        return manifest
    manifest = generate(data_dir, config.train_pairs, config.test_pairs, config.validation_pairs, shapes)
    stamp.write_text(json.dumps(wanted))
    return manifest


def run_demo(config: DemoConfig, out_dir) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    clock = {"start": time.perf_counter()}
    print(
        f"[1/4] shapes-change: {config.train_pairs} train, {config.validation_pairs} validation, "
        f"{config.test_pairs} test pairs (seed {config.seed}), objects of radius {config.min_radius:g}-"
        f"{config.max_radius:g}"
    )
    pairs = read_manifest(_benchmark(config, out_dir / "data"))
    train_pairs, val_pairs = split_pairs(pairs, "train"), split_pairs(pairs, "validation")
    test_pairs = split_pairs(pairs, "test")
    clock["data"] = time.perf_counter()

    model = load_model(config.model, for_training=True)
    generation = GenerationConfig(batch_size=64)
    before = caption_idc_pairs(model, test_pairs, generation, skip_bad=False).captions
    print(f"[2/4] {config.finetune} fine-tuning of {config.model!r} for {config.minutes:g} CPU minutes")
    train_config = TrainConfig(
        finetune=config.finetune,
        lora=LoraSettings(rank=config.lora_rank, alpha=2 * config.lora_rank, dropout=0.0),
        learning_rate=config.learning_rate,
        batch_size=config.batch_size,
        max_steps=int(config.minutes * 60 * 20),  # an upper bound; the time budget ends training
        time_budget_s=config.minutes * 60,
        warmup_steps=50,
        eval_every=300,
        eval_max_pairs=config.validation_pairs,
        checkpoint_every=300,
        seed=config.seed,
    )
    result = train(model, train_pairs, val_pairs, train_config, out_dir / "run", overwrite=True)
    clock["train"] = time.perf_counter()

    print(f"[3/4] captioning {len(test_pairs)} test pairs")
    after = caption_idc_pairs(model, test_pairs, generation, skip_bad=False)
    predictions = after.captions
    with (out_dir / "predictions.jsonl").open("w") as handle:
        for pair in test_pairs:
            record = {
                "id": pair.id,
                "caption": predictions[pair.id],
                "confidence": round(after.confidences[pair.id], 5),
            }
            handle.write(json.dumps(record) + "\n")
    clock["caption"] = time.perf_counter()

    print("[4/4] scoring against the references and the baselines")
    report = evaluate(test_pairs, predictions, train_pairs, validation_pairs=val_pairs)
    report.systems["before_adaptation"] = score_system(
        "before_adaptation",
        before,
        test_pairs,
        note=f"{config.model!r} as loaded, before the demo's training",
    )
    clock["evaluate"] = time.perf_counter()
    text = format_report(report)
    print()
    print(text)
    print("\nexamples (test split):")
    shown = {}
    for pair in test_pairs:
        if len(shown) >= config.examples:
            break
        if pair.category not in {p.category for p in shown.values()} or len(shown) >= 5:
            shown[pair.id] = pair
    for pair in shown.values():
        print(
            f"  [{pair.category}] predicted: {predictions[pair.id]!r}\n  {'':>{len(pair.category) + 2}} reference: "
            f"{pair.captions[0]!r}"
        )
    timings = {
        "data_s": round(clock["data"] - clock["start"], 1),
        "train_s": round(clock["train"] - clock["data"], 1),
        "caption_s": round(clock["caption"] - clock["train"], 1),
        "evaluate_s": round(clock["evaluate"] - clock["caption"], 1),
        "total_s": round(clock["evaluate"] - clock["start"], 1),
    }
    model_row = report.systems["model"].table
    base_row = report.systems["mean_sentence"].table
    summary = {
        "config": asdict(config),
        "training": {"steps": result.steps, "stopped": result.stopped, "best": result.best},
        "cider_vs_mean_sentence": {
            c: model_row[c]["CIDEr-D"] / base_row[c]["CIDEr-D"] if base_row[c]["CIDEr-D"] else None for c in model_row
        },
        "timings": timings,
        "report": report.to_dict(),
    }
    (out_dir / "report.json").write_text(json.dumps(summary, indent=2))
    (out_dir / "report.txt").write_text(text + "\n")
    print(f"\ntimings: {timings}\nreport -> {out_dir / 'report.json'}")
    return summary
