"""Baselines scored on the same references as a model.

- Mean sentence: the one training caption that scores best (CIDEr-D) against the training
  references, i.e. what a captioner that ignores the images converges to.
- Nearest neighbour: for each test pair, the first caption of the most similar training pair,
  similarity being the distance between small thumbnails of both images and of their difference.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from idc_engine.metrics.captions import tokenize


@dataclass
class BaselineConfig:
    max_candidates: int = field(default=60, metadata={"help": "most frequent training captions tried as mean sentence"})
    max_pairs: int = field(default=600, metadata={"help": "training pairs the mean-sentence candidates are scored on"})
    thumbnail: int = field(default=16, metadata={"help": "side of the thumbnails nearest neighbour compares"})
    seed: int = 0

    def __post_init__(self):
        for name in ("max_candidates", "max_pairs", "thumbnail"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")


def mean_sentence(train_captions: list[list[str]], config: BaselineConfig | None = None) -> str:
    """The training caption with the highest mean CIDEr-D against the training references."""
    from pycocoevalcap.cider.cider_scorer import CiderScorer

    config = config or BaselineConfig()
    if not train_captions:
        raise ValueError("train_captions: need at least one training pair")
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(train_captions))[: config.max_pairs]
    sample = [train_captions[i] for i in order]
    frequency = Counter(c.strip() for refs in train_captions for c in refs)
    candidates = [c for c, _ in frequency.most_common(config.max_candidates)]
    tokens = tokenize({**{f"r{i}": refs for i, refs in enumerate(sample)}, "candidates": candidates})
    references = [tokens[f"r{i}"] for i in range(len(sample))]
    best, best_score = candidates[0], -1.0
    for candidate, candidate_tokens in zip(candidates, tokens["candidates"]):
        scorer = CiderScorer(n=4, sigma=6.0)
        for refs in references:
            scorer += (candidate_tokens, refs)
        score, _ = scorer.compute_score()
        if score > best_score:
            best, best_score = candidate, float(score)
    return best


def thumbnail_features(pairs: list[tuple[Image.Image, Image.Image]], side: int) -> np.ndarray:
    """Per pair: thumbnails of both images and of their difference, flattened."""
    rows = []
    for reference, modified in pairs:
        ref = np.asarray(reference.resize((side, side), Image.Resampling.BOX), dtype=np.float32) / 255.0
        mod = np.asarray(modified.resize((side, side), Image.Resampling.BOX), dtype=np.float32) / 255.0
        rows.append(np.concatenate([ref.ravel(), mod.ravel(), 2.0 * (mod - ref).ravel()]))
    return np.stack(rows)


def nearest_neighbour(
    train_pairs: list[tuple[Image.Image, Image.Image]],
    train_captions: list[list[str]],
    query_pairs: list[tuple[Image.Image, Image.Image]],
    config: BaselineConfig | None = None,
) -> list[str]:
    """For each query pair, the first caption of the closest training pair."""
    config = config or BaselineConfig()
    if len(train_pairs) != len(train_captions) or not train_pairs:
        raise ValueError("train_pairs and train_captions must be non-empty and of equal length")
    train = thumbnail_features(train_pairs, config.thumbnail)
    query = thumbnail_features(query_pairs, config.thumbnail)
    train_norms = (train**2).sum(1)
    answers = []
    for start in range(0, len(query), 256):
        chunk = query[start : start + 256]
        distances = train_norms[None, :] - 2.0 * chunk @ train.T
        answers.extend(train_captions[int(i)][0] for i in distances.argmin(1))
    return answers
