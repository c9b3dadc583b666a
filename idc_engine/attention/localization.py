"""Does a map, or a set of regions, point at the real change? Measured where the truth is known.

shapes-change stores the changed object's box in each image (``metadata["boxes"]``). The truth in
the modified image's frame is the union of those boxes: where an object appeared, changed colour
or moved to, and where it was removed or moved from (the images are aligned, so a reference box
is also a place in the modified image).
"""

from __future__ import annotations

import numpy as np


def true_boxes(metadata: dict) -> list[list[float]]:
    boxes = (metadata or {}).get("boxes") or {}
    return [b for b in (boxes.get("modified"), boxes.get("reference")) if b]


def inside(point_xy, box) -> bool:
    x, y = point_xy
    bx, by, bw, bh = box
    return bx <= x <= bx + bw and by <= y <= by + bh


def pointing_hit(values: np.ndarray, boxes: list[list[float]]) -> bool:
    """The pointing game: is the map's maximum inside a true box?"""
    row, col = np.unravel_index(int(np.argmax(values)), values.shape)
    height, width = values.shape
    return any(inside(((col + 0.5) / width, (row + 0.5) / height), box) for box in boxes)


def iou(a, b) -> float:
    ax0, ay0, aw, ah = a
    bx0, by0, bw, bh = b
    ix = max(0.0, min(ax0 + aw, bx0 + bw) - max(ax0, bx0))
    iy = max(0.0, min(ay0 + ah, by0 + bh) - max(ay0, by0))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def best_iou(predicted: list[list[float]], truth: list[list[float]]) -> float:
    """The best overlap of any predicted box with any true box (0 when either is empty)."""
    return max((iou(p, t) for p in predicted for t in truth), default=0.0)


def random_boxes(truth_sizes: list[tuple[float, float]], count: int, seed: int = 0) -> list[list[float]]:
    """Boxes of the true boxes' mean size at uniformly random places: the chance baseline."""
    rng = np.random.default_rng(seed)
    w, h = (float(np.mean([s[i] for s in truth_sizes])) for i in (0, 1))
    return [[float(rng.uniform(0, 1 - w)), float(rng.uniform(0, 1 - h)), w, h] for _ in range(count)]


def summarize(rows: list[dict]) -> dict[str, dict[str, float]]:
    """rows of {category, method, hit (or None), iou, regions} -> per category and method: means.

    For pairs without a change, the score is the share of pairs that got no region at all.
    """
    table: dict[str, dict[str, list]] = {}
    for row in rows:
        for category in (row["category"], "all changed" if row["category"] != "none" else None):
            if category is None:
                continue
            cell = table.setdefault(category, {}).setdefault(row["method"], {"hit": [], "iou": [], "empty": []})
            if row["hit"] is not None:
                cell["hit"].append(row["hit"])
            cell["iou"].append(row["iou"])
            cell["empty"].append(row["regions"] == 0)
    return {
        category: {
            method: {
                "pointing": float(np.mean(cell["hit"])) if cell["hit"] else None,
                "mean_iou": float(np.mean(cell["iou"])),
                "no_region": float(np.mean(cell["empty"])),
                "pairs": len(cell["iou"]),
            }
            for method, cell in methods.items()
        }
        for category, methods in table.items()
    }
