"""The LLM variator keeps only what passes the guardrails, counts every rejection and, in captions mode, fills up
from the templates; in instructions mode (the paper's test references) it writes imperative variations and
fills nothing. Deterministic per seed, batched: one generate call per batch of instructions."""

import json

import pytest

from idc_engine.synth.guardrails import REASONS
from idc_engine.synth.llm_variator import LLMVariator, LLMVariatorConfig, parse_generation
from idc_engine.synth.templates import match_rule
from tests.synth.test_guardrails import (
    INVENTED_INSTRUCTION,
    INVENTED_PAPER,
    REFUSAL,
    REFUSAL_INSTRUCTION,
    ROLE_PLAY,
    ROLE_PLAY_INSTRUCTION,
)
from tests.synth.tiny_llm import tiny_chat_llm


def test_parse_generation_strips_numbering_bullets_labels_and_quotes():
    text = '1. "a hat was added"\n\n2) the dog now wears a hat\n- Caption 3: “the hat is new”\n  * there is a hat  \n'
    assert parse_generation(text) == [
        "a hat was added",
        "the dog now wears a hat",
        "the hat is new",
        "there is a hat",
    ]


# ------------------------------------------------------------------------------------- LLM variator


@pytest.fixture(scope="module")
def tiny_llm(tmp_path_factory):
    """A 2-layer random Llama of width 32 with a byte-level BPE tokenizer trained here, saved like a checkpoint."""
    corpus = [
        "a hat has been added to the dog",
        "the car was removed",
        "the sky is now purple",
        "Instruction: Remove the car\nWrite 3 different captions.",
        "system: user: assistant:",
    ]
    model, tokenizer = tiny_chat_llm(corpus, vocab_size=400, width=32)
    folder = tmp_path_factory.mktemp("tiny-llm")
    model.eval().save_pretrained(folder)
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


def test_instructions_mode_asks_for_imperative_rewrites_and_fills_nothing():
    answer = "1. Put a stop light on the road.\n2. The stop light was removed from the road.\n3. Sure! Here they are."
    variator = LLMVariator(
        _config("no-such-checkpoint", mode="instructions", max_attempts=1), generate_fn=lambda p, s: [answer] * len(p)
    )
    result = variator.vary(INVENTED_INSTRUCTION, 3, seed=1)
    assert result.variations == ["Put a stop light on the road"]  # an instruction keeps its capital
    assert result.rejected == {"reversed": 1, "role_play": 1} and result.fallbacks == 0 and result.missing == 2
    prompt = variator.build_prompt(INVENTED_INSTRUCTION, 3)
    assert "imperative" in prompt and "Rewrites:" in prompt and "Write 3 different rewrites" in prompt
    assert variator.generate_calls == 1


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
        ({"mode": "questions"}, r"mode must be one of \('captions', 'instructions'\), got 'questions'"),
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
