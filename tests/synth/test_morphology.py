"""Word forms from the libraries: lemmas (irregular ones too), plural noun phrases, "a" or "an" by sound."""

import pytest

from idc_engine.synth.morphology import head, indefinite_article, is_plural, lemmas


@pytest.mark.parametrize(
    ("word", "lemma"),
    [
        ("added", "add"),
        ("shrank", "shrink"),
        ("mice", "mouse"),
        ("bigger", "big"),
        ("leaves", "leaf"),
        ("dog's", "dog"),
    ],
)
def test_lemmas_include_irregular_forms(word, lemma):
    assert lemma in lemmas(word)


@pytest.mark.parametrize(
    ("phrase", "plural"),
    [
        ("the cats", True),
        ("the mice", True),
        ("the glasses", True),
        ("people", True),
        ("two hat", True),  # the determiner decides
        ("a bus", False),
        ("the grass", False),
        ("the news", False),
        ("this cactus", False),
        ("the men with a hat", True),
        ("the man with the hats", False),  # the head noun, not the last word
        ("qtext0", False),
    ],
)
def test_plural_noun_phrases(phrase, plural):
    assert is_plural(phrase) is plural


def test_articles_by_sound_and_heads():
    assert [indefinite_article(w) for w in ("hour", "unicorn", "umbrella", "apple", "European")] == [
        "an",
        "a",
        "an",
        "an",
        "a",
    ]
    assert head("the red car in the street") == "car" and head("two cats") == "cats"
