"""Variators: the templates rewrite instructions into honest captions; the LLM variator keeps only what passes
the guardrails, counts every rejection and fills up from the templates; both are deterministic per seed."""

import json

import pytest
import torch

from idc_engine.data.shapes_change import TEMPLATES
from idc_engine.synth.guardrails import REASONS, check_variation
from idc_engine.synth.variators import (
    LLMVariator,
    LLMVariatorConfig,
    TemplateVariator,
    VariationResult,
    generic_forms,
    match_rule,
    parse_generation,
)
from tests.data.formats import FIXTURES, requires_fixtures
from tests.synth.test_guardrails import (
    INVENTED_INSTRUCTION,
    INVENTED_PAPER,
    REFUSAL,
    REFUSAL_INSTRUCTION,
    ROLE_PLAY,
    ROLE_PLAY_INSTRUCTION,
)

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


def test_parse_generation_strips_numbering_bullets_labels_and_quotes():
    text = '1. "a hat was added"\n\n2) the dog now wears a hat\n- Caption 3: “the hat is new”\n  * there is a hat  \n'
    assert parse_generation(text) == [
        "a hat was added",
        "the dog now wears a hat",
        "the hat is new",
        "there is a hat",
    ]


# ------------------------------------------------------------------------------------- LLM variator

CHAT_TEMPLATE = (
    "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)


@pytest.fixture(scope="module")
def tiny_llm(tmp_path_factory):
    """A 2-layer random Llama of width 32 with a byte-level BPE tokenizer trained here, saved like a checkpoint."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    corpus = [
        "a hat has been added to the dog",
        "the car was removed",
        "the sky is now purple",
        "Instruction: Remove the car\nWrite 3 different captions.",
        "system: user: assistant:",
    ]
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<pad>", "<s>", "</s>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(corpus * 3, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-llm")
    LlamaForCausalLM(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


ITEMS = [("Add a hat to the dog", 4, 0), ("Remove the car", 3, 1), ("Make the sky purple", 2, 2)]


def _config(path, **kwargs):
    settings = {"max_new_tokens": 16, "max_attempts": 2, "batch_size": 2, "device": "cpu"}
    return LLMVariatorConfig(model_path=path, **{**settings, **kwargs})


def test_llm_variator_end_to_end_on_a_tiny_random_model(tiny_llm):
    real = LLMVariator(_config(tiny_llm))
    texts = []

    def recording(prompts, seeds):  # the real generation, recorded
        out = real._generate(prompts, seeds)
        texts.extend(out)
        return out

    results = LLMVariator(_config(tiny_llm), generate_fn=recording).vary_batch(ITEMS)
    assert len(texts) == 2 * len(ITEMS)  # a random LM writes no caption: every item used both attempts
    judged = sum(max(1, len(parse_generation(t))) for t in texts)  # a text with no line counts once, as empty
    assert sum(sum(r.rejected.values()) for r in results) == judged
    for (instruction, k, _), result in zip(ITEMS, results, strict=True):
        assert result.instruction == instruction
        assert len(result.variations) == k and result.fallbacks == k  # all filled from the templates
        assert set(result.variations) <= set(match_rule(instruction)[1])
        assert set(result.rejected) <= set(REASONS) and all(n > 0 for n in result.rejected.values())
        assert json.loads(json.dumps(result.settings))["model_path"] == tiny_llm

    again = LLMVariator(_config(tiny_llm)).vary_batch(ITEMS)  # same seeds, a fresh load: same output
    assert again == results
    assert [real.vary(*item) for item in ITEMS] == results  # alone or batched: a row's seed decides
    assert "assistant:" in real.build_prompt("Remove the car", 3)  # the tokenizer's chat template was used
    other = real._generate([real.build_prompt("Remove the car", 3)] * 2, [1, 2])
    assert other[0] != other[1]  # the seed drives the sampling


def test_llm_variator_keeps_only_the_good_line_of_the_supplementary_failures():
    answer = "\n".join(
        [
            f"1. {REFUSAL}",
            f"2. {ROLE_PLAY}",
            f"3. {INVENTED_PAPER}",
            "4. A stop light has been added on the road.",
        ]
    )
    calls = []

    def generate(prompts, seeds):
        calls.append((prompts, seeds))
        return [answer] * len(prompts)

    variator = LLMVariator(_config("no-such-checkpoint"), generate_fn=generate)
    result = variator.vary(INVENTED_INSTRUCTION, 3, seed=5)
    assert result.variations[0] == "a stop light has been added on the road"
    assert result.fallbacks == 2 and len(result.variations) == 3
    assert set(result.variations[1:]) <= set(match_rule(INVENTED_INSTRUCTION)[1])
    # the second attempt repeats the answer: the good line is then a duplicate
    assert result.rejected == {"refusal": 2, "role_play": 2, "invented_detail": 2, "duplicate": 1}
    assert len(calls) == 2 and INVENTED_INSTRUCTION in calls[0][0][0] and calls[0][1] != calls[1][1]
    assert "Captions:" in calls[0][0][0]  # no local tokenizer: the plain prompt
    assert variator.vary(INVENTED_INSTRUCTION, 3, seed=5) == result


def test_llm_variator_batches_and_stops_asking_once_k_are_accepted():
    answers = {
        REFUSAL_INSTRUCTION: REFUSAL + "\nthe background is now an illegal drug production",
        ROLE_PLAY_INSTRUCTION: ROLE_PLAY,
        INVENTED_INSTRUCTION: "a stop light has been added on the road\nthere is now a stop light on the road",
    }
    batches = []

    def generate(prompts, seeds):
        batches.append(len(prompts))
        return [next(a for i, a in answers.items() if i in p) for p in prompts]

    variator = LLMVariator(_config("no-such-checkpoint", max_attempts=3), generate_fn=generate)
    refused, played, invented = variator.vary_batch([(i, 2, 0) for i in answers])
    assert batches == [2, 1, 2, 2]  # batch_size 2; the stop-light item has its 2 after the first attempt
    assert invented.variations == answers[INVENTED_INSTRUCTION].splitlines() and invented.fallbacks == 0
    assert refused.variations[0] == "the background is now an illegal drug production"
    assert refused.rejected == {"refusal": 3, "duplicate": 2} and refused.fallbacks == 1
    assert played.rejected == {"role_play": 3} and played.fallbacks == 2


def test_a_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(ValueError, match="model_path .*no-model.*no local"):
        LLMVariator(_config(str(tmp_path / "no-model"))).vary("Remove the car", 2, 0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model_path": ""}, "model_path must name a local checkpoint, got ''"),
        ({"temperature": 0}, "temperature must be a number > 0, got 0"),
        ({"top_p": 1.5}, r"top_p must be in \(0, 1\], got 1.5"),
        ({"max_attempts": 0}, "max_attempts must be a positive integer, got 0"),
        ({"device": "gpu"}, "device must be auto, cpu, mps, cuda or cuda:N, got 'gpu'"),
        ({"dtype": "int8"}, "dtype must be one of .*, got 'int8'"),
        ({"guardrails": {"max_words": 0}}, "max_words must be a positive integer, got 0"),
        ({"user_prompt": "rewrite it"}, "user_prompt must contain {instruction}"),
    ],
)
def test_llm_config_errors_name_the_field_and_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LLMVariatorConfig(**{"model_path": "some/path", **kwargs})


@pytest.mark.gpu
def test_llm_variator_generates_on_the_gpu(tiny_llm):
    config = LLMVariatorConfig(model_path=tiny_llm, max_new_tokens=24, max_attempts=2, device="cuda")
    results = LLMVariator(config).vary_batch(ITEMS)
    assert [len(r.variations) for r in results] == [k for _, k, _ in ITEMS]
    assert LLMVariator(config).vary_batch(ITEMS) == results
