"""Do BLIP2IDC's attention maps and regions point at the real change? Measured on shapes-change.

    python benchmarks/localization.py --out runs/benchmarks [--model tiny] [--pairs 300]

For every test pair: the pointing game (is the modified-half map's maximum inside the true box?)
for each map kind, and the best IoU of the regions (from each map, from the pixel difference, and
a random point and random boxes of the true boxes' mean size). Pairs without a change should get no region: their
score is the share that got none. Prints tables and writes ``localization.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from transformers.utils import logging as hf_logging

from idc_engine.attention.localization import best_iou, inside, pointing_hit, random_boxes, summarize, true_boxes
from idc_engine.attention.maps import MAP_KINDS, AttentionConfig, attention_maps
from idc_engine.attention.regions import aligned_change_map, map_regions, pixel_regions
from idc_engine.data.loading import load_pairs
from idc_engine.data.manifest import read_manifest
from idc_engine.data.pair import split_pairs
from idc_engine.data.shapes_change import ShapesChangeConfig, generate
from idc_engine.inference.caption import GenerationConfig, caption_pairs
from idc_engine.model.loading import load_model


def measure(model_spec: str, pairs_count: int, out: Path, seed: int) -> dict:
    data = out / "localization-data"
    if not (data / "manifest.jsonl").is_file():
        generate(data, train=0, test=pairs_count, validation=0, config=ShapesChangeConfig(seed=seed))
    pairs, images, _ = load_pairs(split_pairs(read_manifest(data / "manifest.jsonl"), "test")[:pairs_count])
    model = load_model(model_spec)
    started = time.perf_counter()
    captions = caption_pairs(model, images, GenerationConfig(batch_size=64))
    maps = attention_maps(model, images, AttentionConfig(batch_size=32))
    elapsed = time.perf_counter() - started
    sizes = [(b[2], b[3]) for p in pairs for b in true_boxes(p.metadata)]
    chance = random_boxes(sizes, len(pairs), seed=seed)
    rng = np.random.default_rng(seed)
    rows = []

    def add(pair, method, hit, boxes, regions):
        rows.append(
            {"category": pair.category, "method": method, "hit": hit, "iou": best_iou(boxes, truth), "regions": regions}
        )

    for index, pair in enumerate(pairs):
        truth = true_boxes(pair.metadata)
        caption = captions[index]
        for kind in MAP_KINDS:
            reference_map, modified_map = maps[index].maps[kind]
            both = aligned_change_map(reference_map, modified_map)
            for method, values in ((f"attention:{kind}", modified_map), (f"attention:{kind}+ref", both)):
                regions = map_regions(values, caption)
                hit = pointing_hit(values, truth) if truth else None
                add(pair, method, hit, [r.box for r in regions], len(regions))
        regions = pixel_regions(*images[index], caption)
        add(pair, "pixel difference", None, [r.box for r in regions], len(regions))
        point = rng.random(2)
        hit = any(inside(point, box) for box in truth) if truth else None
        add(pair, "random point / box", hit, [chance[index]], 1)
    return {"model": model_spec, "pairs": len(pairs), "seconds": round(elapsed, 1), "table": summarize(rows)}


def print_table(results: dict):
    table = results["table"]
    categories = ["all changed"] + sorted(c for c in table if c not in ("all changed", "none"))
    methods = list(table["all changed"])
    print(f"pointing game (map maximum inside the true box; +ref: both halves), {results['pairs']} pairs")
    print(f"{'method':<22}" + "".join(f"{c:>13}" for c in categories))
    for method in [m for m in methods if table["all changed"][m]["pointing"] is not None]:
        print(f"{method:<22}" + "".join(f"{table[c][method]['pointing']:>13.2f}" for c in categories))
    print("\nmean best IoU of the regions with the true box (no-change: share of pairs with no region)")
    print(f"{'method':<22}" + "".join(f"{c:>13}" for c in categories + ["none"]))
    for method in methods:
        cells = [table[c][method]["mean_iou"] for c in categories]
        none = table.get("none", {}).get(method, {}).get("no_region")
        print(f"{method:<22}" + "".join(f"{v:>13.2f}" for v in cells) + (f"{none:>13.2f}" if none is not None else ""))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/benchmarks")
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = measure(args.model, args.pairs, out, args.seed)
    print_table(results)
    (out / "localization.json").write_text(json.dumps(results, indent=2))
    print(f"\n-> {out / 'localization.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
