"""``photo-edits``: a seeded benchmark of procedural edits of real photographs.

Each pair is a square crop of a photograph that ships with an installed package (scikit-image,
scikit-learn, matplotlib; public domain, CC0 or CC BY) and the same crop after one edit of the
paper's categories that a procedural editor can do honestly (:class:`ProceduralEditor`): a shape
added, text written, a region repainted, the background changed, a style, a global look, an object
removed (inpainted), a region blurred / darkened / brightened; or nothing (``none``). Every modified
image, changed or not, is also re-encoded or resized, so pixel equality never reveals "no change".

Whole photographs are held out: the test split is cut from photographs that neither training nor
validation ever see, not even as a crop (:data:`PHOTO_SPLITS`). Each pair has at least five reference
captions that name the kind of edit, its colour where it has one and where it is; the truth is in
``metadata["edit"]`` (kind, color, place, effect), the edit's box (when it has one) in
``metadata["boxes"]``, and a coarse description of both images (the colour of each cell of a 3 x 3
grid) in ``metadata["layout"]`` for the describe-both-images pretraining task.
"""

from __future__ import annotations

import importlib.util
import io
import itertools
import multiprocessing
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from idc_engine.data.manifest import write_manifest
from idc_engine.data.pair import SPLITS, IDCPair
from idc_engine.synth.procedural import (
    NAMED_COLORS,
    PAINT_COLORS,
    POSITIONS,
    ProceduralConfig,
    ProceduralEditor,
    _color_name,
)


@dataclass(frozen=True)
class Photo:
    name: str
    package: str  # the installed package that ships it
    path: str  # inside the package's folder
    licence: str


# Every photograph the benchmark may use, with its licence (from the package's own documentation).
PHOTOS: dict[str, Photo] = {
    p.name: p
    for p in (
        Photo("astronaut", "skimage", "data/astronaut.png", "public domain (NASA)"),
        Photo("chelsea", "skimage", "data/chelsea.png", "CC0 (Stefan van der Walt)"),
        Photo("coffee", "skimage", "data/coffee.png", "CC0 (Rachel Michetti)"),
        Photo("rocket", "skimage", "data/rocket.jpg", "public domain (SpaceX)"),
        Photo("hubble_deep_field", "skimage", "data/hubble_deep_field.jpg", "public domain (NASA)"),
        Photo("immunohistochemistry", "skimage", "data/ihc.png", "no known copyright restrictions"),
        Photo("retina", "skimage", "data/retina.jpg", "CC0 (Mikael Häggström)"),
        Photo("camera", "skimage", "data/camera.png", "CC0 (Lav Varshney)"),
        Photo("coins", "skimage", "data/coins.png", "no known copyright restrictions"),
        Photo("moon", "skimage", "data/moon.png", "no known copyright restrictions"),
        Photo("page", "skimage", "data/page.png", "scikit-image sample data (BSD-3-Clause)"),
        Photo("text", "skimage", "data/text.png", "public domain"),
        Photo("brick", "skimage", "data/brick.png", "CC0 (CC0Textures)"),
        Photo("grass", "skimage", "data/grass.png", "CC0 (CC0Textures)"),
        Photo("gravel", "skimage", "data/gravel.png", "CC0 (CC0Textures)"),
        Photo("cell", "skimage", "data/cell.png", "CC0"),
        Photo("flower", "sklearn", "datasets/images/flower.jpg", "CC BY 2.0 (vultilion, Flickr)"),
        Photo("china", "sklearn", "datasets/images/china.jpg", "CC BY 2.0 (danielbuechele, Flickr)"),
        Photo("grace_hopper", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "public domain (US Navy)"),
    )
}
# Whole photographs per split: a test photograph is never seen in training or validation, not even cropped.
PHOTO_SPLITS: dict[str, tuple[str, ...]] = {
    "train": (
        "astronaut",
        "chelsea",
        "rocket",
        "hubble_deep_field",
        "immunohistochemistry",
        "retina",
        "camera",
        "coins",
        "moon",
        "page",
        "text",
        "brick",
        "grass",
        "gravel",
        "cell",
    ),
    "validation": ("flower",),
    "test": ("coffee", "china", "grace_hopper"),
}
EDIT_KINDS = ("add", "text", "color", "background", "style", "global", "remove", "local")
CATEGORIES = (*EDIT_KINDS, "none")
ADD_SHAPES = ("circle", "square", "triangle", "star")
TEXT_PLACES = ("top", "center", "bottom")  # text spans most of the width: only its row is honest
LOCAL_EFFECTS = ("blurred", "darker", "brighter")
# Edits an original may already carry (shared_edit_share): the ones a single image shows as "edited".
SHARED_KINDS = ("add", "text", "color", "background")
STYLE_NAMES = {
    "sketch": "a pencil sketch",
    "oil painting": "an oil painting",
    "poster": "a poster",
    "mosaic": "a mosaic",
    "cartoon": "a cartoon",
    "black and white": "a black and white photo",
}
# An edit must be visible: at least this share of the pixels must move by more than VISIBLE_STEP (of 255);
# a background this small, or a region darkened that was black already, would make a false caption.
VISIBLE_STEP, MIN_VISIBLE_SHARE, MIN_BACKGROUND = 40, 0.015, 0.2
GRID = ("top left", "top", "top right", "left", "center", "right", "bottom left", "bottom", "bottom right")

# Several wordings per kind: CIDEr rewards consensus with many references. {where} is a place phrase
# ("in the top left", "at the bottom", "on the right"), {from_where} one with "from".
TEMPLATES: dict[str, tuple[str, ...]] = {
    "add": (
        "{a_color} {shape} was added {where}",
        "{a_color} {shape} has been added {where}",
        "there is a new {color} {shape} {where}",
        "someone put {a_color} {shape} {where}",
        "{a_color} {shape} appeared {where}",
    ),
    "text": (
        "{color} text was written {where}",
        "text was written in {color} {where}",
        "{color} letters were added {where}",
        "someone wrote a word in {color} {where}",
        "a word in {color} letters appeared {where}",
    ),
    "color": (
        "an area {where} was painted {color}",
        "a region {where} turned {color}",
        "a part of the image {where} is now {color}",
        "something {where} changed color to {color}",
        "an area {where} was colored {color}",
    ),
    "background": (
        "the background was painted {color}",
        "the background turned {color}",
        "the background is now {color}",
        "the background was made {color}",
        "someone changed the background to {color}",
    ),
    "style": (
        "the photo was turned into {style}",
        "the image now looks like {style}",
        "the picture was made to look like {style}",
        "the photo has been rendered as {style}",
        "someone made the photo look like {style}",
    ),
    "remove": (
        "an object was removed {from_where}",
        "something was removed {from_where}",
        "an object {where} was erased",
        "something {where} is gone",
        "an object {where} was painted over",
    ),
    "none": (
        "there is no change",
        "nothing has changed",
        "no change was made",
        "the two images are the same",
        "the photo is unchanged",
    ),
}
# Global looks and local changes: wordings per effect.
GLOBAL_TEMPLATES: dict[str, tuple[str, ...]] = {
    "darker": (
        "the image was made darker",
        "the photo is darker now",
        "the whole picture got darker",
        "someone darkened the image",
        "the brightness of the photo was lowered",
    ),
    "brighter": (
        "the image was made brighter",
        "the photo is brighter now",
        "the whole picture got brighter",
        "someone brightened the image",
        "the brightness of the photo was raised",
    ),
    "night": (
        "the photo was made to look like night",
        "the image now looks like night",
        "the scene was turned into night",
        "it looks like night time now",
        "someone made the photo look like night",
    ),
    "foggy": (
        "the image was made foggy",
        "fog was added to the photo",
        "the scene now looks foggy",
        "the photo looks foggy now",
        "someone made the image foggy",
    ),
    "sunset": (
        "the photo was made to look like sunset",
        "the image now has the light of a sunset",
        "the scene was turned into a sunset",
        "it looks like sunset now",
        "someone made the photo look like sunset",
    ),
}
LOCAL_TEMPLATES: dict[str, tuple[str, ...]] = {
    "blurred": (
        "a region {where} was blurred",
        "an area {where} is blurry now",
        "something {where} was blurred",
        "a part of the image {where} was made blurry",
        "someone blurred an area {where}",
    ),
    "darker": (
        "a region {where} was made darker",
        "an area {where} got darker",
        "something {where} was darkened",
        "a part of the image {where} is darker now",
        "someone darkened an area {where}",
    ),
    "brighter": (
        "a region {where} was made brighter",
        "an area {where} got brighter",
        "something {where} was brightened",
        "a part of the image {where} is brighter now",
        "someone brightened an area {where}",
    ),
}


@dataclass
class PhotoEditsConfig:
    """Every knob of the generator; the only home of its defaults."""

    image_size: int = field(default=128, metadata={"help": "side of each square image, in pixels"})
    crop_scale: tuple[float, float] = field(
        default=(0.4, 1.0),
        metadata={"help": "side of the square crop, range as a fraction of the photo's shorter side"},
    )
    unchanged_share: float = field(default=0.2, metadata={"help": "fraction of pairs with no edit (noise only)"})
    categories: tuple[str, ...] = field(default=EDIT_KINDS, metadata={"help": "edit kinds drawn from"})
    object_size: tuple[float, float] = field(
        default=(0.22, 0.34), metadata={"help": "side of an added shape, range as a fraction of the image"}
    )
    text_height: float = field(default=0.2, metadata={"help": "letter size of a text edit, fraction of the image"})
    region_area: tuple[float, float] = field(
        default=(0.03, 0.25), metadata={"help": "area of a region that color / remove / local edit, fraction"}
    )
    photo_augment: bool = field(
        default=True, metadata={"help": "vary training photos' hue, tint and contrast before editing (train only)"}
    )
    shared_edit_share: float = field(
        default=0.0,
        metadata={
            "help": "fraction of pairs whose original already carries an edit (a shape, text, a repainted area or "
            "background) that the copy keeps: only a comparison of the two images tells which edit is new"
        },
    )
    seed: int = field(default=0, metadata={"help": "seed; the same seed and sizes give the same pairs"})

    def __post_init__(self):
        if not 0.0 <= self.shared_edit_share <= 1.0:
            raise ValueError(f"shared_edit_share must be in [0, 1], got {self.shared_edit_share!r}")
        self.crop_scale, self.object_size = tuple(self.crop_scale), tuple(self.object_size)
        self.region_area, self.categories = tuple(self.region_area), tuple(self.categories)
        if not 32 <= self.image_size <= 1024:
            raise ValueError(f"image_size must be between 32 and 1024, got {self.image_size!r}")
        for name in ("crop_scale", "object_size", "region_area"):
            low, high = getattr(self, name)
            if not 0 < low <= high <= 1:
                raise ValueError(f"{name} must be a range (low, high) with 0 < low <= high <= 1, got {(low, high)!r}")
        if not 0.0 <= self.unchanged_share < 1.0:
            raise ValueError(f"unchanged_share must be in [0, 1), got {self.unchanged_share!r}")
        unknown = [c for c in self.categories if c not in EDIT_KINDS]
        if unknown or not self.categories:
            raise ValueError(f"categories must be a non-empty subset of {EDIT_KINDS}, got {self.categories!r}")
        if not 0.05 <= self.text_height <= 0.4:
            raise ValueError(f"text_height must be in [0.05, 0.4], got {self.text_height!r}")

    def editor(self) -> ProceduralEditor:
        return ProceduralEditor(
            ProceduralConfig(
                object_size=self.object_size,
                text_height=self.text_height,
                region_area=self.region_area,
                local_changes=LOCAL_EFFECTS,
            )
        )


# --- photographs ----------------------------------------------------------------------------------


def photo_path(name: str) -> Path:
    """Where the installed package keeps photograph ``name``; a clear error when it is not installed."""
    if name not in PHOTOS:
        raise ValueError(f"photo must be one of {sorted(PHOTOS)}, got {name!r}")
    photo = PHOTOS[name]
    spec = importlib.util.find_spec(photo.package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"photo {name!r} ships with the package {photo.package!r}, which is not installed "
            "(it comes with FiftyOne: pip install 'idc[fiftyone]')"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / photo.path
    if not path.is_file():
        raise FileNotFoundError(f"photo {name!r}: {path} is missing from the installed {photo.package!r}")
    return path


@lru_cache(maxsize=32)
def load_photo(name: str) -> Image.Image:
    """The photograph as RGB (grey photographs get three equal channels)."""
    with Image.open(photo_path(name)) as image:
        return image.convert("RGB")


def _crop(photo: Image.Image, size: int, scale: tuple[float, float], rng) -> tuple[Image.Image, list[float]]:
    side = max(16, round(float(rng.uniform(*scale)) * min(photo.size)))
    left = int(rng.integers(0, photo.width - side + 1))
    top = int(rng.integers(0, photo.height - side + 1))
    crop = photo.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.LANCZOS)
    if rng.random() < 0.5:
        crop = ImageOps.mirror(crop)
    box = [left / photo.width, top / photo.height, side / photo.width, side / photo.height]
    return crop, [round(v, 4) for v in box]


def _vary(image: Image.Image, rng) -> Image.Image:
    """A training photo turned, recoloured and in other contrast, so that fifteen photographs look like many.

    Nine of the training photographs are grey: left grey, "any colour in the edited image is the edit"
    would be a shortcut that fails on every colour photograph. So grey ones get a random two-colour
    tone, colour ones a random hue and saturation; a few of each stay (or turn) grey.
    """
    image = image.rotate(90 * int(rng.integers(4)))
    pixels = np.asarray(image, dtype=np.float32)
    grey = np.ptp(pixels, axis=2).max() < 8
    if grey and rng.random() < 0.85:
        light = pixels.mean(axis=2, keepdims=True) / 255
        dark, bright = rng.uniform(0, 120, size=3), rng.uniform(135, 255, size=3)
        toned = dark + (bright - dark) * light
        strength = float(rng.uniform(0.6, 1.0))
        image = Image.fromarray(np.clip(pixels + strength * (toned - pixels), 0, 255).astype(np.uint8))
    elif not grey:
        if rng.random() < 0.1:
            image = image.convert("L").convert("RGB")
        else:
            hsv = np.asarray(image.convert("HSV"), dtype=np.float32).copy()
            hsv[..., 0] = (hsv[..., 0] + int(rng.integers(256))) % 256
            hsv[..., 1] = np.clip(hsv[..., 1] * float(rng.uniform(0.7, 1.4)), 0, 255)
            image = Image.fromarray(hsv.astype(np.uint8), "HSV").convert("RGB")
    image = ImageEnhance.Contrast(image).enhance(float(rng.uniform(0.8, 1.2)))
    return ImageEnhance.Brightness(image).enhance(float(rng.uniform(0.85, 1.15)))


def _noise(image: Image.Image, rng) -> tuple[Image.Image, str]:
    """Re-encoding and / or resizing: what happens to a copy of a photo that nobody edited."""
    kind = ("jpeg", "resize", "resize+jpeg")[int(rng.integers(3))]
    if "resize" in kind:
        factor = float(rng.uniform(0.6, 0.9))
        small = (max(8, round(image.width * factor)), max(8, round(image.height * factor)))
        image = image.resize(small, Image.Resampling.BILINEAR).resize(image.size, Image.Resampling.BICUBIC)
    if "jpeg" in kind:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=int(rng.integers(55, 92)))
        buffer.seek(0)
        image = Image.open(buffer).convert("RGB")
    return image, kind


def describe_layout(image: Image.Image) -> str:
    """The colour of each cell of a 3 x 3 grid, row by row: 'gray gray blue, green ..., ...'."""
    cells = np.asarray(image.convert("RGB").resize((3, 3), Image.Resampling.BOX), dtype=np.float32)
    return ", ".join(" ".join(_color_name(cells[row, col]) for col in range(3)) for row in range(3))


def describe_pair(metadata: dict) -> str:
    """Both images of a photo-edits pair, for the describe-both-images pretraining task."""
    return f"top: {metadata['layout']['reference']}. bottom: {metadata['layout']['modified']}"


# --- edits and captions ---------------------------------------------------------------------------


def place_phrase(place: str, moving_from: bool = False) -> str:
    """'in the top left', 'at the top', 'on the left', 'in the center' (or 'from the ...')."""
    if moving_from:
        return f"from the {place}"
    preposition = "at" if place in ("top", "bottom") else "on" if place in ("left", "right") else "in"
    return f"{preposition} the {place}"


def captions_for(edit: dict) -> list[str]:
    """Every reference caption of an edit (``metadata["edit"]``): at least five, all different."""
    kind = edit["kind"]
    if kind == "global":
        return list(GLOBAL_TEMPLATES[edit["effect"]])
    if kind == "local":
        templates = LOCAL_TEMPLATES[edit["effect"]]
    else:
        templates = TEMPLATES[kind]
    color = edit.get("color")
    words = {
        "color": color,
        "a_color": color and f"{'an' if color[0] in 'aeiou' else 'a'} {color}",
        "shape": edit.get("shape"),
        "style": STYLE_NAMES.get(edit.get("effect")),
        "where": place_phrase(edit["place"]) if edit.get("place") else None,
        "from_where": place_phrase(edit["place"], moving_from=True) if edit.get("place") else None,
    }
    return [template.format(**words) for template in templates]


def _edit(image: Image.Image, kind: str, config: PhotoEditsConfig, rng) -> tuple[Image.Image, dict, list | None]:
    """Carry out one edit of ``kind``; return the image, the truth (kind, color, place, effect, ...) and its box."""
    editor, seed = config.editor(), int(rng.integers(2**31))
    if kind == "add":
        color, shape, place = (_pick(rng, options) for options in (PAINT_COLORS, ADD_SHAPES, GRID))
        result = editor.edit(image, f"add a {color} {shape} {place_phrase(place)}", "add", seed)
        truth = {"color": color, "shape": shape, "place": place}
    elif kind == "text":
        word, color, place = _pick(rng, editor.config.words), _pick(rng, list(NAMED_COLORS)), _pick(rng, TEXT_PLACES)
        result = editor.edit(image, f"write '{word}' in {color} letters {place_phrase(place)}", "text", seed)
        truth = {"color": color, "place": place, "word": word}
    elif kind == "background":
        color, plain = _pick(rng, PAINT_COLORS), rng.random() < 0.5
        instruction = f"replace the background with plain {color}" if plain else f"make the background {color}"
        result = editor.edit(image, instruction, "background", seed)
        if result.settings["operation"]["area"] < MIN_BACKGROUND:
            raise ValueError(f"background edit: the background found covers less than {MIN_BACKGROUND:.0%}")
        truth = {"color": color}
    else:
        result = editor.edit(image, None, kind, seed)
        op = result.settings["operation"]
        truth = {
            "color": {"color": op.get("to"), "background": op.get("color")}.get(kind),
            "place": op.get("position") if kind in ("color", "remove", "local") else None,
            "effect": {"style": op.get("style"), "global": op.get("look"), "local": op.get("change")}.get(kind),
        }
        if kind == "color":
            truth["from"] = op["from"]
    changed = np.abs(np.asarray(result.image, np.int16) - np.asarray(image, np.int16)).max(axis=2) > VISIBLE_STEP
    if changed.mean() < MIN_VISIBLE_SHARE:
        raise ValueError(f"{kind} edit: fewer than {MIN_VISIBLE_SHARE:.1%} of the pixels visibly changed")
    box = result.settings["operation"].get("box")
    if kind in ("add", "text") and not _clearly_in(box, truth["place"], vertical_only=kind == "text"):
        raise ValueError(f"{kind} edit: its box {box} lies on the border of the cell {truth['place']!r}")
    edit = {"kind": kind, "color": None, "place": None, "effect": None, **truth}
    edit["instruction"] = result.instruction
    return result.image, edit, box


def _clearly_in(box: list[float], place: str, vertical_only: bool = False, margin: float = 0.05) -> bool:
    """Whether the centre of ``box`` (relative x, y, w, h) lies inside grid cell ``place``, off its borders."""
    column, row = POSITIONS[place]
    center = (box[0] + box[2] / 2, box[1] + box[3] / 2)
    for axis, cell in ((1, row),) if vertical_only else ((0, column), (1, row)):
        low, high = cell / 3, (cell + 1) / 3
        if not (low + (margin if cell > 0 else 0) <= center[axis] <= high - (margin if cell < 2 else 0)):
            return False
    return True


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def make_pair(config: PhotoEditsConfig, index: int, split: str, rng: np.random.Generator) -> dict:
    """One crop of one of ``split``'s photographs and one edit (or none); the images and the annotations."""
    photos = PHOTO_SPLITS[split]
    # Held-out splits cycle through their photographs, so that each is equally represented.
    name = photos[index % len(photos)] if split != "train" else _pick(rng, photos)
    kind = "none" if rng.random() < config.unchanged_share else _pick(rng, list(config.categories))
    # The kind is drawn once, so that kinds stay balanced: a crop where it cannot be done visibly (no
    # region of the wanted size, a darkening of what is black already) is replaced by another crop.
    for attempt in range(1, 61):
        if attempt % 15 == 0:  # rare: this photograph hardly allows the kind; another one (or kind) does
            if split == "train" and attempt < 45:
                name = _pick(rng, photos)
            elif attempt < 45:
                kind = _pick(rng, list(config.categories))
            else:  # an added shape is visible on any photograph
                kind = "add" if "add" in config.categories else _pick(rng, list(config.categories))
        reference, crop_box = _crop(load_photo(name), config.image_size, config.crop_scale, rng)
        if split == "train" and config.photo_augment:
            reference = _vary(reference, rng)
        shared = None
        if config.shared_edit_share and rng.random() < config.shared_edit_share:
            try:  # an edit made before the original was taken: in both images, so not the pair's change
                reference, shared, _ = _edit(reference, _pick(rng, SHARED_KINDS), config, rng)
            except ValueError:
                shared = None
        if kind == "none":
            modified, edit, box = reference, {"kind": "none", "color": None, "place": None, "effect": None}, None
            break
        try:
            modified, edit, box = _edit(reference, kind, config, rng)
            break
        except ValueError:
            continue
    else:
        raise RuntimeError(f"photo-edits: no visible {kind!r} edit found in 60 crops of {name!r} (pair {index})")
    modified, noise = _noise(modified, rng)
    metadata = {
        "edit": edit,
        "photo": name,
        "crop": crop_box,
        "noise": noise,
        "boxes": {"reference": box, "modified": box},
        "layout": {"reference": describe_layout(reference), "modified": describe_layout(modified)},
    }
    if shared is not None:
        metadata["shared_edit"] = shared
    return {
        "reference": reference,
        "modified": modified,
        "captions": captions_for(edit),
        "category": edit["kind"],
        "metadata": metadata,
    }


_SPLIT_CODES = {"train": 1, "validation": 2, "test": 3}


def _write_pair(task: tuple[PhotoEditsConfig, str, int, Path]) -> dict:
    config, split, index, images = task
    rng = np.random.default_rng([config.seed, _SPLIT_CODES[split], index])
    sample = make_pair(config, index, split, rng)
    pair_id = f"{split}-{index:06d}"
    ref_path, mod_path = images / f"{pair_id}_ref.png", images / f"{pair_id}_mod.png"
    sample["reference"].save(ref_path)
    sample["modified"].save(mod_path)
    return {
        "id": pair_id,
        "reference": ref_path,
        "modified": mod_path,
        "captions": sample["captions"],
        "split": split,
        "category": sample["category"],
        "metadata": sample["metadata"],
    }


def generate(
    out_dir,
    train: int,
    test: int,
    validation: int = 0,
    config: PhotoEditsConfig | None = None,
    progress=None,
    workers: int = 1,
) -> Path:
    """Write PNGs and ``manifest.jsonl`` under ``out_dir``; return the manifest path.

    Each pair is drawn from its own generator seeded by ``(seed, split, index)``, so a pair does not
    depend on how many others were asked for, nor on how many ``workers`` (processes) made them.
    """
    config = config or PhotoEditsConfig()
    for name, value in (("train", train), ("test", test), ("validation", validation)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    out_dir = Path(out_dir)
    images = out_dir / "images"
    images.mkdir(parents=True, exist_ok=True)
    tasks = [
        (config, split, index, images)
        for split, count in (("train", train), ("validation", validation), ("test", test))
        for index in range(count)
    ]
    pairs: list[IDCPair] = []
    pool = multiprocessing.get_context("spawn").Pool(workers) if workers > 1 and len(tasks) > 1 else None
    try:
        results = pool.imap(_write_pair, tasks, chunksize=32) if pool else map(_write_pair, tasks)
        for record in results:
            pairs.append(IDCPair(**record))
            if progress is not None:
                progress(len(pairs), len(tasks))
    finally:
        if pool is not None:
            pool.terminate()
    return write_manifest(pairs, out_dir / "manifest.jsonl")


def photo_sources() -> list[dict]:
    """Each photograph with its package, licence and split (for records and the docs)."""
    split_of = {name: split for split in SPLITS for name in PHOTO_SPLITS.get(split, ())}
    return [{**asdict(p), "split": split_of.get(p.name)} for p in PHOTOS.values()]


def caption_corpus() -> list[str]:
    """Every reference caption photo-edits can produce, and layout descriptions in every colour (for tokenizers)."""
    corpus = []
    for kind in EDIT_KINDS + ("none",):
        if kind == "global":
            corpus.extend(c for templates in GLOBAL_TEMPLATES.values() for c in templates)
            continue
        effects = {"local": LOCAL_EFFECTS, "style": tuple(STYLE_NAMES)}.get(kind, (None,))
        colors = list(NAMED_COLORS) if kind in ("text", "add", "color", "background") else [None]
        places = {"text": TEXT_PLACES, "background": (None,), "style": (None,), "none": (None,)}.get(kind, GRID)
        shapes = ADD_SHAPES if kind == "add" else (None,)
        for effect, color, place, shape in itertools.product(effects, colors, places, shapes):
            edit = {"kind": kind, "color": color, "place": place, "effect": effect, "shape": shape}
            corpus.extend(captions_for(edit))
    names = list(NAMED_COLORS)
    for i in range(len(names)):
        row = " ".join(names[(i + j) % len(names)] for j in range(3))
        corpus.append(f"top: {row}, {row}, {row}. bottom: {row}, {row}, {row}")
    return corpus
