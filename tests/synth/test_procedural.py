import io
import json

import numpy as np
import pytest
import skimage.data
from PIL import Image

from idc_engine.synth.editors import CATEGORIES
from idc_engine.synth.procedural import EXAMPLES, ProceduralConfig, ProceduralEditor, parse_instruction

PARTIAL = ("add", "text", "remove", "local", "color")  # change one object or region
WHOLE = ("style", "global", "background")  # change much of the image


@pytest.fixture(scope="module")
def photos():
    return {
        "astronaut": Image.fromarray(skimage.data.astronaut()).resize((160, 160)),
        "coffee": Image.fromarray(skimage.data.coffee()).resize((180, 120)),  # not square
    }


@pytest.fixture(scope="module")
def editor():
    return ProceduralEditor()


def changed_share(before: Image.Image, after: Image.Image, threshold: int = 24) -> float:
    difference = np.abs(np.asarray(before, np.int16) - np.asarray(after, np.int16)).max(-1)
    return float((difference > threshold).mean())


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("category", CATEGORIES)
def test_every_category_edits_any_photo_and_says_what_it_did(editor, photos, category):
    for name, photo in photos.items():
        for seed in range(3):
            result = editor.edit(photo, None, category, seed)
            assert result.image.mode == "RGB" and result.image.size == photo.size
            assert result.category == category
            share = changed_share(photo, result.image)
            assert share > 0.001, (name, seed, result.instruction)
            if category in PARTIAL:
                assert share < 0.4, (name, seed, result.instruction, share)
            else:
                assert share > 0.2, (name, seed, result.instruction, share)
            # The instruction written back is one the editor reads: it can be carried out again.
            assert parse_instruction(result.instruction)[0] == category
            assert result.settings["editor"] == "procedural" and result.settings["seed"] == seed
            json.dumps(result.settings)


@pytest.mark.parametrize("category", ("add", "text"))
def test_pasted_objects_and_text_change_only_their_box(editor, photos, category):
    photo = photos["astronaut"]
    result = editor.edit(photo, None, category, 5)
    x, y, w, h = result.settings["operation"]["box"]
    changed = np.abs(np.asarray(photo, np.int16) - np.asarray(result.image, np.int16)).max(-1) > 0
    inside = np.zeros_like(changed)
    inside[round(y * 160) - 2 : round((y + h) * 160) + 2, round(x * 160) - 2 : round((x + w) * 160) + 2] = True
    assert changed.any() and not (changed & ~inside).any()


def test_same_seed_gives_the_same_bytes_and_other_seeds_other_edits(editor, photos):
    photo = photos["coffee"]
    for category in CATEGORIES:
        first, again = editor.edit(photo, None, category, 11), editor.edit(photo, None, category, 11)
        assert png(first.image) == png(again.image) and first.instruction == again.instruction
    edits = {png(editor.edit(photo, None, None, seed).image) for seed in range(6)}
    assert len(edits) == 6


def test_given_instructions_are_carried_out_as_written(editor, photos):
    photo = photos["astronaut"]
    result = editor.edit(photo, "Add a red circle in the top left.", None, 0)
    assert (result.category, result.instruction) == ("add", "add a red circle in the top left")
    x, y, w, h = result.settings["operation"]["box"]
    assert x + w / 2 < 1 / 3 and y + h / 2 < 1 / 3
    result = editor.edit(photo, "write 'Big Sale' in yellow letters", "text", 0)
    assert result.instruction.startswith("write 'Big Sale' in yellow letters ")
    assert editor.edit(photo, "make it look like night", None, 0).instruction == "make it look like night"
    assert editor.edit(photo, "make it misty", None, 0).instruction == "make it foggy"
    assert editor.edit(photo, "turn it into a pencil sketch", None, 0).category == "style"
    assert editor.edit(photo, "make the background grey", None, 0).instruction == "make the background gray"
    # A missing detail is drawn from the rng and stated: the instruction returned says where.
    removed = editor.edit(photo, "remove the white object", None, 0)
    assert removed.instruction.startswith("remove the white object ") and removed.category == "remove"
    local = editor.edit(photo, "blur the white object", None, 0)
    assert local.instruction.startswith("blur the white object ") and local.settings["operation"]["change"] == "blurred"


def test_every_example_instruction_parses():
    for category, examples in EXAMPLES.items():
        for example in examples.split(" / "):
            assert parse_instruction(example)[0] == category


def test_an_instruction_it_cannot_carry_out_is_named(editor, photos):
    with pytest.raises(ValueError, match="'make the cat dance' is not an edit"):
        editor.edit(photos["astronaut"], "make the cat dance", None, 0)
    with pytest.raises(ValueError, match="'add a red circle' is not a 'text' edit"):
        editor.edit(photos["astronaut"], "add a red circle", "text", 0)
    with pytest.raises(ValueError, match="color edit: no purple region"):
        editor.edit(photos["coffee"], "make the purple area blue", None, 0)
    with pytest.raises(ValueError, match="remove edit: no region covering"):  # a featureless image has no objects
        editor.edit(Image.new("RGB", (64, 64), (90, 90, 90)), None, "remove", 0)
    with pytest.raises(ValueError, match="category must be one of"):
        editor.edit(photos["coffee"], None, "rotate", 0)
    with pytest.raises(ValueError, match="seed must be a non-negative integer, got -1"):
        editor.edit(photos["coffee"], None, "add", -1)


def test_config_names_bad_values_and_limits_the_categories(photos):
    with pytest.raises(ValueError, match="clusters must be between 2 and 16, got 1"):
        ProceduralConfig(clusters=1)
    with pytest.raises(ValueError, match="categories must be a non-empty subset"):
        ProceduralConfig(categories=("add", "rotate"))
    with pytest.raises(ValueError, match="object_size must be a range"):
        ProceduralConfig(object_size=(0.3, 0.1))
    editor = ProceduralEditor(ProceduralConfig(categories=("text",), words=("HELLO",)))
    results = editor.edit_batch([(photos["coffee"], None, None, seed) for seed in range(3)])
    assert all(r.category == "text" and r.instruction.startswith("write 'HELLO'") for r in results)


def test_grey_and_transparent_inputs_come_back_rgb(editor):
    grey = Image.fromarray(skimage.data.camera()).resize((96, 96))
    for image in (grey, grey.convert("RGBA")):
        result = editor.edit(image, None, None, 3)
        assert result.image.mode == "RGB" and result.image.size == (96, 96)
