"""Turn the photo part of ``idc demo`` into a persistent FiftyOne dataset (``idc-demo-photos``).

Held-out photographs and their edited copies, the reference captions, the ``tiny-photo`` preset's
captions (``idc_caption``, test split) with their confidence, their scores (evaluation key ``demo``),
the preset's attention heatmaps on both slices (``idc_attention``) and its difference regions on the
modified slice (``idc_regions``) land in one grouped dataset.
"""

from __future__ import annotations

import json
from pathlib import Path

DATASET = "idc-demo-photos"


def build_photo_demo_dataset(photo_dir, name: str = DATASET):
    """The dataset of ``idc_engine.demo_photos.run_photo_demo``'s output folder ``photo_dir``."""
    from fiftyone_plugin.captioning import read_caption_file, write_captions
    from fiftyone_plugin.dataset import pairs_to_dataset
    from fiftyone_plugin.evaluation import evaluate_idc_captions
    from fiftyone_plugin.heatmaps import compute_heatmaps
    from idc_engine.data.manifest import read_manifest
    from idc_engine.data.photo_edits import CATEGORIES
    from idc_engine.model.loading import load_model

    photo_dir = Path(photo_dir)
    settings = json.loads((photo_dir / "report.json").read_text())["config"]
    pairs = read_manifest(photo_dir / "data" / "manifest.jsonl")
    # Held-out photographs only; the captioned test pairs first (the App's grid opens on them), kind by kind.
    test = sorted((p for p in pairs if p.split == "test"), key=lambda p: (CATEGORIES.index(p.category), p.id))
    pairs = test + [p for p in pairs if p.split == "validation"]
    dataset = pairs_to_dataset(pairs, name=name, persistent=True, overwrite=True)
    write_captions(
        dataset, "idc_caption", read_caption_file(photo_dir / "predictions.jsonl"), model_spec=settings["model"]
    )
    test = dataset.match_tags("test")
    # The demo's baselines drew on a training split that the dataset leaves out (it shows held-out photos).
    results = evaluate_idc_captions(test, "idc_caption", "demo", baselines=False)
    maps = compute_heatmaps(test, load_model(settings["model"]), caption_field="idc_caption", batch_size=32)
    return dataset, results, maps


def describe(dataset, results, maps) -> str:
    cider = results.metrics["CIDEr-D"] * 100
    return (
        f"FiftyOne dataset {dataset.name!r}: {len(dataset.select_group_slices('modified'))} pairs of held-out "
        f"photographs; test CIDEr-D {cider:.1f} (eval key 'demo'); attention heatmaps of {maps['pairs']} test pairs "
        f"(idc_attention), {maps['regions']} difference regions (idc_regions)\n"
        f"open it in the App:  .venv/bin/fiftyone app launch {dataset.name}"
    )
