"""Edits of shapes-change scenes by re-rendering: synthetic variants that are valid shapes-change pairs.

A shapes-change pair stores its reference scene as objects (``metadata["objects_reference"]``). Editing
those objects and drawing them again with the benchmark's own renderer and nuisance noise gives a new
modified image whose captions are the benchmark's templates, so ``change_reading`` can check captions
written for it, exactly as for the benchmark's own pairs.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

import numpy as np
from PIL import Image

from idc_engine.data.shapes_change import (
    CHANGE_TYPES,
    COLORS,
    SHAPES,
    TEMPLATES,
    SceneSampler,
    Shape,
    ShapesChangeConfig,
    apply_change,
    nuisance,
    render_scene,
)
from idc_engine.metrics.change_reading import ChangeReading, read_change
from idc_engine.synth.editors import check_seed

_COLOR, _SHAPE = "|".join(COLORS), "|".join(SHAPES)
# Imperative forms, beside the change types and the benchmark's own (past-tense) caption templates.
_COMMANDS = (
    ("color", rf"(?:turn|make|paint|color) the (?P<color>{_COLOR}) (?P<shape>{_SHAPE}) (?P<new_color>{_COLOR})"),
    ("color", rf"change the (?P<color>{_COLOR}) (?P<shape>{_SHAPE}) to (?P<new_color>{_COLOR})"),
    ("add", rf"add an? (?P<color>{_COLOR}) (?P<shape>{_SHAPE})"),
    ("drop", rf"(?:remove|delete|take away) the (?P<color>{_COLOR}) (?P<shape>{_SHAPE})"),
    ("move", rf"move the (?P<color>{_COLOR}) (?P<shape>{_SHAPE})(?: somewhere else| elsewhere)?"),
    ("none", r"(?:change nothing|leave the scene unchanged|keep the scene as it is|do nothing)"),
)
_INSTRUCTIONS = {
    "color": "turn the {color} {shape} {new_color}",
    "add": "add a {color} {shape}",
    "drop": "remove the {color} {shape}",
    "move": "move the {color} {shape}",
    "none": "leave the scene unchanged",
}


@dataclass
class ShapesSceneEdit:
    """One edited shapes-change scene, in the form of ``shapes_change.make_pair``'s output."""

    reference: Image.Image  # the reference scene drawn again (the pair's own reference, given its background)
    modified: Image.Image  # the changed scene, with the benchmark's nuisance noise
    instruction: str  # imperative: "turn the red circle blue"
    captions: list[str]  # the benchmark's templates for this change: "the red circle turned blue", ...
    category: str  # the change type
    metadata: dict  # change, boxes, noise, objects_reference, objects_modified (as the benchmark stores them)
    settings: dict = field(default_factory=dict)


def parse_change(change: str) -> ChangeReading:
    """A change type, a shapes-change caption ("the red circle turned blue") or a command ("turn the red circle blue").

    A bare change type leaves the object (and new colour) to be drawn at random: its reading has no colour.
    """
    text = " ".join(str(change).lower().strip().rstrip(".").split())
    if text in CHANGE_TYPES:
        return ChangeReading(text)
    reading = read_change(text)
    if reading is not None:
        return reading
    for kind, pattern in _COMMANDS:
        match = re.fullmatch(pattern, text)
        if match:
            return ChangeReading(kind, **match.groupdict())
    raise ValueError(
        f"change {change!r} is neither a change type {CHANGE_TYPES}, a shapes-change caption "
        "('the red circle turned blue') nor a command ('turn the red circle blue', 'add a green square', "
        "'remove the red circle', 'move the red circle', 'change nothing')"
    )


def scene_background(image: Image.Image) -> int:
    """The grey level a shapes-change scene was drawn on: the commonest value of its border pixels."""
    pixels = np.asarray(image.convert("L"))
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    return int(np.bincount(border, minlength=256).argmax())


def edit_shapes_scene(
    objects: list[dict],
    change: str | None,
    seed: int,
    config: ShapesChangeConfig | None = None,
    background: int | None = None,
) -> ShapesSceneEdit:
    """Carry out ``change`` on the scene ``objects`` and draw both scenes with the benchmark's renderer.

    ``objects``: a pair's ``metadata["objects_reference"]``. ``change``: see :func:`parse_change`; None
    draws a change type from ``config.change_types``. ``background``: the grey level of the pair's
    reference (:func:`scene_background` reads it from the image); None draws one as the benchmark does.
    ``config.image_size`` sets the image size. The same arguments give the same images.
    """
    config = config or ShapesChangeConfig()
    seed = check_seed(seed)
    try:
        before = [Shape(**dict(o)) for o in objects]
    except TypeError as error:
        raise ValueError(f"objects must be shapes-change objects (color, shape, x, y, r), got {objects!r}") from error
    rng = np.random.default_rng(seed)
    sampler = SceneSampler(config, rng)
    if change is None:
        options = [t for t in config.change_types if len(before) >= (2 if t == "drop" else 1) or t in ("add", "none")]
        reading = ChangeReading(options[int(rng.integers(len(options)))])
    else:
        reading = parse_change(change)
    if background is None:
        background = int(rng.integers(185, 235))
    elif not 0 <= background <= 255:
        raise ValueError(f"background must be a grey level in [0, 255], got {background!r}")

    after, target, new_color, boxes = _carry_out(reading, before, sampler)
    modified, noise = nuisance(render_scene(after, config.image_size, background), rng)
    words = {"color": target.color, "shape": target.shape, "new_color": new_color} if target else {}
    metadata = {
        "change": {"type": reading.change, **words},
        "boxes": boxes,
        "noise": noise,
        "objects_reference": [asdict(o) for o in before],
        "objects_modified": [asdict(o) for o in after],
    }
    return ShapesSceneEdit(
        reference=render_scene(before, config.image_size, background),
        modified=modified,
        instruction=_INSTRUCTIONS[reading.change].format(**words),
        captions=[template.format(**words) for template in TEMPLATES[reading.change]],
        category=reading.change,
        metadata=metadata,
        settings={
            "editor": "shapes-scene",
            "seed": seed,
            "change": change,
            "background": background,
            "config": asdict(config),
        },
    )


def _carry_out(reading: ChangeReading, before: list[Shape], sampler: SceneSampler):
    """(objects after, changed object, new colour, boxes), as ``shapes_change.apply_change`` returns them."""
    if reading.color is None:  # only a type: the benchmark's own sampling picks object, colour and place
        if reading.change in ("color", "drop", "move") and len(before) < (2 if reading.change == "drop" else 1):
            raise ValueError(f"change {reading.change!r} needs more objects than the scene's {len(before)}")
        for _ in range(20):
            result = apply_change(reading.change, before, sampler)
            if result is not None:
                return result
        raise ValueError(f"change {reading.change!r}: no free place was found in a scene of {len(before)} objects")

    after = [Shape(**asdict(o)) for o in before]
    kinds = [(o.color, o.shape) for o in before]
    wanted = (reading.color, reading.shape)
    if reading.change == "add":
        if wanted in kinds:
            raise ValueError(f"the scene already has a {reading.color} {reading.shape}; shapes-change kinds are unique")
        r = sampler.radius()
        spot = sampler.free_spot(r, after)
        if spot is None:
            raise ValueError(f"no free place for a {reading.color} {reading.shape} in a scene of {len(before)} objects")
        added = Shape(reading.color, reading.shape, spot[0], spot[1], r)
        return after + [added], added, None, {"reference": None, "modified": added.box()}
    if wanted not in kinds:
        raise ValueError(f"the scene has no {reading.color} {reading.shape}; it has {kinds}")
    index = kinds.index(wanted)
    target = before[index]
    if reading.change == "drop":
        del after[index]
        return after, target, None, {"reference": target.box(), "modified": None}
    if reading.change == "color":
        if reading.new_color == target.color or (reading.new_color, target.shape) in kinds:
            raise ValueError(
                f"cannot turn the {target.color} {target.shape} {reading.new_color}: the scene would not change "
                "or would hold two objects of one kind"
            )
        after[index].color = reading.new_color
        return after, target, reading.new_color, {"reference": target.box(), "modified": after[index].box()}
    others = after[:index] + after[index + 1 :]
    spot = sampler.free_spot(target.r, others, avoid=(target.x, target.y))
    if spot is None:
        raise ValueError(f"no free place to move the {target.color} {target.shape} to")
    after[index].x, after[index].y = spot
    return after, target, None, {"reference": target.box(), "modified": after[index].box()}
