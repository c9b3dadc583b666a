"""The guardrails reject exactly what BLIP2IDC's Llama-2 wrote instead of captions, and let captions through.

The three failures are quoted verbatim from the released Syned references
(gautierevn/BLIP2IDC, code_release/Syned/gt_augmented_test_clean.json, keys "677 ", "1398 ", "202 "),
which the paper's supplementary shows; the paper's own spellings are checked too.
"""

import json

import pytest

from idc_engine.synth.guardrails import (
    MEANING_REASONS,
    REASONS,
    GuardrailConfig,
    check_variation,
    content_kept,
    content_words,
    word_keys,
)
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
        ("Add a hat to the dog", "a hat was added to the dog in New York", "invented_detail"),
        ("Add a hat to the dog", "3 hats were added to the dog", "invented_detail"),
        (
            "Add a hat to the dog",
            "a red woollen hat with long feathers, golden bells and silk ribbons was added to the dog",
            "invented_detail",
        ),
        (
            "Remove the car",
            "the car has been removed, the car is gone, the car was removed, the car is no longer there at all",
            "too_long",
        ),
        ("Add a stop light on the road", "something was added", "lost_content"),
        ("Remove the green sign next to the traffic light", "an object was taken away", "lost_content"),
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
    strict = GuardrailConfig(min_content_kept=0.65, min_content_words=2)
    assert check_variation(instruction, "a hat has been added", strict) == "lost_content"
    assert check_variation(instruction, "a hat has been added") is None  # the calibrated default lets it through
    new_york = "a hat was added to the dog in New York"
    assert check_variation(instruction, new_york, GuardrailConfig(allow_new_names=True)) is None
    assert check_variation(instruction, new_york, GuardrailConfig(max_new_names=2)) is None
    assert check_variation(instruction, "a hat was added to the dog in Paris") is None  # one new name is allowed
    assert check_variation(instruction, "3 hats were added to the dog", GuardrailConfig(allow_new_numbers=True)) is None
    woollen = "a red woollen hat with feathers was added to the dog"
    assert check_variation(instruction, woollen) is None
    assert check_variation(instruction, woollen, GuardrailConfig(max_new_content_words=2)) == "invented_detail"
    allowed = GuardrailConfig(max_new_content_words=2, extra_allowed_words=("red", "woollen"))
    assert check_variation(instruction, woollen, allowed) is None
    assert check_variation(instruction, "a hat has been added to the dog", GuardrailConfig(max_words=5)) == "too_long"
    long_one = "a hat was added to the dog, and the dog now has a hat"  # 13 words, limit 17
    assert check_variation(instruction, long_one) is None
    short = GuardrailConfig(max_length_ratio=1.0, length_slack_words=2)
    assert check_variation(instruction, long_one, short) == "too_long"
    assert check_variation(instruction, "a hat!! on the dog!!", GuardrailConfig(max_exclamations=4)) is None
    reversed_one = "the dog no longer has a hat"
    assert check_variation(instruction, reversed_one) == "reversed"
    assert check_variation(instruction, reversed_one, GuardrailConfig(check_meaning=False)) is None


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


def test_words_compare_by_lemma_and_content_words_skip_rewrite_glue():
    assert word_keys("added") & word_keys("add") & word_keys("adds")
    assert word_keys("shrank") & word_keys("shrink") and word_keys("mice") & word_keys("mouse")
    assert word_keys("glasses") & word_keys("glass") and word_keys("trees") & word_keys("tree")
    assert word_keys("leaves") & word_keys("leaf")
    assert content_words("A hat has been added to the dog now") == ["hat", "dog"]
    assert content_kept("Remove the black parts of the surf board", "remove the black areas on the surfboard") == 0.75
    assert content_kept("Add a hat", "a cap was put on") == 0.0


# Each kind of turned meaning, rejected with its reason, beside faithful rewrites of the same instruction (the
# issue's four examples first). Imperative rewrites (the test-reference protocol) and captions alike.
TURNED = [
    ("Add a hat to the dog", "the dog no longer has a hat", "reversed"),
    ("Remove the car", "a car has been added", "reversed"),
    ("Make the sky blue", "the blue sky turned grey", "attribute_swapped"),
    ("Add a cat on the sofa", "the cat on the sofa was removed", "reversed"),
    ("Add a hat to the dog", "Take the hat off the dog", "reversed"),
    ("Remove the salt shaker", "Put a salt shaker on the table", "reversed"),
    ("Remove the goat", "a goat appeared", "reversed"),
    ("a goat appeared in the field", "the goat disappeared from the field", "reversed"),
    ("Make the sky blue", "Make the sky grey", "attribute_swapped"),
    ("Change the color of the fire hydrant to red", "Paint the fire hydrant green", "attribute_swapped"),
    ("Change the red car to blue", "Change the blue car to red", "attribute_swapped"),
    ("Make the dog bigger", "Make the dog smaller", "attribute_swapped"),
    ("Make the dog bigger", "Shrink the dog", "attribute_swapped"),
    ("Make it look like night", "Make it look like daytime", "attribute_swapped"),
    ("Open the laptop", "the laptop has been closed", "attribute_swapped"),
    ("Add a fork on the left side of the plate", "Place a fork to the right of the plate", "attribute_swapped"),
    ("Make the room darker", "Brighten the room", "attribute_swapped"),
    ("Add a hat to the dog", "Do not add a hat to the dog", "negated"),
    ("Add a hat to the dog", "the hat was not added to the dog", "negated"),
    ("Remove the car", "Leave the car as it is", "negated"),
    ("Make the sky blue", "the sky is no longer blue", "negated"),
    ("Make the sky blue", "Don't make the sky blue", "negated"),
    ("Aadd a goat by the fence", "Do not aadd a goat by the fence", "negated"),  # a misspelt verb, negated
    ('Add an "O" to the cap', 'Remove an "O" from the cap', "reversed"),  # quoted text is not matched inside words
    ("Put a mug on the table", "the mug on the table was removed", "reversed"),
    ("Change the black countertop to white", "Change the gray countertop to white", "attribute_swapped"),
    ("Attach a white string to the black scissors", "Attach a black string to the black scissors", "attribute_swapped"),
    ("Change the time of the day to night", "Change the time of the night to night", "attribute_swapped"),
    ("Remove the car", "Keep the car", "negated"),
    ("Remove the car", "Please preserve the car", "negated"),
    ("Turn the lights off", "Switch on the lights", "attribute_swapped"),
    ("Turn on the lamp", "Turn the lamp off", "attribute_swapped"),
    ("Remove the cat", "There is a cat now", "reversed"),
    ("Remove the cat", "there is a cat on the sofa now", "reversed"),
    ("Add a hat to the dog", "No hat was added to the dog", "negated"),
]
FAITHFUL = [
    ("Add a hat to the dog", "Put a hat on the dog"),
    ("Add a hat to the dog", "Give the dog a hat"),
    ("Add a cat on the sofa", "a cat has appeared on the sofa"),
    ("Remove the car", "Get rid of the car"),
    ("Remove the car", "the car is no longer there"),
    ("Remove the car", "Take the car away"),
    ("Remove the salt shaker", "Erase the salt shaker from the table"),
    ("Make the sky blue", "Turn the grey sky blue"),
    ("Make the sky blue", "the sky changed from grey to blue"),
    ("Make the sky blue", "Paint the sky a deep azure"),
    ("Change the color of the fire hydrant to red", "Paint the fire hydrant a vibrant crimson"),
    ("Change the red car to blue", "the red car is now blue"),
    ("Make the dog bigger", "Enlarge the dog"),
    ("Make the dog bigger", "Increase the size of the dog"),
    ("Make it look like night", "Change the scene to nighttime"),
    ("Make this at night instead of day", "Turn the daytime scene into night"),
    ("Open the laptop", "the laptop is now open"),
    ("Add a fork on the left side of the plate", "Place a fork to the left of the plate"),
    ("Make the room darker", "Make the room less bright"),
    ("Make the room darker", "Dim the room"),
    ("Make the stripes on the zebra blue", "Turn the black stripes of the zebra blue"),
    ("Take the glaze off the donut at the bottom", "Remove the glaze from the bottom donut"),
    ("Make the girl's shirt blue instead of red", "Swap the shirt's color from red to blue"),
    ("Change the color of the stop sign to blue with red letters", "Alter the stop sign's orange color to blue"),
    ('Add the phrase "So much hair, don\'t care!"', "the phrase 'So much hair, don't care!' was written"),
    ("Make the stripes on the zebra blue", "Blue stripes for the zebra"),
    ("Remove the car", "Keep the rest of the image but remove the car"),
    ("Turn on the lamp", "Switch the lamp on"),
    ("Turn the lights off", "Switch off the lights"),
    ("Turn the cat on the left blue", "Make the cat on the left blue"),
    ("Add a cat on the sofa", "there is a cat on the sofa now"),
    ("Add a note on the table", "Leave a note on the table"),
    ("Remove the people", "Make sure no people are shown"),
]


@pytest.mark.parametrize(("instruction", "variation", "reason"), TURNED)
def test_a_variation_that_turns_the_meaning_is_rejected_with_its_kind(instruction, variation, reason):
    assert reason in MEANING_REASONS
    assert check_variation(instruction, variation) == reason


@pytest.mark.parametrize(("instruction", "variation"), FAITHFUL)
def test_faithful_rewrites_of_each_kind_are_kept(instruction, variation):
    assert check_variation(instruction, variation) is None


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


# break-16: an addition said as an absence ("has no hat", "there's no hat") passed as a faithful rewrite.
ABSENCE_FOR_ADDITION = [
    ("Add a hat to the dog", "the dog has no hat"),
    ("Add a hat to the dog", "the dog now has no hat"),
    ("Add a hat to the dog", "there's no hat on the dog"),
    ("Add a hat to the dog", "No hat on the dog"),
    ("Add a hat to the dog", "Add no hat to the dog"),
    ("Add a hat to the dog", "Add nothing to the dog"),
]


@pytest.mark.parametrize(("instruction", "variation"), ABSENCE_FOR_ADDITION)
def test_an_addition_said_as_an_absence_is_reversed(instruction, variation):
    expected = "negated" if variation.startswith("Add n") else "reversed"  # "add no hat": the edit, negated
    assert check_variation(instruction, variation) == expected


@pytest.mark.parametrize(
    ("instruction", "variation"),
    [
        ("Remove the car", "there's no car now"),
        ("Remove the hat from the dog", "the dog has no hat now"),
        ("Add a man without a hat", "a man with no hat was added"),
        ("Add a no parking sign", "Put up a no parking sign"),
        ("Add the word NO to the sign", "Write NO on the sign"),
        ("Add a hat to the dog", "the dog, which had no hat, now has one"),
    ],
)
def test_an_absence_that_agrees_with_the_edit_is_kept(instruction, variation):
    assert check_variation(instruction, variation) is None


# break-16: what goes and what comes (or what is put where) swapped passed as a faithful rewrite.
@pytest.mark.parametrize(
    ("instruction", "variation"),
    [
        ("Replace the dog with a cat", "Replace the cat with a dog"),
        ("Replace the dog with a cat", "the cat was replaced by a dog"),
        ("Replace the dog with a cat", "Swap the cat for a dog"),
        ("Replace the dog with a cat", "Turn the cat into a dog"),
        ("Replace the dog with a cat", "the cat became a dog"),
        ("Change the cat into a dog", "Change the dog into a cat"),
        ("Change the cat into a dog", "the dog turned into a cat"),
        ("Add a hat to the dog", "Add a dog to the hat"),
        ("Put the cat on the sofa", "Put the sofa on the cat"),
        ("Add a cat on the sofa", "a sofa was added on the cat"),
    ],
)
def test_swapped_roles_are_reversed(instruction, variation):
    assert check_variation(instruction, variation) == "reversed"


@pytest.mark.parametrize(
    ("instruction", "variation"),
    [
        ("Replace the dog with a cat", "Swap the dog for a cat"),
        ("Replace the dog with a cat", "the dog was replaced by a cat"),
        ("Replace the dog with a cat", "Turn the dog into a cat"),
        ("Replace the dog with a cat", "the dog became a cat"),
        ("Replace the dog with a cat", "Substitute a cat for the dog"),
        ("Change the cat into a dog", "the cat turned into a dog"),
        ("Add a hat to the dog", "Put a hat on the dog"),
        ("Add a hat to the dog", "Give the dog a hat"),
        ("Put the cat on the sofa", "Place the cat on the couch"),
    ],
)
def test_roles_kept_in_another_frame_pass(instruction, variation):
    assert check_variation(instruction, variation) is None


# break-16: faithful captions that say a state ended ("not ... anymore", "not there") were rejected as negated.
@pytest.mark.parametrize(
    ("instruction", "variation"),
    [
        ("Remove the car", "the car is not there anymore"),
        ("Remove the car", "the car is not visible anymore"),
        ("Remove the bird", "the bird is not there"),
        ("Remove the hat from the dog", "the dog is not wearing a hat anymore"),
        ("Make the sky blue", "the sky is not grey anymore, it is blue"),
        ("Make the car red", "the car, no longer blue, is red"),
        ("Open the door", "the door is not shut anymore"),
    ],
)
def test_a_state_that_ended_is_no_negation_of_the_edit(instruction, variation):
    assert check_variation(instruction, variation) is None


@pytest.mark.parametrize(
    ("instruction", "variation", "reason"),
    [
        ("Add a hat to the dog", "the dog is not wearing a hat anymore", "reversed"),
        ("Add a bird to the branch", "the bird is not there", "reversed"),
        ("Make the sky blue", "the sky is not blue anymore", "negated"),
        ("Add a hat to the dog", "the hat is not added", "negated"),
    ],
)
def test_a_state_that_ended_against_the_edit_is_still_rejected(instruction, variation, reason):
    assert check_variation(instruction, variation) == reason


# break-16: the value a thing *had* ("was black", "used to be black") passed as the value the edit gives it.
@pytest.mark.parametrize(
    ("instruction", "variation"),
    [
        ("Make the dog black", "the dog was black"),
        ("Make the dog black", "the dog used to be black"),
        ("Make the sky blue", "the sky was blue and is now grey"),
        ("Make the dog bigger", "the dog was big and is now small"),
    ],
)
def test_a_past_value_is_the_state_before(instruction, variation):
    assert check_variation(instruction, variation) in ("attribute_swapped", "negated")


@pytest.mark.parametrize(
    ("instruction", "variation"),
    [
        ("Make the sky blue", "the sky was grey and is now blue"),
        ("Make the sky blue", "the sky was turned blue"),
        ("Make the sky blue", "the sky was painted blue"),
        ("Make the dog black", "the dog was blackened"),
        ("Make the dog black", "the white dog was made black"),
    ],
)
def test_a_value_the_edit_gave_is_kept(instruction, variation):
    assert check_variation(instruction, variation) is None


# break-16: everyday words for taking away, bringing back, keeping and switching passed as faithful rewrites.
@pytest.mark.parametrize(
    ("instruction", "variation", "reason"),
    [
        ("Add a hat to the dog", "the dog lost its hat", "reversed"),
        ("Add a hat to the dog", "the hat was lifted off the dog", "reversed"),
        ("Add a hat to the dog", "the dog's hat was knocked off", "reversed"),
        ("Add a hat to the dog", "the dog's hat fell off", "reversed"),
        ("Add a hat to the dog", "Take the hat from the dog", "reversed"),
        ("Add a hat to the dog", "Strip the hat from the dog", "reversed"),
        ("Add snow", "the snow melted", "reversed"),
        ("Remove the bird", "a bird arrived", "reversed"),
        ("Remove the bird", "the bird is back", "reversed"),
        ("Remove the bird", "Return the bird", "reversed"),
        ("Remove the car", "Draw a car", "reversed"),
        ("Remove the bird", "Keep the bird", "negated"),
        ("Remove the bird", "Leave the bird", "negated"),
        ("Remove the car", "the car remains", "negated"),
        ("Remove the car", "the car is still there", "negated"),
        ("Turn on the lights", "Turn off the lights", "attribute_swapped"),
        ("Turn on the lights", "the lights were switched off", "attribute_swapped"),
        ("Turn the lamp off", "Switch the lamp on", "attribute_swapped"),
    ],
)
def test_everyday_reversals_are_rejected(instruction, variation, reason):
    assert check_variation(instruction, variation) == reason


@pytest.mark.parametrize(
    ("instruction", "variation"),
    [
        ("Remove the bird", "the bird flew away"),
        ("Remove the hat from the dog", "Take the hat from the dog"),
        ("Remove the car", "Leave the street without the car"),
        ("Remove the snow", "the snow melted"),
        ("Turn on the lights", "Switch the lights on"),
        ("Turn off the lights", "the lights were switched off"),
        ("Add a hat to the dog", "Put a hat on the dog"),
        ("Keep the dog and remove the cat", "Remove the cat but keep the dog"),
        ("Add a person sitting in the background", "Add a figure in the background, lost in thought"),
        ("Remove the racket", "Withdraw the racket and create the illusion of a wet ground"),
    ],
)
def test_everyday_words_that_agree_pass(instruction, variation):
    assert check_variation(instruction, variation) is None


def test_a_blank_or_missing_instruction_is_an_error_not_a_pass():
    # break-16: check_variation("", anything) and check_variation(None, "add a hat") passed every variation
    # (None was judged as the instruction "None").
    with pytest.raises(ValueError, match="instruction must be a non-empty string, got ''"):
        check_variation("", "Add a hat to the dog")
    with pytest.raises(ValueError, match="instruction must be a non-empty string, got None"):
        check_variation(None, "Add a hat to the dog")


# break-16: "less" in front of the instruction's value turns the edit back.
@pytest.mark.parametrize(
    ("instruction", "variation"),
    [
        ("Make the dog bigger", "the dog is less big"),
        ("Make the dog bigger", "Make the dog less large"),
        ("Make the sky blue", "Make the sky less blue"),
    ],
)
def test_less_of_the_wanted_value_is_rejected(instruction, variation):
    assert check_variation(instruction, variation) in ("attribute_swapped", "negated")


@pytest.mark.parametrize(
    ("instruction", "variation"),
    [
        ("Make the dog smaller", "Make the dog less big"),
        ("Make the room darker", "Make the room less bright"),
        ("Make the sky less blue", "Make the sky a paler, less blue shade"),
    ],
)
def test_less_of_the_opposite_value_passes(instruction, variation):
    assert check_variation(instruction, variation) is None


@pytest.mark.xfail(strict=True, reason="break-16: another object of the same edit passes (no lexicon of kinds)")
@pytest.mark.parametrize(
    ("instruction", "variation"),
    [("Remove the car", "Remove the truck"), ("Add a hat to the dog", "Add a hat to the cat")],
)
def test_another_object_is_rejected(instruction, variation):
    assert check_variation(instruction, variation) is not None


# break-16: the instruction's own action said to have stopped passed as a faithful rewrite.
@pytest.mark.parametrize(
    ("instruction", "variation"),
    [
        ("Make the man smile", "the man is no longer smiling"),
        ("Make the man smile", "the man stopped smiling"),
        ("Make the dog jump", "the dog is not jumping anymore"),
    ],
)
def test_the_edits_action_said_to_have_stopped_is_negated(instruction, variation):
    assert check_variation(instruction, variation) == "negated"


@pytest.mark.parametrize(
    ("instruction", "variation"),
    [
        ("Make the man stop smiling", "the man is no longer smiling"),
        ("Remove the smile from the man", "the man is no longer smiling"),
        ("Make the man smile", "the man no longer frowns, he smiles"),
    ],
)
def test_an_action_that_the_edit_stops_passes(instruction, variation):
    assert check_variation(instruction, variation) is None


def test_leaves_at_the_start_are_no_imperative_leave():
    instruction = "put leaves on all of the tree like summertime"
    assert check_variation(instruction, "leaves are now on all of the tree like summertime") is None


def test_a_swap_both_ways_is_no_swapped_role():
    instruction = "Change all the pencils to scissors and the scissors to pencils."
    for variation in (
        "all the pencils have been turned scissors and the scissors to pencils",
        "Change the scissors to pencils and the pencils to scissors",
    ):
        assert check_variation(instruction, variation) is None
