"""Where a photo model loses the place of an edit: linear probes on its features.

    python benchmarks/photo_place_probe.py                       # the embedded tiny-photo (~15 s once the pairs exist)
    python benchmarks/photo_place_probe.py --model runs/x/model  # any checkpoint with the difference encoding

On the added shapes of photo-edits' training split (the benchmark's pairs, seed 0), a logistic
regression is fitted to three quarters of the pairs and scored on the last quarter, predicting the
shape's place (one of nine cells) from

- ``vit_token``: the one ViT output token of the difference half that differs most from that half's
  median token (the change), i.e. whether the patch features themselves say where they are;
- ``qformer_mean``: the mean of the Q-Former's query outputs, all the language model is given to read.

If the first is near chance, the vision encoder does not know where its patches are; if only the
second is, the Q-Former pools the place away. Writes ``photo_place_probe.json`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from transformers.utils import logging as hf_logging

from idc_engine.data.loading import load_pair
from idc_engine.data.manifest import read_manifest
from idc_engine.data.pair import split_pairs
from idc_engine.model.loading import load_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from photo_preset import benchmark_data, pretraining_record  # noqa: E402  (same pairs and record as the benchmark)


def features(model, pairs, batch: int = 100) -> dict[str, np.ndarray]:
    if model.config.encoding != "difference" or model.config.orientation != "vertical":
        raise ValueError(
            f"model: the probe reads the difference half of a vertical pair, got encoding "
            f"{model.config.encoding!r}, orientation {model.config.orientation!r}"
        )
    base, out = model.base, {"vit_token": [], "qformer_mean": []}
    with torch.no_grad():
        for start in range(0, len(pairs), batch):
            chunk = pairs[start : start + batch]
            pixels = model.pixel_values([load_pair(p) for p in chunk]).to(model.device)
            tokens = base.vision_model(pixel_values=pixels).last_hidden_state
            patches = tokens[:, 1:]
            half = patches[:, : patches.shape[1] // 2]  # the difference image, above the edited one
            change = (half - half.median(dim=1, keepdim=True).values).norm(dim=-1).argmax(dim=1)
            out["vit_token"].append(half[torch.arange(len(chunk)), change].float().numpy())
            queries = base.query_tokens.expand(len(chunk), -1, -1)
            pooled = base.qformer(query_embeds=queries, encoder_hidden_states=tokens, return_dict=True)
            out["qformer_mean"].append(pooled.last_hidden_state.mean(dim=1).float().numpy())
    return {name: np.concatenate(parts) for name, parts in out.items()}


def probe(x: np.ndarray, y: np.ndarray) -> float:
    cut = len(y) * 3 // 4
    x = (x - x[:cut].mean(0)) / (x[:cut].std(0) + 1e-6)  # scaled as the fitted rows are: nothing of the held-out
    return float(LogisticRegression(max_iter=1000).fit(x[:cut], y[:cut]).score(x[cut:], y[cut:]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny-photo", help="model spec (default: the embedded photo preset)")
    parser.add_argument("--data", default="runs/benchmarks/photo-edits", help="benchmark folder (made if missing)")
    parser.add_argument("--pairs", type=int, default=1000, help="added shapes probed")
    parser.add_argument("--out", default="benchmarks/results", help="folder of the JSON")
    parser.add_argument("--name", default="photo_place_probe", help="JSON file name, without .json")
    args = parser.parse_args(argv)
    hf_logging.set_verbosity_error()
    started = time.perf_counter()
    pairs = split_pairs(read_manifest(benchmark_data(Path(args.data), 4000, 200, 600, 0)), "train")
    adds = [p for p in pairs if p.metadata["edit"]["kind"] == "add"][: args.pairs]
    if len(adds) < 100:
        raise ValueError(f"--data {args.data}: only {len(adds)} added shapes in its train split, 100 needed")
    places = sorted({p.metadata["edit"]["place"] for p in adds})
    y = np.array([places.index(p.metadata["edit"]["place"]) for p in adds])
    chance = float(np.bincount(y[len(y) * 3 // 4 :]).max() / (len(y) - len(y) * 3 // 4))
    model = load_model(args.model)
    accuracy = {name: probe(x, y) for name, x in features(model, adds).items()}
    for name, value in accuracy.items():
        print(f"place of an added shape from {name:<13} {value:6.1%}   (most frequent place: {chance:.1%})")
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "command": "python benchmarks/photo_place_probe.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "model": args.model,
        "model_created": pretraining_record(model).get("created"),
        "pairs": len(adds),
        "held_out": len(y) - len(y) * 3 // 4,
        "accuracy": accuracy,
        "most_frequent_place": chance,
        "seconds": round(time.perf_counter() - started, 1),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(results, indent=2))
    print(f"-> {out / (args.name + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
