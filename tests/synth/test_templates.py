"""The templates rewrite instructions into honest captions, deterministically per seed."""

import json

import pytest

from idc_engine.data.shapes_change import TEMPLATES
from idc_engine.synth.guardrails import check_variation
from idc_engine.synth.templates import TemplateVariator, generic_forms, match_rule
from idc_engine.synth.variators import VariationResult
from tests.data.formats import FIXTURES, requires_fixtures

# instruction -> rewrites that must be among its template rewrites
RULE_CASES = {
    "Add a hat to the dog": [
        "a hat has been added to the dog",
        "the dog now wears a hat",
        "a hat was added to the dog",
        "there is a hat on the dog now",
    ],
    "Remove the car": ["the car has been removed", "the car is gone", "there is no car anymore"],
    "Remove the cars.": ["the cars have been removed", "the cars are gone"],
    "Make the sky purple": ["the sky is now purple", "the sky has been turned purple", "the sky changed to purple"],
    "Change the sky to purple": [
        "the sky is now purple",
        "the sky has been turned purple",
        "the sky changed to purple",
    ],
    "turn the sky purple": ["the sky is now purple", "the sky has been turned purple", "the sky changed to purple"],
    "Replace the cat with a dog": ["the cat was replaced by a dog", "there is a dog instead of the cat"],
    "Replace the cat with dog": ["the cat was replaced by a dog", "there is a dog instead of the cat"],
    "Put a vase on the table": ["a vase is now on the table", "there is now a vase on the table"],
    "Put the chair on top of the table.": ["the chair is now on top of the table"],
    "Add an apple to the bowl": ["there is now an apple in the bowl", "an apple has been added to the bowl"],
    "make it night": ["it is now night"],
    "Make it snowy!": ["it is now snowy"],
    "make it a painting": ["the image now looks like a painting"],
    "Convert it into ink painting.": ["the image now looks like an ink painting"],
    "Change the color of the plant pot to blue.": ["the plant pot is now blue", "the plant pot changed color to blue"],
    "Change the background to a city street.": ["the background is now a city street"],
    "write 'SALE' on the sign": ["the text 'SALE' was written on the sign", "the sign now says 'SALE'"],
    'Write "SALE" on the sign.': ["the text 'SALE' was written on the sign", "the sign now says 'SALE'"],
    "add the text 'hello'": ["the text 'hello' has been added", "the text 'hello' was written"],
    "Change the text on the sign to 'OPEN'": ["the sign now says 'OPEN'"],
    "In the sky, add witches riding brooms.": ["witches riding brooms have been added in the sky"],
    "Please get rid of the helmet.": ["the helmet has been removed"],
    "move the car to the left": ["the car has been moved to the left"],
    # difference captions are varied too
    "the car was removed": ["the car is gone"],
    "the dog now wears a hat": ["the dog is now wearing a hat"],
}


@pytest.mark.parametrize("instruction", list(RULE_CASES))
def test_template_rules_rewrite_instructions_into_captions_that_pass_the_guardrails(instruction):
    rule, rewrites = match_rule(instruction)
    assert rule is not None
    assert set(RULE_CASES[instruction]) <= set(rewrites)
    assert len(set(rewrites)) == len(rewrites)
    for rewrite in rewrites:
        assert check_variation(instruction, rewrite) is None, rewrite


def test_a_wearable_on_a_thing_is_not_worn():
    _, rewrites = match_rule("Add a hat to the table")
    assert "there is now a hat on the table" in rewrites
    assert not any("wear" in r for r in rewrites)


@pytest.mark.parametrize(("family", "template"), [(f, t) for f, ts in TEMPLATES.items() for t in ts])
def test_a_shapes_change_caption_is_varied_through_its_template_family(family, template):
    slots = {"color": "red", "shape": "circle", "new_color": "blue"}
    caption = template.format(**slots)
    rule, rewrites = match_rule(caption)
    assert rule == f"shapes_{family}"
    assert set(rewrites) == {t.format(**slots) for t in TEMPLATES[family]} - {caption}
    for rewrite in rewrites:
        assert check_variation(caption, rewrite) is None


def test_vary_returns_exactly_k_deterministically_per_seed():
    variator = TemplateVariator()
    result = variator.vary("Add a hat to the dog", 4, seed=7)
    assert isinstance(result, VariationResult) and len(result.variations) == 4
    assert result.fallbacks == 0 and result.rejected == {}
    assert set(result.variations) <= set(match_rule("Add a hat to the dog")[1])
    assert variator.vary("Add a hat to the dog", 4, seed=7) == result
    others = [variator.vary("Add a hat to the dog", 4, seed=s).variations for s in range(8)]
    assert len({tuple(o) for o in others}) > 1  # the seed chooses among the rewrites
    assert json.loads(json.dumps(result.settings)) == {"variator": "template"}


def test_no_rule_gives_the_honest_generic_form_counted_as_fallbacks():
    result = TemplateVariator().vary("Aadd a goat by the 'Old Mill'.", 3, seed=0)
    assert result.variations[0] == "the image was edited: aadd a goat by the 'Old Mill'"
    assert result.fallbacks == 3 and len(set(result.variations)) == 3
    assert match_rule("Aadd a goat") == (None, [])


def test_generic_forms_fill_up_when_the_rule_runs_out():
    rule_rewrites = match_rule("make it night")[1]
    result = TemplateVariator().vary("make it night", len(rule_rewrites) + 2, seed=0)
    assert len(result.variations) == len(rule_rewrites) + 2 and result.fallbacks == 2
    assert result.variations[-2:] == generic_forms("make it night")[:2]
    huge = TemplateVariator().vary("make it night", 100, seed=0)  # fewer only when distinct forms run out
    assert len(huge.variations) == len(rule_rewrites) + len(generic_forms("make it night"))
    assert TemplateVariator().vary("make it night", 0, seed=0).variations == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("", 3, 0), "instruction must be a non-empty string, got ''"),
        (("Add a hat", -1, 0), "k must be a non-negative integer, got -1"),
        (("Add a hat", 2, "0"), "seed must be an integer, got '0'"),
    ],
)
def test_bad_arguments_are_named(args, message):
    with pytest.raises(ValueError, match=message):
        TemplateVariator().vary(*args)


def test_vary_batch_defaults_to_a_loop():
    items = [("Remove the car", 2, 0), ("make it night", 3, 1)]
    assert TemplateVariator().vary_batch(items) == [TemplateVariator().vary(*item) for item in items]


@requires_fixtures
def test_the_templates_cover_the_released_syned_instructions_and_every_rewrite_passes_the_guardrails():
    lines = (FIXTURES / "syned_blip2idc" / "instructions_with_idx_test_split.txt").read_text().splitlines()
    instructions = [line.split(" <INSTRUCT> ", 1)[1] for line in lines]
    matched = 0
    for instruction in instructions:
        rule, rewrites = match_rule(instruction)
        matched += rule is not None
        for rewrite in rewrites:
            assert check_variation(instruction, rewrite) is None, (instruction, rewrite)
    assert matched / len(instructions) > 0.9  # 96 % when written
