"""The guardrails reject exactly what BLIP2IDC's Llama-2 wrote instead of captions, and let captions through.

The three failures are quoted verbatim from the released Syned references
(gautierevn/BLIP2IDC, code_release/Syned/gt_augmented_test_clean.json, keys "677 ", "1398 ", "202 "),
which the paper's supplementary shows; the paper's own spellings are checked too.
"""

import json

import pytest

from idc_engine.synth.guardrails import REASONS, GuardrailConfig, check_variation, content_stems, stem
from tests.data.formats import FIXTURES, requires_fixtures

# Key "677 ": the LLM refuses and moralises instead of varying the instruction.
REFUSAL_INSTRUCTION = "Change the background to an illegal drug production"
REFUSAL = (
    "Instead, I would like to provide information on the legal and ethical implications of drug production and "
    "distribution. Illegal drugs are considered illegal because they are harmful and can lead to serious health "
    "problems, addiction, and crime. Additionally, the production and distribution of illegal drugs are often "
    "associated with organized crime and can lead to violence and exploitation."
)
# Key "1398 ": the LLM plays the cow. Released with its wrapping quotes; the paper prints "Moouooo!".
ROLE_PLAY_INSTRUCTION = "Make it look like the cow is ordering from a fast-food window."
ROLE_PLAY = (
    "\"Mooooo! I'll have a burger, please! Extra cheese, fries, and can you make sure that bun is nice and toasty? "
    '*moo*"'
)
ROLE_PLAY_PAPER = (
    "Moouooo! I'll have a burger, please! Extra cheese, fries, and can you make sure that bun is nice and toasty?"
)
# Key "202 ": the LLM invents a place. The paper's wording keeps the instruction and appends the place.
INVENTED_INSTRUCTION = "Add a stop light on the road"
INVENTED = '"Add a traffic light at the intersection of Main Street and Oak Avenue."'
INVENTED_PAPER = "Add a stop light on the road at the intersection of Main Street and Oak Avenue"


def test_the_supplementary_refusal_is_rejected_and_a_caption_of_the_same_instruction_passes():
    assert check_variation(REFUSAL_INSTRUCTION, REFUSAL) == "refusal"
    # "illegal" is the instruction's own word: it is no moralising in a caption of it.
    assert check_variation(REFUSAL_INSTRUCTION, "the background is now an illegal drug production") is None
    assert check_variation(REFUSAL_INSTRUCTION, "the background has been changed to an illegal drug production") is None


@pytest.mark.parametrize("variation", [ROLE_PLAY, ROLE_PLAY_PAPER])
def test_the_supplementary_role_play_is_rejected_and_a_caption_of_the_same_instruction_passes(variation):
    assert check_variation(ROLE_PLAY_INSTRUCTION, variation) == "role_play"
    good = "the image now looks like the cow is ordering from a fast-food window"
    assert check_variation(ROLE_PLAY_INSTRUCTION, good) is None


@pytest.mark.parametrize("variation", [INVENTED, INVENTED_PAPER])
def test_the_supplementary_invented_place_is_rejected_and_captions_of_the_same_instruction_pass(variation):
    assert check_variation(INVENTED_INSTRUCTION, variation) == "invented_detail"
    for good in ("a stop light has been added on the road", "there is now a stop light on the road"):
        assert check_variation(INVENTED_INSTRUCTION, good) is None


@pytest.mark.parametrize(
    ("instruction", "variation"),
    [
        ("Add a hat to the dog", "a hat has been added to the dog"),
        ("Add a hat to the dog", "the dog now wears a hat"),
        ("Add a hat to the dog", "A hat was added to the dog."),
        ("Remove the car", "the car is gone"),
        ("Remove the cars from the street", "there are no cars in the street anymore"),
        ("Make the sky purple", "the sky has been turned purple"),
        ("make it night", "it is now night"),
        ("Make it a painting", "the image now looks like a painting"),
        ("Replace the cat with a dog", "there is a dog instead of the cat"),
        ("write 'SALE' on the sign", "the text 'SALE' was written on the sign"),
        ('Write "I love you!" on the sign', "the sign now says 'I love you!'"),  # quoted text is no speech
        ("Add the word 'Paris' to the mug", "the mug now says 'Paris'"),  # a quoted name is no invention
        ("Add two cats to the sofa", "two cats have been added to the sofa"),
        ("the red circle turned blue", "the circle changed color from red to blue"),
        ("Change the background to a city street", '"The background is now a city street."'),
        ("there is no change", "the two images are the same"),
    ],
)
def test_faithful_captions_pass(instruction, variation):
    assert check_variation(instruction, variation) is None


@pytest.mark.parametrize(
    ("instruction", "variation", "reason"),
    [
        ("Add a hat to the dog", "", "empty"),
        ("Add a hat to the dog", "  ... -- ", "empty"),
        ("Remove the woman's scarf", "As an AI language model, I cannot help with that.", "refusal"),
        ("Remove the woman's scarf", "I'm sorry, but removing clothing is inappropriate.", "refusal"),
        ("Remove the woman's scarf", "Removing it without her consent would be unethical.", "refusal"),
        ("Add a hat to the dog", "Sure! Here are 3 captions:", "role_play"),
        ("Add a hat to the dog", "I added a hat to the dog", "role_play"),
        ("Add a hat to the dog", "You will see a hat on the dog", "role_play"),
        ("Add a hat to the dog", "Woof! the dog got a hat", "role_play"),
        ("Add a hat to the dog", "Dog: 'look at my new hat'", "role_play"),
        ("Add a hat to the dog", "a hat was added to the dog 🎩", "role_play"),
        ("Add a hat to the dog", "did someone add a hat to the dog?", "role_play"),
        ("Add a hat to the dog", "a hat!! on the dog!!", "role_play"),
        ("Add a hat to the dog", "a hat was added to the dog in Paris", "invented_detail"),
        ("Add a hat to the dog", "3 hats were added to the dog", "invented_detail"),
        ("Add a hat to the dog", "a red woollen hat with feathers was added to the dog", "invented_detail"),
        (
            "Remove the car",
            "the car has been removed, the car is gone, the car was removed, the car is no longer there",
            "too_long",
        ),
        ("Add a hat to the dog", "a hat has been added", "lost_content"),
        ("Add a stop light on the road", "something was added", "lost_content"),
        ("Add a hat to the dog", "Add a hat to the dog.", "duplicate"),
    ],
)
def test_bad_variations_are_rejected_with_their_reason(instruction, variation, reason):
    assert reason in REASONS
    assert check_variation(instruction, variation) == reason


def test_a_variation_already_accepted_is_a_duplicate():
    accepted = ["a hat has been added to the dog"]
    assert check_variation("Add a hat to the dog", "A hat has been added to the dog.", accepted=accepted) == "duplicate"
    assert check_variation("Add a hat to the dog", "a hat was added to the dog", accepted=accepted) is None


def test_every_threshold_is_configurable():
    instruction = "Add a hat to the dog"
    assert check_variation(instruction, "a hat has been added", GuardrailConfig(min_content_kept=0.5)) is None
    assert (
        check_variation(instruction, "a hat was added to the dog in Paris", GuardrailConfig(allow_new_names=True))
        is None
    )
    assert check_variation(instruction, "3 hats were added to the dog", GuardrailConfig(allow_new_numbers=True)) is None
    woollen = "a red woollen hat with feathers was added to the dog"
    assert check_variation(instruction, woollen, GuardrailConfig(max_new_content_words=3)) is None
    assert check_variation(instruction, woollen, GuardrailConfig(extra_allowed_words=("red", "woollen"))) is None
    assert check_variation(instruction, "a hat has been added to the dog", GuardrailConfig(max_words=5)) == "too_long"
    long_one = "a hat was added to the dog, and the dog now has a hat"  # 13 words, limit 14
    assert check_variation(instruction, long_one) is None
    short = GuardrailConfig(max_length_ratio=1.0, length_slack_words=2)
    assert check_variation(instruction, long_one, short) == "too_long"
    assert check_variation(instruction, "a hat!! on the dog!!", GuardrailConfig(max_exclamations=4)) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_content_kept": 1.5}, r"min_content_kept must be in \[0, 1\], got 1.5"),
        ({"max_words": 0}, "max_words must be a positive integer, got 0"),
        ({"max_length_ratio": 0.5}, r"max_length_ratio must be a number >= 1.0, got 0.5"),
        ({"max_new_content_words": -1}, "max_new_content_words must be a non-negative integer, got -1"),
        ({"length_slack_words": 2.5}, "length_slack_words must be a non-negative integer, got 2.5"),
        ({"extra_allowed_words": "red"}, "extra_allowed_words must be a sequence of words, got 'red'"),
    ],
)
def test_config_errors_name_the_field_and_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GuardrailConfig(**kwargs)


def test_the_config_is_json_serialisable():
    assert json.loads(json.dumps(GuardrailConfig(extra_allowed_words=("x",)).to_dict()))["extra_allowed_words"] == ["x"]


def test_stemming_matches_inflections_and_content_words_skip_rewrite_glue():
    assert stem("added") == stem("add") == stem("adds")
    assert stem("glasses") == stem("glass") and stem("trees") == stem("tree") and stem("running") == stem("run")
    assert content_stems("A hat has been added to the dog now") == {stem("hat"), stem("dog")}


@requires_fixtures
def test_on_the_released_syned_references_every_ai_refusal_is_caught():
    """Every released reference that speaks as an AI or moralises is rejected as a refusal."""
    folder = FIXTURES / "syned_blip2idc"
    instructions = dict(
        line.rstrip("\n").split(" <INSTRUCT> ", 1) for line in (folder / "instructions_with_idx_test_split.txt").open()
    )
    references = json.loads((folder / "gt_augmented_test_clean.json").read_text())
    refusals = [
        (instructions[key.strip()], text)
        for key, texts in references.items()
        for text in texts
        if any(marker in text for marker in ("AI language model", "just an AI", "ethical"))
    ]
    assert len(refusals) >= 10
    assert {check_variation(instruction, text) for instruction, text in refusals} == {"refusal"}
    assert check_variation(instructions["1398"], references["1398 "][2]) == "role_play"
    assert check_variation(instructions["202"], references["202 "][0]) == "invented_detail"
