import io

import numpy as np
import pytest

from idc_engine.data.shapes_change import CHANGE_TYPES, COLORS, TEMPLATES, ShapesChangeConfig, make_pair
from idc_engine.metrics.change_reading import ChangeReading, read_change
from idc_engine.synth.shapes import edit_shapes_scene, parse_change, scene_background

CONFIG = ShapesChangeConfig(min_objects=2, max_objects=3)


def png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def pair():
    return make_pair(CONFIG, 0, "train", np.random.default_rng(3))


def readings(captions):
    return {read_change(c) for c in captions}


@pytest.mark.parametrize("change", CHANGE_TYPES)
def test_each_change_type_gives_a_valid_shapes_change_pair(pair, change):
    objects = pair["metadata"]["objects_reference"]
    edit = edit_shapes_scene(objects, change, 7, CONFIG, background=scene_background(pair["reference"]))
    # Same renderer, same background: the reference is the pair's own, pixel for pixel.
    assert png(edit.reference) == png(pair["reference"])
    (reading,) = readings(edit.captions)  # every caption reads back to one and the same change
    assert reading.change == change == edit.category == edit.metadata["change"]["type"]
    assert reading == ChangeReading(
        **{"change": change, **{k: v for k, v in edit.metadata["change"].items() if k != "type"}}
    )
    assert set(edit.metadata) == set(pair["metadata"])
    assert edit.metadata["objects_reference"] == objects
    assert edit.metadata["noise"] in ("jpeg", "blur", "brightness")
    assert parse_change(edit.instruction) == reading
    if change == "none":
        assert edit.metadata["objects_modified"] == objects
    else:
        assert edit.metadata["objects_modified"] != objects


def test_a_caption_or_a_command_names_the_exact_change(pair):
    objects = pair["metadata"]["objects_reference"]
    target = objects[0]
    used = {(o["color"], o["shape"]) for o in objects}
    new_color = next(c for c in COLORS if c != target["color"] and (c, target["shape"]) not in used)
    words = {"color": target["color"], "shape": target["shape"], "new_color": new_color}
    wanted = ChangeReading("color", **words)
    for change in (TEMPLATES["color"][0].format(**words), "turn the {color} {shape} {new_color}".format(**words)):
        edit = edit_shapes_scene(objects, change, 1, CONFIG)
        assert readings(edit.captions) == {wanted}
        assert edit.instruction == "turn the {color} {shape} {new_color}".format(**words)
        changed = [o for o in edit.metadata["objects_modified"] if o["color"] == new_color]
        assert changed and changed[0]["shape"] == target["shape"]
    free = next((c, s) for c in COLORS for s in ("circle", "square", "triangle") if (c, s) not in used)
    added = edit_shapes_scene(objects, f"add a {free[0]} {free[1]}", 2, CONFIG)
    assert readings(added.captions) == {ChangeReading("add", free[0], free[1])}
    assert len(added.metadata["objects_modified"]) == len(objects) + 1
    dropped = edit_shapes_scene(objects, f"the {target['color']} {target['shape']} was removed", 2, CONFIG)
    assert readings(dropped.captions) == {ChangeReading("drop", target["color"], target["shape"])}
    assert len(dropped.metadata["objects_modified"]) == len(objects) - 1


def test_same_seed_same_pixels(pair):
    objects = pair["metadata"]["objects_reference"]
    first, again = (edit_shapes_scene(objects, None, 5, CONFIG) for _ in range(2))
    assert png(first.modified) == png(again.modified) and first.captions == again.captions
    others = {png(edit_shapes_scene(objects, "move", seed, CONFIG).modified) for seed in range(4)}
    assert len(others) == 4


def test_changes_it_cannot_carry_out_are_named(pair):
    objects = pair["metadata"]["objects_reference"]
    with pytest.raises(ValueError, match="change 'rotate the scene' is neither"):
        edit_shapes_scene(objects, "rotate the scene", 0, CONFIG)
    absent = next(c for c in COLORS if all(o["color"] != c for o in objects))
    with pytest.raises(ValueError, match=f"the scene has no {absent} circle"):
        edit_shapes_scene(objects, f"remove the {absent} circle", 0, CONFIG)
    first = objects[0]
    with pytest.raises(ValueError, match=f"already has a {first['color']} {first['shape']}"):
        edit_shapes_scene(objects, f"add a {first['color']} {first['shape']}", 0, CONFIG)
