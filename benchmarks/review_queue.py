"""Does ordering the review queue by the model's confidence put wrong captions first?

    python benchmarks/review_queue.py [--model tiny] [--pairs 500] [--out benchmarks/results/review_queue.json]

On shapes-change test pairs, where a caption can be read back and checked (``exactly_right``), the
model captions every pair with its confidence (the value the review queue sorts by). Reported per
distribution: the share of wrong captions; the AUROC of confidence for "caption exactly right" (0.5 =
no better than chance); the share of wrong captions among the first 10 % of the queue (least
confident first) against a random order, whose expected share is the overall wrong rate. Two
distributions: the one the embedded checkpoint was pretrained on (object radius 0.15-0.19) and the
demo's smaller objects (0.10-0.12), where it errs more.

Three signals, each on the captions it goes with: the mean token log-probability of greedy captions
(idc's confidence until issue 15), the log-probability per root token of the same captions, and
what captioning writes now: the captions after the model's "no change" decision, with the
decision's probability in their confidence (``idc_engine.inference.no_change.decide``). Prints a
table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from idc_engine.data.manifest import read_manifest
from idc_engine.data.pair import split_pairs
from idc_engine.data.shapes_change import ShapesChangeConfig, generate
from idc_engine.inference.caption import GenerationConfig, caption_idc_pairs
from idc_engine.metrics.change_reading import exactly_right
from idc_engine.metrics.confidence import queue_figures
from idc_engine.model.loading import load_model

DISTRIBUTIONS = {
    "pretraining objects (radius 0.15-0.19)": dict(min_radius=0.15, max_radius=0.19),
    "demo's smaller objects (radius 0.10-0.12)": dict(min_radius=0.10, max_radius=0.12),
}


def measure(model_spec: str, pairs_count: int, seed: int, work: Path) -> dict:
    model = load_model(model_spec)
    decision = model.config.no_change_threshold
    results = {}
    for name, radii in DISTRIBUTIONS.items():
        folder = work / name.split(" (")[0].replace(" ", "-").replace("'", "")
        manifest = generate(folder, train=0, test=pairs_count, config=ShapesChangeConfig(seed=seed, **radii))
        pairs = split_pairs(read_manifest(manifest), "test")
        model.config.no_change_threshold = None
        greedy = caption_idc_pairs(model, pairs, GenerationConfig(batch_size=64), skip_bad=False)
        model.config.no_change_threshold = decision
        started = time.perf_counter()
        result = caption_idc_pairs(model, pairs, GenerationConfig(batch_size=64), skip_bad=False)
        seconds = time.perf_counter() - started
        right = np.array([exactly_right(p, greedy.captions[p.id]) for p in pairs])
        root = np.array([greedy.confidences[p.id] for p in pairs])
        tokens = np.array([_tokens(model, greedy.captions[p.id]) for p in pairs])
        signals = {
            "mean token log-probability (greedy captions)": (root * np.sqrt(tokens) / tokens, right),
            "log-probability per root token (greedy captions)": (root, right),
        }
        if decision is not None:
            decided_right = np.array([exactly_right(p, result.captions[p.id]) for p in pairs])
            confidences = np.array([result.confidences[p.id] for p in pairs])
            signals["with the no-change decision (what captioning writes)"] = (confidences, decided_right)
        results[name] = {
            signal: {**queue_figures(values, ok), "caption_seconds": round(seconds, 1)}
            for signal, (values, ok) in signals.items()
        }
    return results


def _tokens(model, caption: str) -> int:
    """The caption's tokens and its EOS, as its confidence counts them."""
    return int((model.text_batch([caption])["labels"][0, 1:] != -100).sum())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny", help="model or adapter folder ('tiny': the embedded preset)")
    parser.add_argument("--pairs", type=int, default=500, help="test pairs per distribution")
    parser.add_argument("--seed", type=int, default=0, help="shapes-change seed")
    parser.add_argument("--out", default="benchmarks/results/review_queue.json", help="JSON file to write")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="idc-review-queue-") as work:
        results = measure(args.model, args.pairs, args.seed, Path(work))
    print(f"{'distribution / signal':<70}{'wrong':>8}{'AUROC':>8}{'wrong in first 10%':>20}{'random':>9}")
    for name, signals in results.items():
        print(name)
        for signal, row in signals.items():
            print(
                f"  {signal:<68}{row['wrong_share']:>8.1%}{row['auroc_confidence_for_right']:>8.3f}"
                f"{row['wrong_share_first_10pct_queue']:>20.1%}{row['wrong_share_first_10pct_random']:>9.1%}"
            )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"model": args.model, "seed": args.seed, "results": results}, indent=2) + "\n")
    print(f"-> {out}")


if __name__ == "__main__":
    main()
