"""``shapes-change``: a seeded, procedural 2-D benchmark in the spirit of CLEVR-Change.

Each pair shows a scene of coloured shapes and the same scene after one change: an object changes
colour (``color``), appears (``add``), disappears (``drop``) or moves (``move``); or nothing changes
(``none``). Every modified image, changed or not, also carries non-semantic noise (JPEG re-encoding,
slight blur or brightness jitter), so pixel equality never reveals "no change". Every pair has at
least five reference captions in varied wording, and the changed object's box is stored in
``metadata["boxes"]`` as relative ``[x, y, w, h]`` in each image.

Two options, off by default so that a seed's pairs stay as they were, make the benchmark harder where a
captioner fails quietly: ``two_change_share`` turns some changed pairs into pairs holding two changes
(category ``two_changes``; each reference joins one caption of each change with "and"), and
``strong_noise_share`` gives some pairs (changed or not) a stronger non-semantic perturbation on top
of the usual one: a camera shift of up to two pixels, contrast and brightness jitter, and heavy JPEG
or sensor noise. An unchanged pair so perturbed has the category ``none_noisy``: nothing changed, but
a pixel difference no longer says so. ``none_share`` sets the share of unchanged pairs (by default
as likely as each change type). These draws come from a second generator of their own, so a pair
that none of them selects is the same pair as without them.
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
TWO_CHANGES = "two_changes"  # category of a pair that holds two changes (two_change_share)
NONE_NOISY = "none_noisy"  # category of an unchanged pair with strong non-semantic noise (strong_noise_share)
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
    none_share: float | None = field(
        default=None, metadata={"help": "share of unchanged pairs; None: as likely as each change type"}
    )
    two_change_share: float = field(
        default=0.0, metadata={"help": "share of changed pairs that hold two changes (category two_changes)"}
    )
    strong_noise_share: float = field(
        default=0.0,
        metadata={"help": "share of pairs with strong non-semantic noise (camera shift, heavy JPEG or sensor noise)"},
    )

    @property
    def has_extras(self) -> bool:
        """Whether any option that draws from the pair's second generator is on."""
        return self.none_share is not None or self.two_change_share > 0 or self.strong_noise_share > 0

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
        for name in ("two_change_share", "strong_noise_share"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a share in [0, 1], got {value!r}")
        if self.none_share is not None:
            if not isinstance(self.none_share, (int, float)) or not 0.0 <= self.none_share <= 1.0:
                raise ValueError(f"none_share must be a share in [0, 1] or None, got {self.none_share!r}")
            changes = [t for t in self.change_types if t != "none"]
            if self.none_share > 0 and "none" not in self.change_types:
                raise ValueError(f"none_share {self.none_share} needs 'none' in change_types, got {self.change_types}")
            if self.none_share < 1 and not changes:
                raise ValueError(f"none_share {self.none_share} below 1 needs a change type besides 'none'")
        if self.two_change_share > 0:
            if self.max_objects < 2:
                raise ValueError(
                    f"two_change_share needs scenes of at least 2 objects, got max_objects {self.max_objects}"
                )
            if not [t for t in self.change_types if t != "none"]:
                raise ValueError("two_change_share needs a change type besides 'none' in change_types")


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


def strong_nuisance(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, str]:
    """A stronger perturbation that still leaves the caption true: the camera shifted by up to two
    pixels (sub-pixel, so every edge changes), contrast and brightness jitter, then heavy JPEG or
    sensor noise. Beside objects of a few pixels it moves many pixels a lot, as a real change does."""
    dx, dy = (float(v) for v in rng.uniform(-2.0, 2.0, size=2))
    corner = image.getpixel((0, 0))
    shifted = image.transform(
        image.size, Image.Transform.AFFINE, (1, 0, dx, 0, 1, dy), resample=Image.Resampling.BICUBIC, fillcolor=corner
    )
    array = np.asarray(shifted, dtype=np.float32)
    contrast, brightness = float(rng.uniform(0.85, 1.15)), float(rng.uniform(-15, 15))
    array = (array - array.mean()) * contrast + array.mean() + brightness
    if rng.random() < 0.5:
        sigma = float(rng.uniform(4.0, 9.0))
        array = array + rng.normal(0.0, sigma, size=array.shape)
        last = f"sensor noise {sigma:.1f}"
    else:
        last = None
    result = Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))
    if last is None:
        quality = int(rng.integers(20, 40))
        buffer = io.BytesIO()
        result.save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        result = Image.open(buffer).convert("RGB")
        last = f"jpeg {quality}"
    return result, f"strong: shift ({dx:+.1f}, {dy:+.1f}) px, contrast {contrast:.2f}, {last}"


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


def make_pair(
    config: ShapesChangeConfig,
    index: int,
    split: str,
    rng: np.random.Generator,
    extra: np.random.Generator | None = None,
) -> dict:
    """Sample one scene and one change (or two, or none); return the two images and the pair's annotations.

    ``extra`` draws what the options ``none_share``, ``two_change_share`` and ``strong_noise_share``
    decide; ``rng`` draws everything else, exactly as when the options are off.
    """
    sampler = SceneSampler(config, rng)
    if extra is None and config.has_extras:
        extra = np.random.default_rng(int(rng.integers(2**63)))
    odds = extra.random(3) if config.has_extras else np.ones(3)
    changes = [t for t in config.change_types if t != "none"]
    for _ in range(100):
        if config.none_share is None:
            change = config.change_types[int(rng.integers(len(config.change_types)))]
        else:
            change = "none" if odds[0] < config.none_share else changes[int(rng.integers(len(changes)))]
        if change != "none" and odds[1] < config.two_change_share:
            second = changes[int(rng.integers(len(changes)))]
            # Each change other than an addition needs an object of its own; two removals leave one.
            targets = sum(c != "add" for c in (change, second)) + ((change, second).count("drop") == 2)
            low = max(config.min_objects, targets)
            if low > config.max_objects:
                continue
            count = int(rng.integers(low, config.max_objects + 1))
            before = sampler.scene(count)
            result = apply_two_changes((change, second), before, sampler)
        else:
            low = max(config.min_objects, 2 if change == "drop" else 1)
            count = int(rng.integers(low, config.max_objects + 1))
            before = sampler.scene(count)
            result = apply_change(change, before, sampler)
        if result is not None:
            break
    else:
        raise RuntimeError(f"shapes-change: could not place a change for pair {index} of split {split!r}")
    background = int(rng.integers(185, 235))
    reference = render_scene(before, config.image_size, background)
    if isinstance(result, TwoChanges):
        after = result.after
        modified, noise = nuisance(render_scene(after, config.image_size, background), rng)
        captions = result.captions()
        category = TWO_CHANGES
        metadata = {
            "change": {"type": TWO_CHANGES},
            "changes": result.words(),
            "boxes": result.boxes[0],
            "boxes_all": result.boxes,
        }
    else:
        after, target, new_color, boxes = result
        modified, noise = nuisance(render_scene(after, config.image_size, background), rng)
        words = {"color": target.color, "shape": target.shape, "new_color": new_color} if target else {}
        captions = [template.format(**words) for template in TEMPLATES[change]]
        category = change
        metadata = {"change": {"type": change, **words}, "boxes": boxes}
    if odds[2] < config.strong_noise_share:
        modified, strong = strong_nuisance(modified, extra)
        noise = f"{noise}; {strong}"
        if category == "none":
            category = NONE_NOISY
    metadata.update(
        {
            "noise": noise,
            "objects_reference": [asdict(o) for o in before],
            "objects_modified": [asdict(o) for o in after],
        }
    )
    return {
        "reference": reference,
        "modified": modified,
        "captions": captions,
        "category": category,
        "metadata": metadata,
    }


def apply_change(change: str, before: list[Shape], sampler: SceneSampler, keep: int | None = None):
    """Carry out ``change`` on a copy of ``before``: (objects after, changed object, new colour, boxes),
    or None when there was no room. ``keep``: the index of an object the change must leave alone."""
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
    if keep is None:
        index = int(sampler.rng.integers(len(after)))
    else:
        choices = [i for i in range(len(after)) if i != keep]
        if not choices:
            return None
        index = choices[int(sampler.rng.integers(len(choices)))]
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


@dataclass
class TwoChanges:
    """Two changes carried out one after the other on different objects."""

    after: list[Shape]
    changes: list[tuple[str, Shape, str | None]]  # (change type, changed object, new colour)
    boxes: list[dict]

    def words(self) -> list[dict]:
        return [
            {"type": change, "color": target.color, "shape": target.shape, "new_color": new_color}
            for change, target, new_color in self.changes
        ]

    def captions(self) -> list[str]:
        """Each reference joins one wording of each change with "and", in both orders."""
        first, second = (
            [t.format(**{k: v for k, v in w.items() if k != "type"}) for t in TEMPLATES[w["type"]]]
            for w in self.words()
        )
        captions = []
        for i in range(max(len(first), len(second))):
            a, b = first[i % len(first)], second[i % len(second)]
            captions.append(f"{a} and {b}" if i % 2 == 0 else f"{b} and {a}")
        return captions


def apply_two_changes(changes: tuple[str, str], before: list[Shape], sampler: SceneSampler) -> TwoChanges | None:
    """The first change, then the second on another object; None when there was no room, or when the
    two would name the same kind of object (each colour and shape stays unique across both images)."""
    first = apply_change(changes[0], before, sampler)
    if first is None:
        return None
    middle, target, new_color, boxes = first
    if changes[0] == "add":
        keep = len(middle) - 1
    elif changes[0] == "drop":
        keep = None
    else:
        keep = before.index(target)
    second = apply_change(changes[1], middle, sampler, keep=keep)
    if second is None:
        return None
    after, target2, new_color2, boxes2 = second
    if changes[1] in ("add", "color"):
        created = (new_color2 or target2.color, target2.shape)
        if created in {(o.color, o.shape) for o in before}:
            return None
    return TwoChanges(after, [(changes[0], target, new_color), (changes[1], target2, new_color2)], [boxes, boxes2])


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
            extra = np.random.default_rng([config.seed, _SPLIT_CODES[split], index, 1])
            sample = make_pair(config, index, split, rng, extra)
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
