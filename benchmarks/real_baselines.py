"""How strong is one constant caption on the real Spot-the-Diff and IER test splits?

    python benchmarks/real_baselines.py [--out benchmarks/results/real_baselines.json]
                                        [--fixtures ../shared/fixtures/idc_formats] [--candidates 300]

Reads only the annotation files (no images): the engine's own readers with ``check_images=False``.
Spot-the-Diff repeats of one img_id are merged (``merge_repeats=True``), as in CLIP4IDC's COCO
test file that published results are scored on; IER pairs are read as released (one per uid).
For each dataset the mean sentence is chosen as the evaluator chooses it (the most frequent
training captions, scored with CIDEr-D on the validation references) and scored on the test
split with BLEU-4, METEOR, ROUGE-L and CIDEr-D (x100). The old rule (60 most frequent captions,
scored on 600 training pairs, seed 0) is scored beside it. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from idc_engine.data.formats import read_format
from idc_engine.metrics.baselines import BaselineConfig, choose_mean_sentence
from idc_engine.metrics.captions import MAIN_METRICS, score_captions

DEFAULT_FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "idc_formats"
DATASETS = {
    # name: (fixture folder, reader options)
    "spot-the-diff": ("spot_the_diff", {"merge_repeats": True}),
    "ier": ("ier", {}),
}
OLD_RULE = BaselineConfig(max_candidates=60, max_pairs=600, seed=0)


def measure(name: str, fixtures: Path, candidates: int) -> dict:
    folder, options = DATASETS[name]
    result = read_format(name, fixtures / folder, fixtures / folder / "images", check_images=False, **options)
    splits = {s: [p for p in result.pairs if p.split == s] for s in ("train", "validation", "test")}
    train = [p.captions for p in splits["train"]]
    validation = [p.captions for p in splits["validation"]] or None
    references = {p.id: p.captions for p in splits["test"]}
    entry = {
        "pairs": {s: len(v) for s, v in splits.items()},
        "reader": f"idc_engine.data.formats.read_format({name!r}, check_images=False, {options})",
    }
    rules = (("new", BaselineConfig(max_candidates=candidates), validation), ("old", OLD_RULE, None))
    for rule, config, selection in rules:
        started = time.perf_counter()
        chosen = choose_mean_sentence(train, selection, config)
        seconds = time.perf_counter() - started
        scores = score_captions({k: chosen.sentence for k in references}, references, MAIN_METRICS)
        entry[rule] = {
            "sentence": chosen.sentence,
            "chosen_on": chosen.split,
            "candidates": chosen.candidates,
            "selection_pairs": chosen.pairs,
            "selection_cider_d": round(chosen.score * 100, 2),
            "choice_seconds": round(seconds, 2),
            "test": {m: round(v * 100, 2) for m, v in scores.corpus.items()},
        }
    return entry


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "real_baselines.json"))
    parser.add_argument("--fixtures", default=str(DEFAULT_FIXTURES), help="folder holding spot_the_diff/ and ier/")
    parser.add_argument(
        "--candidates",
        type=int,
        default=BaselineConfig().max_candidates,
        help="most frequent training captions tried by the new rule",
    )
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    args = parser.parse_args(argv)
    fixtures = Path(args.fixtures)
    results = {name: measure(name, fixtures, args.candidates) for name in args.datasets}

    header = f"{'dataset':<15}{'rule':<5}" + "".join(f"{m:>9}" for m in MAIN_METRICS) + "  sentence (chosen on)"
    print("mean sentence on the test split (x100)")
    print(header)
    for name, entry in results.items():
        for rule in ("new", "old"):
            row = entry[rule]
            figures = "".join(f"{row['test'][m]:>9.1f}" for m in MAIN_METRICS)
            print(f"{name:<15}{rule:<5}{figures}  {row['sentence']!r} ({row['chosen_on']}, {row['candidates']} tried)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\n-> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
