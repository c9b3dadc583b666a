"""``shapes-change``: a seeded, procedural 2-D benchmark in the spirit of CLEVR-Change.

Each pair shows a scene of coloured shapes and the same scene after one change: an object changes
colour (``color``), appears (``add``), disappears (``drop``) or moves (``move``); or nothing changes
(``none``). Every modified image, changed or not, also carries non-semantic noise (JPEG re-encoding,
slight blur or brightness jitter), so pixel equality never reveals "no change". Every pair has at
least five reference captions in varied wording, and the changed object's box is stored in
``metadata["boxes"]`` as relative ``[x, y, w, h]`` in each image.
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from idc_engine.data.manifest import write_manifest
from idc_engine.data.pair import IDCPair

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (215, 40, 40),
    "green": (40, 165, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 200, 30),
    "purple": (140, 60, 190),
    "cyan": (40, 190, 205),
}
SHAPES = ("circle", "square", "triangle")
CHANGE_TYPES = ("color", "add", "drop", "move", "none")
# Half the side of a square of radius r: a square this size reads as large as the circle.
SQUARE_HALF_SIDE = 0.85

# Several wordings per change type: CIDEr rewards consensus with many references.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "color": (
        "the {color} {shape} turned {new_color}",
        "the {color} {shape} changed to {new_color}",
        "the {color} {shape} became {new_color}",
        "the {color} {shape} is now {new_color}",
        "the {shape} changed color from {color} to {new_color}",
        "the {color} {shape} was painted {new_color}",
    ),
    "add": (
        "a {color} {shape} was added",
        "a {color} {shape} has been added",
        "a new {color} {shape} appeared",
        "there is a new {color} {shape}",
        "someone added a {color} {shape}",
    ),
    "drop": (
        "the {color} {shape} was removed",
        "the {color} {shape} has been removed",
        "the {color} {shape} disappeared",
        "the {color} {shape} is gone",
        "someone removed the {color} {shape}",
    ),
    "move": (
        "the {color} {shape} moved",
        "the {color} {shape} was moved",
        "the {color} {shape} has been moved",
        "the {color} {shape} changed its position",
        "the {color} {shape} is in a different place",
    ),
    "none": (
        "there is no change",
        "nothing has changed",
        "no change was made",
        "the two images are the same",
        "the scene is unchanged",
    ),
}


@dataclass
class ShapesChangeConfig:
    """Every knob of the generator; the only home of its defaults."""

    image_size: int = field(default=64, metadata={"help": "side of each square image, in pixels"})
    min_objects: int = field(default=2, metadata={"help": "fewest objects in a reference scene"})
    max_objects: int = field(default=3, metadata={"help": "most objects in a reference scene"})
    min_radius: float = field(default=0.15, metadata={"help": "smallest object radius, fraction of the side"})
    max_radius: float = field(default=0.19, metadata={"help": "largest object radius, fraction of the side"})
    change_types: tuple[str, ...] = field(default=CHANGE_TYPES, metadata={"help": "change types to draw from"})
    seed: int = field(default=0, metadata={"help": "seed; the same seed and sizes give the same pairs"})

    def __post_init__(self):
        if self.image_size < 32:
            raise ValueError(f"image_size must be at least 32, got {self.image_size}")
        if not 1 <= self.min_objects <= self.max_objects:
            raise ValueError(
                f"min_objects and max_objects must satisfy 1 <= min <= max, got {self.min_objects}, {self.max_objects}"
            )
        if self.max_objects > len(COLORS) * len(SHAPES) - 1:
            raise ValueError(f"max_objects must be below {len(COLORS) * len(SHAPES)}, got {self.max_objects}")
        if not 0.03 <= self.min_radius <= self.max_radius <= 0.25:
            raise ValueError(
                f"radii must satisfy 0.03 <= min_radius <= max_radius <= 0.25, got {self.min_radius}, {self.max_radius}"
            )
        self.change_types = tuple(self.change_types)
        unknown = [t for t in self.change_types if t not in CHANGE_TYPES]
        if unknown or not self.change_types:
            raise ValueError(f"change_types must be a non-empty subset of {CHANGE_TYPES}, got {self.change_types}")
        if "drop" in self.change_types and self.min_objects < 2 and self.max_objects < 2:
            raise ValueError("change type 'drop' needs scenes of at least 2 objects (max_objects >= 2)")


@dataclass
class Shape:
    color: str
    shape: str
    x: float  # centre, fraction of the side
    y: float
    r: float  # radius, fraction of the side

    def box(self) -> list[float]:
        """Relative [x, y, w, h] of the shape's tight bounding box, clipped to the image."""
        if self.shape == "square":
            left = right = top = bottom = SQUARE_HALF_SIDE * self.r
        elif self.shape == "triangle":  # apex up, inscribed in the circle of radius r
            left = right = math.sqrt(3) / 2 * self.r
            top, bottom = self.r, self.r / 2
        else:
            left = right = top = bottom = self.r
        x0, y0 = max(0.0, self.x - left), max(0.0, self.y - top)
        x1, y1 = min(1.0, self.x + right), min(1.0, self.y + bottom)
        return [round(x0, 4), round(y0, 4), round(x1 - x0, 4), round(y1 - y0, 4)]


def render_scene(objects: list[Shape], size: int, background: int) -> Image.Image:
    """Draw ``objects`` at 4x resolution and downsample, for anti-aliased edges."""
    scale = 4
    canvas = Image.new("RGB", (size * scale, size * scale), (background,) * 3)
    draw = ImageDraw.Draw(canvas)
    for obj in objects:
        cx, cy, r = obj.x * size * scale, obj.y * size * scale, obj.r * size * scale
        fill = COLORS[obj.color]
        if obj.shape == "circle":
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
        elif obj.shape == "square":
            side = r * SQUARE_HALF_SIDE
            draw.rectangle([cx - side, cy - side, cx + side, cy + side], fill=fill)
        else:
            points = [(cx + r * math.sin(a), cy - r * math.cos(a)) for a in (0, 2 * math.pi / 3, 4 * math.pi / 3)]
            draw.polygon(points, fill=fill)
    return canvas.resize((size, size), Image.Resampling.LANCZOS)


def nuisance(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, str]:
    """Apply one non-semantic perturbation that leaves the caption true."""
    kind = ("jpeg", "blur", "brightness")[int(rng.integers(3))]
    if kind == "jpeg":
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=int(rng.integers(60, 90)))
        buffer.seek(0)
        return Image.open(buffer).convert("RGB"), kind
    if kind == "blur":
        return image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 0.8)))), kind
    factor = float(rng.uniform(0.93, 1.07))
    array = np.clip(np.asarray(image, dtype=np.float32) * factor, 0, 255).astype(np.uint8)
    return Image.fromarray(array), kind


class SceneSampler:
    def __init__(self, config: ShapesChangeConfig, rng: np.random.Generator):
        self.config = config
        self.rng = rng

    def radius(self) -> float:
        return float(self.rng.uniform(self.config.min_radius, self.config.max_radius))

    def free_spot(self, r: float, others: list[Shape], avoid: tuple[float, float] | None = None):
        """A centre whose object overlaps none of ``others`` (and lies far from ``avoid``), or None."""
        margin = 0.02
        for _ in range(200):
            x = float(self.rng.uniform(r + margin, 1 - r - margin))
            y = float(self.rng.uniform(r + margin, 1 - r - margin))
            if all(math.hypot(x - o.x, y - o.y) > r + o.r + 0.04 for o in others):
                if avoid is None or math.hypot(x - avoid[0], y - avoid[1]) > 3 * r:
                    return x, y
        return None

    def unused_kind(self, objects: list[Shape]) -> tuple[str, str]:
        used = {(o.color, o.shape) for o in objects}
        free = [(c, s) for c in COLORS for s in SHAPES if (c, s) not in used]
        return free[int(self.rng.integers(len(free)))]

    def scene(self, count: int) -> list[Shape]:
        objects: list[Shape] = []
        while len(objects) < count:
            r = self.radius()
            spot = self.free_spot(r, objects)
            if spot is None:  # crowded: start over rather than draw overlapping shapes
                objects = []
                continue
            color, shape = self.unused_kind(objects)
            objects.append(Shape(color, shape, spot[0], spot[1], r))
        return objects


def make_pair(config: ShapesChangeConfig, index: int, split: str, rng: np.random.Generator) -> dict:
    """Sample one scene and one change; return the two images and the pair's annotations."""
    sampler = SceneSampler(config, rng)
    for _ in range(100):
        change = config.change_types[int(rng.integers(len(config.change_types)))]
        low = max(config.min_objects, 2 if change == "drop" else 1)
        count = int(rng.integers(low, config.max_objects + 1))
        before = sampler.scene(count)
        result = apply_change(change, before, sampler)
        if result is not None:
            break
    else:
        raise RuntimeError(f"shapes-change: could not place a change for pair {index} of split {split!r}")
    after, target, new_color, boxes = result
    background = int(rng.integers(185, 235))
    reference = render_scene(before, config.image_size, background)
    modified, noise = nuisance(render_scene(after, config.image_size, background), rng)
    words = {"color": target.color, "shape": target.shape, "new_color": new_color} if target else {}
    captions = [template.format(**words) for template in TEMPLATES[change]]
    metadata = {
        "change": {"type": change, **words},
        "boxes": boxes,
        "noise": noise,
        "objects_reference": [asdict(o) for o in before],
        "objects_modified": [asdict(o) for o in after],
    }
    return {
        "reference": reference,
        "modified": modified,
        "captions": captions,
        "category": change,
        "metadata": metadata,
    }


def apply_change(change: str, before: list[Shape], sampler: SceneSampler):
    after = [Shape(**asdict(o)) for o in before]
    if change == "none":
        return after, None, None, {"reference": None, "modified": None}
    if change == "add":
        r = sampler.radius()
        spot = sampler.free_spot(r, after)
        if spot is None:
            return None
        color, shape = sampler.unused_kind(after)
        added = Shape(color, shape, spot[0], spot[1], r)
        return after + [added], added, None, {"reference": None, "modified": added.box()}
    index = int(sampler.rng.integers(len(after)))
    target = before[index]
    if change == "drop":
        del after[index]
        return after, target, None, {"reference": target.box(), "modified": None}
    if change == "color":
        used = {(o.color, o.shape) for o in before}
        options = [c for c in COLORS if c != target.color and (c, target.shape) not in used]
        new_color = options[int(sampler.rng.integers(len(options)))]
        after[index].color = new_color
        return after, target, new_color, {"reference": target.box(), "modified": after[index].box()}
    # move: far enough that the old and new places do not overlap
    others = after[:index] + after[index + 1 :]
    spot = sampler.free_spot(target.r, others, avoid=(target.x, target.y))
    if spot is None:
        return None
    after[index].x, after[index].y = spot
    return after, target, None, {"reference": target.box(), "modified": after[index].box()}


def describe_scene(objects: list[dict] | list[Shape]) -> str:
    """'a red circle, a blue square and a green triangle', objects from left to right."""
    objects = [o if isinstance(o, Shape) else Shape(**o) for o in objects]
    names = [f"a {o.color} {o.shape}" for o in sorted(objects, key=lambda o: o.x)]
    if not names:
        return "nothing"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def describe_pair(metadata: dict) -> str:
    """Both scenes of a shapes-change pair, for scene-description pretraining."""
    top = describe_scene(metadata["objects_reference"])
    bottom = describe_scene(metadata["objects_modified"])
    return f"top: {top}. bottom: {bottom}"


_SPLIT_CODES = {"train": 1, "validation": 2, "test": 3}


def generate(
    out_dir,
    train: int,
    test: int,
    validation: int = 0,
    config: ShapesChangeConfig | None = None,
    progress=None,
) -> Path:
    """Write PNGs and ``manifest.jsonl`` under ``out_dir``; return the manifest path.

    Each pair is drawn from its own generator seeded by ``(seed, split, index)``, so a pair does not
    depend on how many others were asked for.
    """
    config = config or ShapesChangeConfig()
    for name, value in (("train", train), ("test", test), ("validation", validation)):
        if not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    out_dir = Path(out_dir)
    images = out_dir / "images"
    images.mkdir(parents=True, exist_ok=True)
    pairs: list[IDCPair] = []
    total = train + validation + test
    for split, count in (("train", train), ("validation", validation), ("test", test)):
        for index in range(count):
            rng = np.random.default_rng([config.seed, _SPLIT_CODES[split], index])
            sample = make_pair(config, index, split, rng)
            pair_id = f"{split}-{index:06d}"
            ref_path, mod_path = images / f"{pair_id}_ref.png", images / f"{pair_id}_mod.png"
            sample["reference"].save(ref_path)
            sample["modified"].save(mod_path)
            pairs.append(
                IDCPair(
                    id=pair_id,
                    reference=ref_path,
                    modified=mod_path,
                    captions=sample["captions"],
                    split=split,
                    category=sample["category"],
                    metadata=sample["metadata"],
                )
            )
            if progress is not None:
                progress(len(pairs), total)
    return write_manifest(pairs, out_dir / "manifest.jsonl")
