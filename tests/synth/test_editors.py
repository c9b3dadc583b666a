import pytest
from PIL import Image

from idc_engine.synth import CATEGORIES, Editor, EditResult, ProceduralEditor
from idc_engine.synth.editors import check_category, check_seed


class Stamp(Editor):
    """The smallest editor: paints one pixel; its batch is the default loop."""

    name = "stamp"

    def edit(self, image, instruction, category, seed):
        image = image.convert("RGB").copy()
        image.putpixel((seed % image.width, 0), (255, 0, 0))
        return EditResult(image, instruction or "paint a red pixel", category, {"editor": self.name, "seed": seed})


def test_the_categories_are_the_papers_eight():
    assert CATEGORIES == ("add", "text", "color", "background", "style", "global", "remove", "local")


def test_default_edit_batch_is_one_edit_per_item():
    image = Image.new("RGB", (8, 8))
    results = Stamp().edit_batch([(image, None, "local", 1), (image, "dot", None, 3)])
    assert [r.image.getpixel((s, 0)) for r, s in zip(results, (1, 3))] == [(255, 0, 0)] * 2
    assert [(r.instruction, r.category) for r in results] == [("paint a red pixel", "local"), ("dot", None)]


def test_editors_are_editors():
    assert isinstance(ProceduralEditor(), Editor)
    with pytest.raises(TypeError):
        Editor()


def test_category_and_seed_checks_name_the_bad_value():
    check_category(None)
    with pytest.raises(ValueError, match="category must be one of .* got 'blur'"):
        check_category("blur")
    assert check_seed(3) == 3
    with pytest.raises(ValueError, match="seed must be a non-negative integer, got 1.5"):
        check_seed(1.5)
