"""How strong is one constant caption on the real Spot-the-Diff and IER test splits?

    python benchmarks/real_baselines.py [--out benchmarks/results/real_baselines.json]
                                        [--fixtures ../shared/fixtures/idc_formats] [--candidates 300]

Reads only the annotation files (no images): the engine's own readers with ``check_images=False``.
Spot-the-Diff repeats of one img_id are merged (``merge_repeats=True``), as in CLIP4IDC's COCO
test file that published results are scored on; IER pairs are read as released (one per uid).
For each dataset the mean sentence is chosen as the evaluator chooses it (the most frequent
training captions, scored with CIDEr-D on the validation references) and scored on the test
split with BLEU-4, METEOR, ROUGE-L and CIDEr-D (x100). The old rule (60 most frequent captions,
scored on 600 training pairs, seed 0) is scored beside it, and so is the same choice among every
distinct training caption (``all``). Then the constants are printed beside the published rows of the
BLIP2IDC paper's Table 3 (Evennou et al., WACV 2025, arXiv 2412.15939, as transcribed in
../shared/PAPER_RESULTS.md): what a system that ignores the images reaches on the same test splits.
Prints tables and writes JSON.
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
ALL_CAPTIONS = 1_000_000  # more than any training split holds: every distinct caption is a candidate
PAPER = "BLIP2IDC paper, Table 3 (Evennou et al., WACV 2025, arXiv 2412.15939; ../shared/PAPER_RESULTS.md)"
# Published test scores (x100). None: not reported in the table.
TABLE3 = {
    "spot-the-diff": {
        "DUDA": {"BLEU-4": 8.1, "METEOR": 12.5, "CIDEr-D": 34.5},
        "M-VAM": {"BLEU-4": 10.1, "METEOR": 12.4, "CIDEr-D": 38.1},
        "M-VAM + RAF": {"CIDEr-D": 43.5},
        "VACC": {"BLEU-4": 9.7, "METEOR": 12.6, "CIDEr-D": 41.5},
        "VARD-Trans": {"METEOR": 12.5, "CIDEr-D": 30.3},
        "MCCFormers-D": {"BLEU-4": 10.0, "METEOR": 12.4, "CIDEr-D": 43.1},
        "SCORER": {"BLEU-4": 9.4, "METEOR": 13.8, "CIDEr-D": 38.5},
        "SCORER + CBR": {"CIDEr-D": 38.9},
        "CLIP4IDC": {"BLEU-4": 11.6, "METEOR": 14.2, "CIDEr-D": 47.4},
        "BLIP2IDC": {"BLEU-4": 11.4, "METEOR": 13.5, "CIDEr-D": 51.4},
    },
    "ier": {
        "DUDA": {"BLEU-4": 6.5, "METEOR": 12.4, "ROUGE-L": 37.3, "CIDEr-D": 22.8},
        "NCT": {"BLEU-4": 8.1, "METEOR": 15.0, "ROUGE-L": 38.8, "CIDEr-D": 34.2},
        "VARD-Trans": {"BLEU-4": 10.0, "METEOR": 14.8, "ROUGE-L": 39.0, "CIDEr-D": 35.7},
        "MCCFormers-D": {"BLEU-4": 8.3, "METEOR": 14.3, "ROUGE-L": 39.2, "CIDEr-D": 30.2},
        "SCORER": {"BLEU-4": 9.6, "METEOR": 14.6, "ROUGE-L": 39.5, "CIDEr-D": 31.0},
        "SCORER + CBR": {"CIDEr-D": 33.4},
        "CLIP4IDC": {"BLEU-4": 8.2, "METEOR": 14.6, "ROUGE-L": 40.4, "CIDEr-D": 32.2},
        "BLIP2IDC": {"BLEU-4": 17.4, "METEOR": 20.1, "ROUGE-L": 48.5, "CIDEr-D": 74.1},
    },
}


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
    rules = (
        ("new", BaselineConfig(max_candidates=candidates), validation),
        ("old", OLD_RULE, None),
        ("all", BaselineConfig(max_candidates=ALL_CAPTIONS), validation),
    )
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
        for rule in RULES:
            row = entry[rule]
            figures = "".join(f"{row['test'][m]:>9.1f}" for m in MAIN_METRICS)
            print(f"{name:<15}{rule:<5}{figures}  {row['sentence']!r} ({row['chosen_on']}, {row['candidates']} tried)")
    print()
    print(comparison_table(results))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**results, "paper_table3": {"source": PAPER, "test": TABLE3}}, indent=2) + "\n")
    print(f"\n-> {out}")
    return 0


RULES = ("new", "old", "all")


def comparison_table(results: dict) -> str:
    """The published rows of Table 3, and idc's constants below them, on each dataset's test split."""
    lines = [f"beside {PAPER}, test split (x100; - not reported)"]
    for name, entry in results.items():
        if name not in TABLE3:
            continue
        metrics = [m for m in MAIN_METRICS if any(m in row for row in TABLE3[name].values())]
        lines.append(f"{name:<44}" + "".join(f"{m:>9}" for m in metrics))
        rows = sorted(TABLE3[name].items(), key=lambda item: item[1].get("CIDEr-D", 0.0))
        for system, row in rows:
            lines.append(f"  {system:<42}" + "".join(f"{row[m]:>9.1f}" if m in row else f"{'-':>9}" for m in metrics))
        for rule, label in (("new", "300 most frequent"), ("all", "all training captions")):
            row = entry[rule]
            system = f"one sentence, {label} ({row['candidates']})"
            lines.append(f"  {system:<42}" + "".join(f"{row['test'][m]:>9.1f}" for m in metrics))
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
