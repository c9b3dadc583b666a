"""English word forms for the variators and the guardrails, from two maintained libraries.

- ``lemminflect`` (lemmas and inflections from a lexicon, with irregular forms): "shrank" -> "shrink",
  "leaves" -> "leaf", "bigger" -> "big", and whether a noun is plural ("mice", "glasses", not "bus").
- ``inflect`` (the indefinite article by sound): "an hour", "a unicorn", "an umbrella", "a European".

Only what the libraries do not know stays here: the determiners that decide number ("two cats", "this
cat"), and a noun phrase's head word ("the man *with* a hat").
"""

from __future__ import annotations

from functools import lru_cache

SINGULAR_DETERMINERS = frozenset("a an one this that each every another".split())
PLURAL_DETERMINERS = frozenset("these those two three four five six seven eight nine ten several many both few".split())
INDEFINITE_DETERMINERS = frozenset(
    "a an some one two three four five six seven eight nine ten several many few".split()
)
DETERMINERS = frozenset(
    "a an the some this that these those his her their its my your our one two three four five six seven "
    "eight nine ten several many all both each every another any no few".split()
)
# Function words: they carry no content of their own (sides such as "top" and "front" included: they say where).
FUNCTION_WORDS = frozenset(
    """
    a an the this that these those some any each every all both either neither no not nor none
    of to in on at by for with from into onto over under above below behind beside besides between
    near next front top bottom up down out off inside outside around through across along against
    toward towards upon within without about after before during until while
    and or but so yet if then than as like
    it its it's itself he him his she her hers they them their theirs we us our you your i me my
    who whom whose which what where when why how
    is are was were be been being am do does did done has have had having will would shall should
    can could may might must
    very more most less least much many few little just only also even still too quite rather
    here there now already again once
    one two another other such same own
    s t
    """.split()
)
# Nouns with no singular that the lexicon gives as their own lemma (they take "are").
PLURALIA_TANTUM = frozenset(
    "jeans scissors pants trousers shorts sunglasses goggles tongs pliers binoculars people police cattle".split()
)
# Words after which a noun phrase's head has been said: "the man [with a hat]", "a cat [sitting on the sofa]".
HEAD_CUT = frozenset(
    "of in on with at from near behind under over next beside wearing holding that which who riding sitting "
    "standing looking coming picking walking to by for into onto above below outside inside around".split()
)


@lru_cache(maxsize=65536)
def lemmas(word: str) -> tuple[str, ...]:
    """Every lemma lemminflect knows for ``word`` (any part of speech), or its out-of-vocabulary guesses."""
    from lemminflect import getAllLemmas, getAllLemmasOOV

    lower = word.lower()
    if lower.endswith("'s"):
        lower = lower[:-2]
    found = getAllLemmas(lower) or getAllLemmasOOV(lower, upos="NOUN")
    out = dict.fromkeys(lemma for forms in found.values() for lemma in forms)
    return tuple(out) or (lower,)


def head(noun_phrase: str) -> str:
    """The head noun of a noun phrase: "the man with a hat" -> "man", "two red cars" -> "cars"."""
    parts = noun_phrase.split()
    if parts and parts[0] in DETERMINERS:
        parts = parts[1:]
    for i, word in enumerate(parts):
        if i > 0 and word in HEAD_CUT:
            parts = parts[:i]
            break
    return parts[-1] if parts else ""


@lru_cache(maxsize=65536)
def is_plural_noun(word: str) -> bool:
    """Whether ``word`` is a plural noun form ("cats", "mice", "glasses"; not "bus", "grass", "news")."""
    from lemminflect import getAllLemmas, getAllLemmasOOV

    lower = word.lower()
    if lower.endswith("'s") or len(lower) < 3:
        return False
    known = getAllLemmas(lower, upos="NOUN").get("NOUN")
    if known is None:
        known = getAllLemmasOOV(lower, upos="NOUN").get("NOUN", ())
        # Out of the lexicon, only a regular "-s" plural is believed ("zorbs", not "cactus").
        return lower.endswith("s") and not lower.endswith(("ss", "us", "is")) and lower not in known
    return lower in PLURALIA_TANTUM or any(lemma != lower for lemma in known)


def is_plural(noun_phrase: str) -> bool:
    """Whether a noun phrase is plural: by its determiner when that decides, else by its head noun."""
    first = noun_phrase.split(" ", 1)[0]
    if first in SINGULAR_DETERMINERS:
        return False
    if first in PLURAL_DETERMINERS or noun_phrase in ("they", "them"):
        return True
    word = head(noun_phrase)
    if word.startswith("qtext"):  # a quoted text is one thing
        return False
    return is_plural_noun(word)


@lru_cache(maxsize=16384)
def indefinite_article(phrase: str) -> str:
    """ "a" or "an" for ``phrase``, by how its first word sounds."""
    return _engine().a(phrase).split(" ", 1)[0]


@lru_cache(maxsize=1)
def _engine():
    import inflect

    return inflect.engine()
