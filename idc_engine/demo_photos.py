"""The photo part of ``idc demo``: the embedded ``tiny-photo`` preset on photographs it never saw.

No training: photo-edits pairs (seed 0) cut from the held-out photographs are captioned by the preset
as it ships, scored against the mean-sentence and nearest-neighbour baselines (which draw on a small
training split of the training photographs), and every caption is read back into (kind, colour,
place). Takes a minute or two on a CPU; ``fiftyone_plugin.demo_photos`` turns the result into the
``idc-demo-photos`` dataset.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from idc_engine.data.manifest import read_manifest
from idc_engine.data.pair import split_pairs
from idc_engine.data.photo_edits import PhotoEditsConfig, generate
from idc_engine.inference.caption import GenerationConfig, caption_idc_pairs
from idc_engine.metrics.photo_reading import format_reading, reading_accuracy
from idc_engine.metrics.report import evaluate, format_report
from idc_engine.model.loading import load_model


@dataclass
class PhotoDemoConfig:
    seed: int = field(default=0, metadata={"help": "photo-edits seed of the demo's pairs"})
    train_pairs: int = field(default=600, metadata={"help": "training pairs the baselines draw on"})
    validation_pairs: int = field(default=60, metadata={"help": "validation pairs (choose the mean sentence)"})
    test_pairs: int = field(default=150, metadata={"help": "test pairs, from the held-out photographs"})
    model: str = field(default="tiny-photo", metadata={"help": "model that captions the photographs"})
    examples: int = field(default=9, metadata={"help": "example captions printed"})

    def __post_init__(self):
        for name in ("train_pairs", "test_pairs"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")


def _benchmark(config: PhotoDemoConfig, data_dir: Path) -> Path:
    """Generate the pairs once; again only when their sizes or seed changed."""
    photo = PhotoEditsConfig(seed=config.seed)
    wanted = {
        "train": config.train_pairs,
        "validation": config.validation_pairs,
        "test": config.test_pairs,
        "photo_edits": asdict(photo),
    }
    wanted = json.loads(json.dumps(wanted))
    stamp, manifest = data_dir / "benchmark.json", data_dir / "manifest.jsonl"
    if manifest.is_file() and stamp.is_file() and json.loads(stamp.read_text()) == wanted:
        return manifest
    manifest = generate(data_dir, config.train_pairs, config.test_pairs, config.validation_pairs, photo, workers=2)
    stamp.write_text(json.dumps(wanted))
    return manifest


def run_photo_demo(config: PhotoDemoConfig, out_dir) -> dict:
    """Caption held-out photographs with the preset; score, print and save the tables."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    print(
        f"[photos] photo-edits: {config.test_pairs} test pairs from held-out photographs, captioned by "
        f"{config.model!r} as it ships (no training)"
    )
    pairs = read_manifest(_benchmark(config, out_dir / "data"))
    train_pairs, val_pairs, test_pairs = (split_pairs(pairs, s) for s in ("train", "validation", "test"))
    model = load_model(config.model)
    result = caption_idc_pairs(model, test_pairs, GenerationConfig(batch_size=64), skip_bad=False)
    with (out_dir / "predictions.jsonl").open("w") as handle:
        for pair in test_pairs:
            record = {"id": pair.id, "caption": result.captions[pair.id]}
            record["confidence"] = round(result.confidences[pair.id], 5)
            handle.write(json.dumps(record) + "\n")
    report = evaluate(test_pairs, result.captions, train_pairs, validation_pairs=val_pairs)
    readings = {name: reading_accuracy(s.predictions, test_pairs) for name, s in report.systems.items()}
    text = format_report(report) + "\n\n" + format_reading(readings)
    print()
    print(text)
    print("\nexamples (held-out photographs):")
    shown: dict[str, object] = {}
    for pair in test_pairs:
        if len(shown) < config.examples and pair.category not in shown:
            shown[pair.category] = pair
    for category, pair in shown.items():
        print(
            f"  [{category}] predicted: {result.captions[pair.id]!r}\n  {'':>{len(category) + 2}} reference: "
            f"{pair.captions[0]!r}"
        )
    summary = {
        "config": asdict(config),
        "seconds": round(time.perf_counter() - started, 1),
        "reading": readings,
        "report": report.to_dict(),
    }
    (out_dir / "report.json").write_text(json.dumps(summary, indent=2))
    (out_dir / "report.txt").write_text(text + "\n")
    print(f"\nphotos: {summary['seconds']} s; report -> {out_dir / 'report.json'}")
    return summary
