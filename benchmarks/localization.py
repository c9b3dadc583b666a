"""Do BLIP2IDC's attention maps and regions point at the real change? Measured where the true box is known.

    python benchmarks/localization.py --out runs/benchmarks [--model tiny] [--pairs 300]
    python benchmarks/localization.py --benchmark photo-edits --out runs/benchmarks   # tiny-photo, held-out photos

For every test pair: the pointing game (is the map's maximum inside the true box?) for each map kind
read three ways (the modified half; ``:ref`` the reference half alone, which for a model with the
``difference`` encoding is the difference image; ``+ref`` both halves in the modified image's frame),
and the best IoU of the regions (from each map, from the pixel difference, and a random point and
random boxes of the true boxes' mean size). Pairs without a change should get no region: their score
is the share that got none. On photo-edits only the kinds of edit that have a box (add, text, color,
remove, local) and the unchanged pairs are scored. Prints tables and writes ``localization.json``
(``localization_photo.json`` for photo-edits, ``--name`` for another model).
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
from idc_engine.attention.maps import MAP_KINDS, AttentionConfig, attention_maps, resize_map
from idc_engine.attention.regions import aligned_change_map, map_regions, pixel_regions
from idc_engine.data.loading import load_pairs
from idc_engine.data.manifest import read_manifest
from idc_engine.data.pair import split_pairs
from idc_engine.data.photo_edits import PhotoEditsConfig
from idc_engine.data.photo_edits import generate as generate_photo_edits
from idc_engine.data.shapes_change import ShapesChangeConfig, generate
from idc_engine.inference.caption import GenerationConfig, caption_pairs
from idc_engine.model.loading import load_model

BENCHMARKS = {"shapes-change": "tiny", "photo-edits": "tiny-photo"}  # and the model each is read with by default


def test_pairs(benchmark: str, pairs_count: int, out: Path, seed: int) -> list:
    """The scored test pairs: made once per benchmark, pair count and seed."""
    data = out / f"localization-data-{benchmark}-{seed}-{pairs_count}"
    if not (data / "manifest.jsonl").is_file():
        if benchmark == "photo-edits":
            generate_photo_edits(data, 0, pairs_count, 0, PhotoEditsConfig(seed=seed), workers=2)
        else:
            generate(data, train=0, test=pairs_count, validation=0, config=ShapesChangeConfig(seed=seed))
    pairs = split_pairs(read_manifest(data / "manifest.jsonl"), "test")[:pairs_count]
    # A whole-image edit (style, global look, background) has no box to point at.
    return [p for p in pairs if p.category == "none" or true_boxes(p.metadata)]


def measure(model_spec: str, pairs_count: int, out: Path, seed: int, benchmark: str = "shapes-change") -> dict:
    pairs, images, _ = load_pairs(test_pairs(benchmark, pairs_count, out, seed))
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
            reference_alone = resize_map(reference_map, modified_map.shape)
            for method, values in (
                (f"attention:{kind}", modified_map),
                (f"attention:{kind}:ref", reference_alone),
                (f"attention:{kind}+ref", both),
            ):
                regions = map_regions(values, caption)
                hit = pointing_hit(values, truth) if truth else None
                add(pair, method, hit, [r.box for r in regions], len(regions))
        regions = pixel_regions(*images[index], caption)
        add(pair, "pixel difference", None, [r.box for r in regions], len(regions))
        point = rng.random(2)
        hit = any(inside(point, box) for box in truth) if truth else None
        add(pair, "random point / box", hit, [chance[index]], 1)
    return {
        "benchmark": benchmark,
        "model": model_spec,
        "encoding": model.config.encoding,
        "pairs": len(pairs),
        "seconds": round(elapsed, 1),
        "table": summarize(rows),
    }


def print_table(results: dict):
    table = results["table"]
    categories = ["all changed"] + sorted(c for c in table if c not in ("all changed", "none"))
    methods = list(table["all changed"])
    print(
        f"{results['model']} on {results.get('benchmark', 'shapes-change')}: pointing game (map maximum inside the "
        f"true box; :ref the reference half alone, +ref both halves), {results['pairs']} pairs"
    )
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
    parser.add_argument("--benchmark", choices=list(BENCHMARKS), default="shapes-change")
    parser.add_argument("--model", default=None, help="default: tiny on shapes-change, tiny-photo on photo-edits")
    parser.add_argument("--pairs", type=int, default=300, help="test pairs generated (unscored kinds are dropped)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--name", default=None, help="the JSON's name without .json (default: localization, localization_photo)"
    )
    args = parser.parse_args(argv)
    if args.name is None and args.model not in (None, BENCHMARKS[args.benchmark]):
        # The default names hold the published figures of each benchmark's embedded model.
        parser.error(f"--name is needed for --model {args.model!r} (the default file is the embedded model's)")
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = measure(args.model or BENCHMARKS[args.benchmark], args.pairs, out, args.seed, args.benchmark)
    print_table(results)
    name = (args.name or ("localization" if args.benchmark == "shapes-change" else "localization_photo")) + ".json"
    (out / name).write_text(json.dumps(results, indent=2))
    print(f"\n-> {out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
