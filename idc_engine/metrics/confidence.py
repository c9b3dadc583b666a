"""How well a model's confidence finds its wrong captions: AUROC, and the share of wrong captions at the
head of a least-confident-first order. The review queue itself lives in ``fiftyone_plugin/review_queue.py``;
this only measures whether ordering by confidence helps it (``benchmarks/review_queue.py``)."""

from __future__ import annotations

import numpy as np


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """P(score of a random positive > score of a random negative), ties counting half (Mann-Whitney U)."""
    pos, neg = scores[positive], scores[~positive]
    if not len(pos) or not len(neg):
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order))
    values = np.concatenate([pos, neg])[order]
    start = 0
    while start < len(values):  # average ranks over ties
        end = start
        while end + 1 < len(values) and values[end + 1] == values[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2
    return float(u / (len(pos) * len(neg)))


def queue_figures(confidences: np.ndarray, right: np.ndarray, head: float = 0.10) -> dict:
    """Wrong captions among the least confident ``head`` share of pairs, against a random order's."""
    wrong = ~right
    order = np.argsort(confidences, kind="mergesort")  # the queue: least confident first
    first = order[: max(1, int(round(head * len(order))))]
    return {
        "pairs": int(len(right)),
        "wrong_share": round(float(wrong.mean()), 4),
        "auroc_confidence_for_right": round(auroc(confidences, right), 4),
        "wrong_share_first_10pct_queue": round(float(wrong[first].mean()), 4),
        "wrong_share_first_10pct_random": round(float(wrong.mean()), 4),  # the expectation of a random order
        "first_10pct_pairs": int(len(first)),
    }
