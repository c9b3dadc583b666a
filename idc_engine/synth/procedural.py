"""Procedural edits of the eight Syned categories on any photo: no model, seeded, offline.

Each category is a few lines of PIL / numpy that do what its instruction says, and the instruction
returned describes what was really done (which colour, where), so that it can serve as a caption
source. Regions (to recolour, remove, change locally, or the background) come from a k-means colour
segmentation of a thumbnail: a connected area of one colour stands in for an object.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

from idc_engine.synth.editors import CATEGORIES, Editor, EditResult, check_category, check_seed

NAMED_COLORS: dict[str, tuple[int, int, int]] = {
    "red": (215, 40, 40),
    "orange": (240, 140, 30),
    "yellow": (240, 210, 40),
    "green": (50, 165, 70),
    "cyan": (40, 190, 210),
    "blue": (40, 90, 220),
    "purple": (140, 60, 190),
    "pink": (240, 120, 180),
    "brown": (130, 80, 40),
    "white": (245, 245, 245),
    "gray": (128, 128, 128),
    "black": (20, 20, 20),
}
# The colours a region can be painted in: achromatic targets would erase the shading that recolouring keeps.
PAINT_COLORS = ("red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink")
SHAPES = ("circle", "square", "triangle", "star")
# (column, row) of each cell of a 3 x 3 grid over the image.
POSITIONS: dict[str, tuple[int, int]] = {
    "top left": (0, 0),
    "top": (1, 0),
    "top right": (2, 0),
    "left": (0, 1),
    "center": (1, 1),
    "right": (2, 1),
    "bottom left": (0, 2),
    "bottom": (1, 2),
    "bottom right": (2, 2),
}
# Words an instruction may use -> the effect carried out; the canonical wording is the one written back.
STYLES = {
    "pencil sketch": "sketch",
    "sketch": "sketch",
    "drawing": "sketch",
    "oil painting": "oil painting",
    "painting": "oil painting",
    "poster": "poster",
    "mosaic": "mosaic",
    "cartoon": "cartoon",
    "black and white": "black and white",
}
STYLE_WORDING = {
    "sketch": "make it look like a pencil sketch",
    "oil painting": "make it look like an oil painting",
    "poster": "make it look like a poster",
    "mosaic": "make it look like a mosaic",
    "cartoon": "make it look like a cartoon",
    "black and white": "make it black and white",
}
LOOKS = {
    "night": "night",
    "nighttime": "night",
    "foggy": "foggy",
    "fog": "foggy",
    "hazy": "foggy",
    "misty": "foggy",
    "sunset": "sunset",
    "dusk": "sunset",
    "brighter": "brighter",
    "darker": "darker",
}
LOOK_WORDING = {
    "night": "make it look like night",
    "foggy": "make it foggy",
    "sunset": "make it look like sunset",
    "brighter": "make it brighter",
    "darker": "make it darker",
}
LOCAL_CHANGES = ("bigger", "smaller", "blurred", "darker", "brighter")


def _alternatives(words) -> str:
    # Longest first, so that "top left" wins over "top".
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_COLOR = _alternatives([*NAMED_COLORS, "grey"])
_WHERE = rf"(?: (?:in|at|on) the (?P<where>{_alternatives(POSITIONS)})(?: of the image)?)?"
_OBJECT = rf"the (?P<color>{_COLOR}) (?:object|thing|blob|region|area|part){_WHERE}"
# Every instruction form each category carries out (matched whole, case-insensitively).
FORMS: dict[str, tuple[str, ...]] = {
    "add": (rf"add an? (?P<color>{_COLOR}) (?P<shape>{_alternatives(SHAPES)}){_WHERE}",),
    "text": (
        rf"(?:write|add the (?:text|word)) (?P<quote>['\"])(?P<text>[^'\"]{{1,40}})(?P=quote)(?: on the image)?"
        rf"(?: in (?P<color>{_COLOR})(?: letters)?)?{_WHERE}",
    ),
    "color": (
        rf"(?:make|turn|paint|color) the (?P<source>{_COLOR}) (?:area|region|part){_WHERE} (?P<color>{_COLOR})",
        rf"change the (?P<source>{_COLOR}) (?:area|region|part){_WHERE} to (?P<color>{_COLOR})",
    ),
    "background": (
        rf"(?:make|turn|paint|color) the background (?P<color>{_COLOR})",
        rf"(?:replace|change) the background (?:with|to) (?:a )?plain (?P<plain>{_COLOR})(?: one)?",
    ),
    "style": (rf"(?:make it look like|make it|turn it into|render it as) (?:an? )?(?P<style>{_alternatives(STYLES)})",),
    "global": (rf"(?:make it look like|make it|turn it into) (?:an? |at )?(?P<look>{_alternatives(LOOKS)})",),
    "remove": (rf"(?:remove|erase|delete) {_OBJECT}",),
    "local": (
        rf"make {_OBJECT} (?P<change>bigger|smaller|darker|brighter|blurred|blurry)",
        rf"(?P<change>blur) {_OBJECT}",
    ),
}
_PATTERNS = {category: [re.compile(f, re.IGNORECASE) for f in forms] for category, forms in FORMS.items()}
EXAMPLES = {
    "add": "add a red circle in the top left",
    "text": "write 'SALE' in white letters at the bottom",
    "color": "make the gray area at the top blue",
    "background": "make the background blue / replace the background with plain white",
    "style": "make it look like a pencil sketch",
    "global": "make it look like night",
    "remove": "remove the red object on the left",
    "local": "make the red object in the center bigger / blur the red object",
}


@dataclass
class ProceduralConfig:
    """Knobs of the procedural editor; the only home of their defaults."""

    categories: tuple[str, ...] = field(
        default=CATEGORIES, metadata={"help": "categories drawn from when an edit names none"}
    )
    object_size: tuple[float, float] = field(
        default=(0.12, 0.25), metadata={"help": "side of an added object, range as a fraction of the shorter side"}
    )
    words: tuple[str, ...] = field(
        default=("SALE", "OPEN", "STOP", "HELLO", "NEW", "EXIT", "CAFE", "2025"),
        metadata={"help": "words a text edit writes when its instruction names none"},
    )
    text_height: float = field(default=0.12, metadata={"help": "letter size, as a fraction of the shorter side"})
    clusters: int = field(default=6, metadata={"help": "colours of the k-means segmentation that finds regions"})
    analysis_size: int = field(default=64, metadata={"help": "longer side of the thumbnail regions are found on"})
    region_area: tuple[float, float] = field(
        default=(0.005, 0.15),
        metadata={"help": "area of a region that color / remove / local edit, range as a fraction of the image"},
    )
    local_changes: tuple[str, ...] = field(
        default=LOCAL_CHANGES, metadata={"help": "changes a local edit draws from when its instruction names none"}
    )

    def __post_init__(self):
        self.categories, self.words = tuple(self.categories), tuple(self.words)
        self.object_size, self.region_area = tuple(self.object_size), tuple(self.region_area)
        self.local_changes = tuple(self.local_changes)
        if not self.local_changes or any(c not in LOCAL_CHANGES for c in self.local_changes):
            raise ValueError(f"local_changes must be a non-empty subset of {LOCAL_CHANGES}, got {self.local_changes!r}")
        unknown = [c for c in self.categories if c not in CATEGORIES]
        if unknown or not self.categories:
            raise ValueError(f"categories must be a non-empty subset of {CATEGORIES}, got {self.categories!r}")
        if not self.words or any(not w.strip() or "'" in w or '"' in w for w in self.words):
            raise ValueError(f"words must be non-empty words without quotes, got {self.words!r}")
        for name in ("object_size", "region_area"):
            low, high = getattr(self, name)
            if not 0 < low <= high <= 1:
                raise ValueError(f"{name} must be a range (low, high) with 0 < low <= high <= 1, got {(low, high)!r}")
        if not 0 < self.text_height <= 0.5:
            raise ValueError(f"text_height must be in (0, 0.5], got {self.text_height!r}")
        if not 2 <= self.clusters <= 16:
            raise ValueError(f"clusters must be between 2 and 16, got {self.clusters!r}")
        if not 16 <= self.analysis_size <= 256:
            raise ValueError(f"analysis_size must be between 16 and 256, got {self.analysis_size!r}")


def parse_instruction(instruction: str, category: str | None = None) -> tuple[str, dict]:
    """The category and the fields of an instruction the procedural editor can carry out.

    Raises ValueError naming the instruction when no form of ``category`` (of any category when None)
    matches it; see ``EXAMPLES`` for one instruction of each category.
    """
    check_category(category)
    if not isinstance(instruction, str):
        raise ValueError(f"instruction must be a string or None, got {instruction!r}")
    text = " ".join(instruction.strip().rstrip(".!").split())
    for name in [category] if category else CATEGORIES:
        for pattern in _PATTERNS[name]:
            match = pattern.fullmatch(text)
            if match:
                fields = {k: v for k, v in match.groupdict().items() if v is not None and k != "quote"}
                for key in ("color", "source", "plain", "where", "shape", "style", "look", "change"):
                    if key in fields:
                        fields[key] = fields[key].lower().replace("grey", "gray")
                return name, fields
    wanted = f"a {category!r} edit" if category else "an edit"
    examples = EXAMPLES[category] if category else "; ".join(EXAMPLES.values())
    raise ValueError(
        f"instruction {instruction!r} is not {wanted} the procedural editor can carry out (e.g. {examples})"
    )


class ProceduralEditor(Editor):
    """Carries out an edit of each of the eight categories on any RGB photo, seeded by ``seed``."""

    name = "procedural"

    def __init__(self, config: ProceduralConfig | None = None):
        self.config = config or ProceduralConfig()

    def edit(self, image: Image.Image, instruction: str | None, category: str | None, seed: int) -> EditResult:
        check_category(category)
        seed = check_seed(seed)
        image = image.convert("RGB")
        rng = np.random.default_rng(seed)
        if instruction is None:
            category = category or self.config.categories[int(rng.integers(len(self.config.categories)))]
            request = {}
        else:
            category, request = parse_instruction(instruction, category)
        edited, done, operation = getattr(self, f"_{category}")(image, request, rng)
        settings = {
            "editor": self.name,
            "seed": seed,
            "category": category,
            "operation": operation,
            "config": asdict(self.config),
        }
        return EditResult(image=edited, instruction=done, category=category, settings=settings)

    # Each category: (image, fields parsed from the instruction, rng) -> (image, instruction done, operation).
    # A field the instruction left out is drawn from the rng.

    def _add(self, image, request, rng):
        color = request.get("color") or _choice(rng, PAINT_COLORS)
        shape = request.get("shape") or _choice(rng, SHAPES)
        where = request.get("where") or _choice(rng, list(POSITIONS))
        side = min(min(image.size), max(8, round(float(rng.uniform(*self.config.object_size)) * min(image.size))))
        x, y = _spot(where, (side / 2, side / 2), image.size, rng)
        left, top = round(x - side / 2), round(y - side / 2)
        edited = image.convert("RGBA")
        edited.alpha_composite(_shape_patch(shape, NAMED_COLORS[color], side), (left, top))
        operation = {
            "shape": shape,
            "color": color,
            "position": where,
            "box": _relative_box(left, top, side, side, image),
        }
        return edited.convert("RGB"), f"add a {color} {shape} {_phrase(where)}", operation

    def _text(self, image, request, rng):
        text = request.get("text") or _choice(rng, self.config.words)
        color = request.get("color") or _choice(rng, list(NAMED_COLORS))
        where = request.get("where") or _choice(rng, list(POSITIONS))
        edited = image.copy()
        draw = ImageDraw.Draw(edited)
        size = max(8, round(self.config.text_height * min(image.size)))
        while True:  # shrink until the text fits the width
            font = ImageFont.load_default(size=size)
            stroke = max(1, size // 12)
            x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font, stroke_width=stroke)
            if x1 - x0 <= 0.9 * image.width or size <= 8:
                break
            size = max(8, int(size * 0.85))
        x, y = _spot(where, ((x1 - x0) / 2, (y1 - y0) / 2), image.size, rng)
        left, top = x - (x1 - x0) / 2 - x0, y - (y1 - y0) / 2 - y0
        fill = NAMED_COLORS[color]
        outline = (0, 0, 0) if _luminance(fill) > 110 else (255, 255, 255)  # readable on any photo
        draw.text((left, top), text, fill=fill, font=font, stroke_width=stroke, stroke_fill=outline)
        box = _relative_box(left + x0, top + y0, x1 - x0, y1 - y0, image)
        operation = {"text": text, "color": color, "position": where, "font_size": size, "box": box}
        return edited, f"write '{text}' in {color} letters {_phrase(where)}", operation

    def _color(self, image, request, rng):
        regions = _Regions(image, self.config)
        region = regions.pick("color", rng, request.get("source"), request.get("where"))
        color = request.get("color") or _choice(rng, [c for c in PAINT_COLORS if c != region.color])
        pixels = np.asarray(image, dtype=np.float32)
        edited = _blend(pixels, _recolor(image, color), regions.alpha(region))
        where = region.where
        operation = {"from": region.color, "to": color, "position": where, "box": region.box}
        return edited, f"make the {region.color} area {_phrase(where)} {color}", operation

    def _background(self, image, request, rng):
        regions = _Regions(image, self.config)
        alpha = regions.alpha(regions.background())
        if not request:
            kind = _choice(rng, ["tint", "plain"])
            request = {"color" if kind == "tint" else "plain": _choice(rng, list(NAMED_COLORS))}
        pixels = np.asarray(image, dtype=np.float32)
        if "plain" in request:
            color = request["plain"]
            layer = np.broadcast_to(np.array(NAMED_COLORS[color], np.float32), pixels.shape)
            done = f"replace the background with plain {color}"
        else:
            color = request["color"]
            layer = np.asarray(_recolor(image, color), dtype=np.float32)
            done = f"make the background {color}"
        edited = _blend(pixels, layer, alpha)
        return edited, done, {"color": color, "plain": "plain" in request, "area": round(float(alpha.mean()), 4)}

    def _style(self, image, request, rng):
        style = STYLES[request["style"]] if request else _choice(rng, list(STYLE_WORDING))
        return _stylize(image, style), STYLE_WORDING[style], {"style": style}

    def _global(self, image, request, rng):
        look = LOOKS[request["look"]] if request else _choice(rng, list(LOOK_WORDING))
        strength = float(rng.uniform(0.8, 1.0))
        return _relight(image, look, strength), LOOK_WORDING[look], {"look": look, "strength": round(strength, 4)}

    def _remove(self, image, request, rng):
        regions = _Regions(image, self.config)
        region = regions.pick("remove", rng, request.get("color"), request.get("where"), prefer_inner=True)
        edited = _inpaint(np.asarray(image, dtype=np.float32), regions.hole(region))
        operation = {"color": region.color, "position": region.where, "box": region.box}
        return Image.fromarray(edited), f"remove the {region.color} object {_phrase(region.where)}", operation

    def _local(self, image, request, rng):
        regions = _Regions(image, self.config)
        region = regions.pick("local", rng, request.get("color"), request.get("where"), prefer_inner=True)
        change = {"blur": "blurred", "blurry": "blurred"}.get(request.get("change"), request.get("change"))
        change = change or _choice(rng, self.config.local_changes)
        pixels = np.asarray(image, dtype=np.float32)
        alpha = regions.alpha(region)
        if change == "blurred":
            radius = max(2.0, 0.02 * max(image.size))
            edited = _blend(pixels, image.filter(ImageFilter.GaussianBlur(radius)), alpha)
        elif change in ("darker", "brighter"):
            edited = _blend(pixels, pixels * 0.55 if change == "darker" else pixels * 1.4 + 25, alpha)
        else:
            base = _inpaint(pixels, regions.hole(region)) if change == "smaller" else pixels
            edited = _rescale_region(base, pixels, alpha, 1.35 if change == "bigger" else 0.65)
        thing = f"the {region.color} object {_phrase(region.where)}"
        done = f"blur {thing}" if change == "blurred" else f"make {thing} {change}"
        return edited, done, {"change": change, "color": region.color, "position": region.where, "box": region.box}


# --- regions ----------------------------------------------------------------------------------------


@dataclass
class _Region:
    ids: list[int]  # connected components of the thumbnail that make it up
    color: str  # name of its mean colour
    area: float  # fraction of the image
    center: tuple[float, float]  # relative x, y
    box: list[float]  # relative [x, y, w, h]
    inner: bool = True  # touches no image border

    @property
    def where(self) -> str:
        column, row = (min(2, int(c * 3)) for c in self.center)
        return next(name for name, cell in POSITIONS.items() if cell == (column, row))


class _Regions:
    """Colour clusters of a thumbnail and their connected components, the editor's stand-in for objects."""

    def __init__(self, image: Image.Image, config: ProceduralConfig):
        self.config, self.size = config, image.size
        thumb = image.copy()
        thumb.thumbnail((config.analysis_size, config.analysis_size), Image.Resampling.BOX)
        smooth = np.asarray(thumb.filter(ImageFilter.MedianFilter(3)), dtype=np.float32)
        h, w = smooth.shape[:2]
        self.labels = _kmeans(smooth.reshape(-1, 3), config.clusters).reshape(h, w)
        self.components = _components(self.labels)
        count = int(self.components.max()) + 1
        flat = self.components.ravel()
        self.areas = np.bincount(flat, minlength=count) / flat.size
        ys, xs = np.indices((h, w))
        self.cx = np.bincount(flat, (xs.ravel() + 0.5) / w, count) / (self.areas * flat.size)
        self.cy = np.bincount(flat, (ys.ravel() + 0.5) / h, count) / (self.areas * flat.size)
        colors = np.asarray(thumb, dtype=np.float32).reshape(-1, 3)
        self.mean = np.stack([np.bincount(flat, colors[:, c], count) for c in range(3)], 1) / (
            self.areas[:, None] * flat.size
        )
        frame = np.zeros((h, w), bool)
        frame[0, :] = frame[-1, :] = frame[:, 0] = frame[:, -1] = True
        self.frame = frame
        self.on_border = set(np.unique(self.components[frame]).tolist())
        self.cell = max(image.size) / max(h, w)  # image pixels per thumbnail pixel

    def region(self, ids: list[int]) -> _Region:
        area = float(self.areas[ids].sum())
        weights = self.areas[ids] / area
        mask = np.isin(self.components, ids)
        rows, cols = np.nonzero(mask)
        h, w = mask.shape
        box = [cols.min() / w, rows.min() / h, (cols.max() + 1 - cols.min()) / w, (rows.max() + 1 - rows.min()) / h]
        return _Region(
            ids=[int(i) for i in ids],
            color=_color_name(weights @ self.mean[ids]),
            area=round(area, 4),
            center=(float(weights @ self.cx[ids]), float(weights @ self.cy[ids])),
            box=[round(float(v), 4) for v in box],
            inner=not any(i in self.on_border for i in ids),
        )

    def pick(self, category: str, rng, color: str | None, where: str | None, prefer_inner: bool = False) -> _Region:
        """A region of the configured size, of ``color`` and in cell ``where`` when they are given."""
        low, high = self.config.region_area
        candidates = [self.region([i]) for i in np.flatnonzero((self.areas >= low) & (self.areas <= high))]
        candidates = [r for r in candidates if color is None or r.color == color]
        candidates = [r for r in candidates if where is None or r.where == where]
        if prefer_inner and any(r.inner for r in candidates):
            candidates = [r for r in candidates if r.inner]
        if not candidates:
            asked = " ".join(w for w in (color, "region", where and f"{_phrase(where)}") if w)
            raise ValueError(
                f"{category} edit: no {asked} covering {low:.1%} to {high:.1%} of the image was found "
                f"(regions come from a {self.config.clusters}-colour segmentation; see ProceduralConfig.region_area)"
            )
        return candidates[int(rng.integers(len(candidates)))]

    def background(self) -> _Region:
        """The border-touching components of the colours seen more along the border than in the middle.

        A photo's subject tends to fill the middle; a colour that covers at least a tenth of the border
        and less of the middle half of the image is taken for background (else the commonest border colour).
        """
        h, w = self.labels.shape
        count = self.config.clusters
        border = np.bincount(self.labels[self.frame], minlength=count) / self.frame.sum()
        middle = self.labels[h // 4 : h - h // 4, w // 4 : w - w // 4].ravel()
        center = np.bincount(middle, minlength=count) / max(1, middle.size)
        colors = np.flatnonzero((border >= 0.1) & (border > center))
        if colors.size == 0:
            colors = np.array([int(np.argmax(border))])
        ids = [i for i in sorted(self.on_border) if self.labels[self.components == i][0] in colors]
        return self.region(ids)

    def alpha(self, region: _Region) -> np.ndarray:
        """The region as a soft mask in [0, 1] at the image's size."""
        mask = Image.fromarray(np.isin(self.components, region.ids).astype(np.uint8) * 255)
        # Half a thumbnail pixel of blur hides the blocks of the upsampled mask.
        soft = mask.resize(self.size, Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(self.cell / 2))
        return np.asarray(soft, dtype=np.float32) / 255

    def hole(self, region: _Region) -> np.ndarray:
        """The region grown by about one thumbnail pixel, so that no rim of the object is left behind."""
        grown = Image.fromarray((self.alpha(region) * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(self.cell))
        return np.asarray(grown) > 8


def _kmeans(points: np.ndarray, k: int, iterations: int = 10) -> np.ndarray:
    """Cluster labels; farthest-point initialisation makes the result depend on the image alone."""
    centers = [points[np.argmin(np.abs(points - points.mean(0)).sum(1))]]
    for _ in range(k - 1):
        distance = np.min([((points - c) ** 2).sum(1) for c in centers], axis=0)
        centers.append(points[int(np.argmax(distance))])
    centers = np.array(centers)
    for _ in range(iterations):
        labels = np.argmin(((points[:, None, :] - centers[None]) ** 2).sum(-1), axis=1)
        for j in range(k):
            if np.any(labels == j):
                centers[j] = points[labels == j].mean(0)
    return labels


def _components(labels: np.ndarray) -> np.ndarray:
    """4-connected components of equal labels (a flood fill on the thumbnail; it is at most 256 x 256)."""
    h, w = labels.shape
    value = labels.tolist()
    component = [[-1] * w for _ in range(h)]
    count = 0
    for y0 in range(h):
        for x0 in range(w):
            if component[y0][x0] >= 0:
                continue
            component[y0][x0], stack, label = count, [(y0, x0)], value[y0][x0]
            while stack:
                y, x = stack.pop()
                for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                    if 0 <= ny < h and 0 <= nx < w and component[ny][nx] < 0 and value[ny][nx] == label:
                        component[ny][nx] = count
                        stack.append((ny, nx))
            count += 1
    return np.array(component)


def _color_name(rgb) -> str:
    """The nearest everyday colour word for an RGB colour, read from its hue, saturation and value."""
    r, g, b = (float(c) / 255 for c in rgb)
    high, low = max(r, g, b), min(r, g, b)
    saturation = 0.0 if high == 0 else (high - low) / high
    if high < 0.2:
        return "black"
    if saturation < 0.2 or high - low < 0.08:
        return "white" if high > 0.8 else "gray" if high > 0.3 else "black"
    if high == r:
        hue = (60 * (g - b) / (high - low)) % 360
    elif high == g:
        hue = 60 * (b - r) / (high - low) + 120
    else:
        hue = 60 * (r - g) / (high - low) + 240
    if 15 <= hue < 45 and high < 0.6:
        return "brown"
    for limit, name in ((15, "red"), (45, "orange"), (70, "yellow"), (165, "green"), (200, "cyan"), (260, "blue")):
        if hue < limit:
            return name
    return "purple" if hue < 295 else "pink" if hue < 340 else "red"


# --- pixels -----------------------------------------------------------------------------------------


def _choice(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _phrase(where: str) -> str:
    preposition = "at" if where in ("top", "bottom") else "on" if where in ("left", "right") else "in"
    return f"{preposition} the {where}"


def _spot(where: str, half: tuple[float, float], size: tuple[int, int], rng) -> tuple[float, float]:
    """A random centre inside grid cell ``where`` that keeps a box of half-extents ``half`` in the image."""
    point = []
    for cell, extent, side in zip(POSITIONS[where], half, size):
        low, high = max(cell * side / 3, extent), min((cell + 1) * side / 3, side - extent)
        point.append(
            float(rng.uniform(low, high)) if low < high else min(max((cell + 0.5) * side / 3, extent), side - extent)
        )
    return point[0], point[1]


def _relative_box(left, top, width, height, image) -> list[float]:
    x0, y0 = max(0.0, left / image.width), max(0.0, top / image.height)
    x1, y1 = min(1.0, (left + width) / image.width), min(1.0, (top + height) / image.height)
    return [round(x0, 4), round(y0, 4), round(x1 - x0, 4), round(y1 - y0, 4)]


def _luminance(rgb) -> float:
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def _shape_patch(shape: str, rgb: tuple[int, int, int], side: int) -> Image.Image:
    """An RGBA object: filled, outlined in a darker tone, lit from the top left; drawn at 4x and downsampled."""
    s = side * 4
    pad, width = s * 0.06, max(3, s // 20)
    layer = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    style = {"fill": rgb, "outline": tuple(int(c * 0.45) for c in rgb), "width": width}
    if shape == "circle":
        draw.ellipse([pad, pad, s - pad, s - pad], **style)
    elif shape == "square":
        draw.rounded_rectangle([pad, pad, s - pad, s - pad], radius=s // 12, **style)
    else:
        corners, radius = (3, [s / 2 - pad]) if shape == "triangle" else (10, [s / 2 - pad, (s / 2 - pad) * 0.45])
        angles = [2 * math.pi * i / corners for i in range(corners)]
        points = [
            (s / 2 + radius[i % len(radius)] * math.sin(a), s / 2 - radius[i % len(radius)] * math.cos(a))
            for i, a in enumerate(angles)
        ]
        if shape == "triangle":  # centre the triangle's box vertically
            points = [(x, y + (s / 2 - pad) / 4) for x, y in points]
        draw.polygon(points, **style)
    pixels = np.asarray(layer, dtype=np.float32).copy()
    ramp = np.linspace(1.25, 0.75, s, dtype=np.float32)
    pixels[..., :3] *= ((ramp[:, None] + ramp[None, :]) / 2)[..., None]
    patch = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGBA")
    return patch.resize((side, side), Image.Resampling.LANCZOS)


def _blend(pixels: np.ndarray, layer, alpha: np.ndarray) -> Image.Image:
    layer = np.asarray(layer, dtype=np.float32)
    mixed = pixels * (1 - alpha[..., None]) + layer * alpha[..., None]
    return Image.fromarray(np.clip(np.rint(mixed), 0, 255).astype(np.uint8))


def _recolor(image: Image.Image, color: str) -> Image.Image:
    """The image in the hue of ``color``, its shading kept (value mixed with the colour's own value)."""
    hsv = np.asarray(image.convert("HSV"), dtype=np.float32).copy()
    target = np.asarray(Image.new("RGB", (1, 1), NAMED_COLORS[color]).convert("HSV"), dtype=np.float32)[0, 0]
    if target[1] < 60:  # white, gray, black: no hue, the value moves towards the colour's
        hsv[..., 1] = 0
        hsv[..., 2] = 0.35 * hsv[..., 2] + 0.65 * target[2]
    else:
        hsv[..., 0] = target[0]
        hsv[..., 1] = np.maximum(hsv[..., 1], 0.85 * target[1])
        hsv[..., 2] = 0.6 * hsv[..., 2] + 0.4 * target[2]
    return Image.fromarray(np.clip(hsv, 0, 255).astype(np.uint8), "HSV").convert("RGB")


def _stylize(image: Image.Image, style: str) -> Image.Image:
    side = min(image.size)
    if style == "sketch":  # colour dodge of the grey image by its blurred negative: pencil lines on white
        gray = np.asarray(image.convert("L"), dtype=np.float32)
        blurred = ImageOps.invert(image.convert("L")).filter(ImageFilter.GaussianBlur(max(1.0, side / 60)))
        dodge = gray * 255 / np.maximum(255 - np.asarray(blurred, dtype=np.float32), 1)
        return Image.fromarray(np.clip(dodge, 0, 255).astype(np.uint8)).convert("RGB")
    if style == "oil painting":  # flat brush strokes: the most common colour of each neighbourhood
        painted = image.filter(ImageFilter.ModeFilter(max(3, side // 64 * 2 + 1)))
        return ImageEnhance.Color(ImageOps.posterize(painted, 4)).enhance(1.4)
    if style == "poster":
        return ImageEnhance.Color(ImageOps.posterize(image, 2)).enhance(1.3)
    if style == "mosaic":
        tile = max(3, side // 24)
        small = image.resize((max(1, image.width // tile), max(1, image.height // tile)), Image.Resampling.BOX)
        return small.resize(image.size, Image.Resampling.NEAREST)
    if style == "cartoon":  # flat colours and dark outlines
        flat = np.asarray(ImageOps.posterize(image.filter(ImageFilter.MedianFilter(5)), 3), dtype=np.float32)
        edges = np.asarray(image.convert("L").filter(ImageFilter.FIND_EDGES), dtype=np.float32)
        lines = (edges > 40)[..., None]
        return Image.fromarray(np.where(lines, flat * 0.2, flat).astype(np.uint8))
    return image.convert("L").convert("RGB")  # black and white


def _relight(image: Image.Image, look: str, strength: float) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float32)
    if look == "night":  # dark, blue, low contrast in the shadows
        changed = pixels * np.array([0.25, 0.32, 0.55], np.float32) + np.array([0, 4, 16], np.float32)
    elif look == "foggy":  # a pale veil, thicker towards the top
        veil = np.linspace(0.75, 0.45, image.height, dtype=np.float32)[:, None, None]
        blurred = np.asarray(image.filter(ImageFilter.GaussianBlur(max(1.0, min(image.size) / 150))), np.float32)
        changed = blurred * (1 - veil) + 215 * veil
    elif look == "sunset":  # warm light, dimmer, orange tint
        changed = pixels * np.array([1.1, 0.78, 0.5], np.float32) + np.array([30, 10, 0], np.float32)
    elif look == "brighter":
        changed = pixels * 1.45 + 25
    else:
        changed = pixels * 0.45
    mixed = pixels + strength * (changed - pixels)
    return Image.fromarray(np.clip(np.rint(mixed), 0, 255).astype(np.uint8))


def _box_blur(array: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window, twice (close to a Gaussian), by cumulative sums: fast for any radius."""
    for _ in range(2):
        for axis in (0, 1):
            pad = [(0, 0)] * array.ndim
            pad[axis] = (radius + 1, radius)
            total = np.cumsum(np.pad(array, pad, mode="edge"), axis=axis, dtype=np.float64)
            head = np.take(total, np.arange(2 * radius + 1, total.shape[axis]), axis=axis)
            tail = np.take(total, np.arange(0, total.shape[axis] - 2 * radius - 1), axis=axis)
            array = ((head - tail) / (2 * radius + 1)).astype(np.float32)
    return array


def _inpaint(pixels: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Fill ``hole`` from its surroundings: averages of the known pixels, coarse to fine.

    Each scale fills the pixels whose window holds enough known pixels; finer scales overwrite coarser
    ones, so the fill matches the rim closely and is smooth in the middle of the hole.
    """
    filled = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    if not hole.any():
        return filled
    radius = max(2, int(math.sqrt(hole.sum()) / 2))
    # Only a margin of two windows around the hole can reach it: work on that crop.
    rows, cols = np.nonzero(hole)
    margin = 4 * radius + 2
    crop = np.s_[
        max(0, rows.min() - margin) : rows.max() + margin + 1, max(0, cols.min() - margin) : cols.max() + margin + 1
    ]
    part, gap = pixels[crop].astype(np.float32), hole[crop]
    known = (~gap).astype(np.float32)
    result = part.copy()
    while radius >= 1:
        weight = _box_blur(known, radius)
        estimate = _box_blur(part * known[..., None], radius) / np.maximum(weight, 1e-6)[..., None]
        usable = gap & (weight > 0.25)
        result[usable] = estimate[usable]
        radius //= 2
    smooth = _box_blur(result, 2)
    result[gap] = smooth[gap]
    filled[crop] = np.clip(np.rint(result), 0, 255).astype(np.uint8)
    return filled


def _rescale_region(base: np.ndarray, source: np.ndarray, alpha: np.ndarray, factor: float) -> Image.Image:
    """``base`` with the region ``alpha`` of ``source`` pasted back ``factor`` times its size, same centre."""
    rows, cols = np.nonzero(alpha > 0.05)
    box = (int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1)
    layer = np.dstack([source, alpha * 255])
    patch = Image.fromarray(np.clip(np.rint(layer), 0, 255).astype(np.uint8), "RGBA").crop(box)
    width, height = max(1, round(patch.width * factor)), max(1, round(patch.height * factor))
    patch = patch.resize((width, height), Image.Resampling.LANCZOS)
    center_x, center_y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    edited = Image.fromarray(np.clip(np.rint(base), 0, 255).astype(np.uint8))
    edited.paste(patch, (round(center_x - width / 2), round(center_y - height / 2)), patch)
    return edited
