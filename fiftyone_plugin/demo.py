"""Turn the output of ``idc demo`` into a persistent FiftyOne dataset (``idc-demo``).

    python -m fiftyone_plugin.demo --demo-dir runs/demo

Images, reference captions, the demo model's captions (``idc_caption``, test split) with their
confidence, their scores (evaluation key ``demo``), the model's attention heatmaps on both slices
(``idc_attention``) and its difference regions on the modified slice (``idc_regions``) land in one
grouped dataset; the command to open it is printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DATASET = "idc-demo"


def build_demo_dataset(demo_dir, name: str = DATASET):
    from fiftyone_plugin.captioning import read_caption_file, write_captions
    from fiftyone_plugin.dataset import pairs_to_dataset
    from fiftyone_plugin.evaluation import evaluate_idc_captions
    from fiftyone_plugin.heatmaps import compute_heatmaps
    from idc_engine.data.manifest import read_manifest
    from idc_engine.model.loading import load_model

    demo_dir = Path(demo_dir)
    model_dir = demo_dir / "run" / "model"  # the trained model (full checkpoint or adapter) that wrote the captions
    pairs = read_manifest(demo_dir / "data" / "manifest.jsonl")
    dataset = pairs_to_dataset(pairs, name=name, persistent=True, overwrite=True)
    write_captions(dataset, "idc_caption", read_caption_file(demo_dir / "predictions.jsonl"), model_spec=model_dir)
    test = dataset.match_tags("test")
    results = evaluate_idc_captions(test, "idc_caption", "demo")
    model = load_model(str(model_dir))
    maps = compute_heatmaps(test, model, caption_field="idc_caption", batch_size=32)
    return dataset, results, maps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo-dir", default="runs/demo", help="the --out folder of `idc demo`")
    parser.add_argument("--name", default=DATASET, help="dataset name")
    args = parser.parse_args(argv)
    dataset, results, maps = build_demo_dataset(args.demo_dir, args.name)
    cider = results.metrics["CIDEr-D"] * 100
    level = results.change_level or {}
    right = level.get("true_negative_rate")
    unchanged = f", unchanged pairs right {right:.0%} (demo_false_change)" if right is not None else ""
    print(
        f"FiftyOne dataset {dataset.name!r}: {len(dataset.select_group_slices())} samples in "
        f"{len(dataset.select_group_slices('modified'))} pair groups; test CIDEr-D {cider:.1f}{unchanged} "
        f"(eval key 'demo'); attention heatmaps of {maps['pairs']} test pairs on both slices (idc_attention), "
        f"{maps['regions']} difference regions (idc_regions)"
    )
    print(f"open it in the App:  .venv/bin/fiftyone app launch {dataset.name}")
    photos = Path(args.demo_dir) / "photos"
    if (photos / "predictions.jsonl").is_file():  # the photo part of the demo (idc_engine.demo_photos)
        from fiftyone_plugin.demo_photos import build_photo_demo_dataset, describe

        print(describe(*build_photo_demo_dataset(photos)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
