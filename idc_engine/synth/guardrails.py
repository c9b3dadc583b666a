"""Guardrails for instruction variations: reject what an LLM writes when it is no faithful rewrite of the edit.

The BLIP2IDC supplementary shows Llama-2-7b-chat failing in three ways when asked to vary an edit
instruction, and the released Syned references contain all three (``gt_augmented_test_clean.json``):
refusing and moralising ("Instead, I would like to provide information on the legal and ethical
implications ..."), role-play ("Mooooo! I'll have a burger, please! ..."), and invented detail ("Add
a stop light on the road" -> "... at the intersection of Main Street and Oak Avenue"). A rewrite can
also keep the words and turn the meaning ("Add a hat to the dog" -> "the dog no longer has a hat").
``check_variation`` names the first reason a variation fails, in this order:

- ``empty``: no word at all.
- ``refusal``: refusing, apologising or moralising ("as an AI", "I cannot", "legal and ethical",
  "Instead, I would like ..."); moral vocabulary ("ethical", "harmful", "consent", ...) only counts
  when the instruction does not use the word itself.
- ``role_play``: first or second person, interjections, chatty preambles ("Sure! Here are ..."),
  elongated words ("Mooooo"), *actions*, emoji, questions, speaker labels ("Cow: ..."), quoted
  speech, more than ``max_exclamations`` exclamation marks.
- ``negated``, ``reversed``, ``attribute_swapped``: the variation says another edit
  (``idc_engine.synth.meaning``): it negates the edit ("do not add a hat", "the sky is no longer blue"),
  turns its direction (added <-> removed, appeared <-> disappeared), or ends with another attribute value
  (blue -> grey, bigger -> smaller, left -> right, night -> day).
- ``invented_detail``: more than ``max_new_names`` capitalised names or any number the instruction does
  not have, or more than ``max_new_content_words`` content words absent from it *net* of those it
  dropped (a synonym brings one word and drops one). Words every rewrite needs ("added", "now",
  "removed", "image", "instead", "there", "new", ...: ``REWRITE_WORDS``) are always allowed.
- ``too_long``: more words than ``max(max_length_ratio * n, n + length_slack_words)`` for an
  instruction of n words, and never more than ``max_words``.
- ``lost_content``: keeps less than ``min_content_kept`` of the content words of an instruction that has
  at least ``min_content_words`` of them (a one-word object is too often said with a synonym).
- ``duplicate``: the same words as the instruction or as a variation already accepted.

Text the instruction itself quotes or contains ("write 'I love you' on the sign") is never held
against a variation. Words are compared by lemma (lemminflect), so "added"/"adds"/"add",
"shrank"/"shrink" and "glasses"/"glass" match, and "surf board" matches "surfboard".

Calibration (``benchmarks/guardrails.py``, ``docs/syned.md``): the thresholds were chosen on the even idx
of the Syned release's Llama-2 references, which the authors kept whole, and are reported on the odd idx.
Faithful paraphrases there use synonyms and embellish freely, so the content rules only catch gross drift;
the LLM's junk is caught by the refusal, role-play and name rules, and turned meaning by the meaning rules.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from functools import lru_cache

from idc_engine.synth.meaning import disagreement
from idc_engine.synth.morphology import FUNCTION_WORDS, lemmas

REASONS = (
    "empty",
    "refusal",
    "role_play",
    "negated",
    "reversed",
    "attribute_swapped",
    "invented_detail",
    "too_long",
    "lost_content",
    "duplicate",
)
# The reasons that read meaning (``idc_engine.synth.meaning``): the variation says another edit.
MEANING_REASONS = ("negated", "reversed", "attribute_swapped")


@dataclass
class GuardrailConfig:
    """Every threshold of the guardrails; the only home of their defaults."""

    max_length_ratio: float = field(
        default=3.0, metadata={"help": "a variation may have this many times the instruction's words"}
    )
    length_slack_words: int = field(
        default=12, metadata={"help": "... or this many words more than the instruction, whichever is larger"}
    )
    max_words: int = field(default=40, metadata={"help": "absolute cap on a variation's words"})
    min_content_kept: float = field(
        default=0.2, metadata={"help": "share of the instruction's content words a variation must keep"}
    )
    max_new_content_words: int = field(
        default=6,
        metadata={"help": "content words absent from the instruction a variation may add, net of those it drops"},
    )
    min_content_words: int = field(
        default=3, metadata={"help": "lost_content applies to instructions with at least this many content words"}
    )
    check_meaning: bool = field(
        default=True, metadata={"help": "reject negated, reversed (added/removed) or attribute-swapped variations"}
    )
    max_exclamations: int = field(default=1, metadata={"help": "exclamation marks a variation may have"})
    allow_new_names: bool = field(
        default=False, metadata={"help": "accept capitalised names (places, brands) absent from the instruction"}
    )
    max_new_names: int = field(
        default=1,
        metadata={"help": "capitalised words absent from the instruction a variation may have ('Claude' Monet)"},
    )
    allow_new_numbers: bool = field(default=False, metadata={"help": "accept numbers absent from the instruction"})
    extra_allowed_words: tuple[str, ...] = field(
        default=(), metadata={"help": "words that never count as invented, besides REWRITE_WORDS"}
    )

    def __post_init__(self):
        if not isinstance(self.max_length_ratio, (int, float)) or self.max_length_ratio < 1.0:
            raise ValueError(f"max_length_ratio must be a number >= 1.0, got {self.max_length_ratio!r}")
        names = (
            "length_slack_words",
            "max_new_content_words",
            "max_exclamations",
            "max_new_names",
            "min_content_words",
        )
        for name in names:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if not isinstance(self.max_words, int) or isinstance(self.max_words, bool) or self.max_words < 1:
            raise ValueError(f"max_words must be a positive integer, got {self.max_words!r}")
        if not isinstance(self.min_content_kept, (int, float)) or not 0.0 <= self.min_content_kept <= 1.0:
            raise ValueError(f"min_content_kept must be in [0, 1], got {self.min_content_kept!r}")
        if isinstance(self.extra_allowed_words, str):
            raise ValueError(f"extra_allowed_words must be a sequence of words, got {self.extra_allowed_words!r}")
        self.extra_allowed_words = tuple(str(w).lower() for w in self.extra_allowed_words)

    def to_dict(self) -> dict:
        return {**asdict(self), "extra_allowed_words": list(self.extra_allowed_words)}


STOPWORDS = FUNCTION_WORDS

# Words a faithful rewrite of an instruction into a difference caption needs: edit verbs in every
# form, and the glue of captions. They never count as invented, and the instruction's own ones are
# not content a variation must keep.
REWRITE_WORDS = frozenset(
    """
    add added adding adds addition insert inserted include included introduce introduced
    put puts placed place placing position positioned set lay laid hang hung
    remove removed removing removal delete deleted erase erased eliminate eliminated rid get got gotten
    take taken took away gone disappear disappeared appear appeared appears appearing
    make made makes making change changed changes changing turn turned turns transform transformed
    convert converted become became becomes alter altered modify modified update updated edit edited
    replace replaced replacing swap swapped substitute substituted exchange exchanged instead
    move moved moves moving shift shifted position
    write written wrote say says said read reads text word words writing lettering phrase letters message
    wear wears wearing wore worn hold holds holding held give given gave
    look looks looked looking seem seems seemed show shows shown
    recreate recreated redo redone redraw redrawn reimagine reimagined render rendered depict depicted want
    should see let lets
    now new longer anymore someone something nothing no there here
    image images picture pictures photo photos photograph scene pic version original edited
    different same unchanged place position location
    color colour colored coloured painted
    please
    """.split()
)

NUMBER_WORDS = frozenset(
    "three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen "
    "eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand million dozen".split()
)

MORAL_WORDS = frozenset(
    "ethical unethical ethics moral morally immoral illegal legal harmful harm inappropriate offensive "
    "respectful disrespectful respect consent dignity privacy responsible safety".split()
)

_REFUSAL = re.compile(
    "|".join(
        (
            r"\bas an ai\b",
            r"\bai (?:language )?model\b",
            r"\bjust an ai\b",
            r"\bi (?:cannot|can't|can not|won't|will not|must decline|refuse|apologi[sz]e|must inform)\b",
            r"\bi(?:'m| am) (?:sorry|afraid|unable|not able)\b",
            r"\b(?:i|we) (?:would like to|suggest|encourage|recommend)\b",
            r"\binstead, (?:i|we|let|please|you)\b",
            r"\blegal and ethical\b",
            r"\bethical and (?:legal|moral)\b",
            r"\bit is (?:important|essential|crucial) to\b",
            r"\bi hope you understand\b",
            r"\bplease (?:note|understand)\b",
            r"\bfeel free to\b",
            r"\bif you have any other\b",
            r"\bis there anything else\b",
            r"\bhappy to (?:help|assist)\b",
            r"\bsorry\b",
            r"\bapolog",
        )
    ),
    re.IGNORECASE,
)

_PREAMBLE = re.compile(
    r"^\W*(?:sure|certainly|of course|absolutely|okay|ok|great|alright|here (?:are|is)|here's)\b", re.IGNORECASE
)
_FIRST_SECOND_PERSON = frozenset(
    "i i'm i'll i've i'd me my mine myself we we're we'll we've our ours us you you're you'll you've your yours "
    "yourself ya y'all".split()
)
_INTERJECTIONS = frozenset(
    "hey hi hello wow oh ooh uh um umm hmm yay hooray yeah yep nope oops whoa ahoy lol haha hahaha moo woof meow "
    "listen attention greetings welcome cheers".split()
)
_SPEAKER_LABEL = re.compile(r"^\W*[A-Z][a-z]+:\s")
_ACTION = re.compile(r"\*[^*\s][^*]*\*")
_ELONGATED = re.compile(r"([a-z])\1\1", re.IGNORECASE)
_QUOTED = re.compile(r"\"([^\"]+)\"|(?<![\w])'([^']+)'(?![\w])")
_TOKEN = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?|\d+(?:[.,]\d+)?")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;]\s+)\W*$")
_CURLY = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u00ab": '"', "\u00bb": '"'})


def normalize_quotes(text: str) -> str:
    """Curly quotes to straight ones."""
    return text.translate(_CURLY)


def strip_wrapping_quotes(text: str) -> str:
    """``"Add a hat."`` -> ``Add a hat.``; LLMs often quote each line, and sometimes open a quote they never close."""
    text = text.strip()
    while len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'" and text.count(text[0]) == 2:
        text = text[1:-1].strip()
    if text[:1] == '"' and text.count('"') == 1:
        text = text[1:].strip()
    if text[-1:] == '"' and text.count('"') == 1:
        text = text[:-1].strip()
    return text


@lru_cache(maxsize=65536)
def word_keys(word: str) -> frozenset[str]:
    """What a word matches: itself and every lemma of it ("added" -> add, "shrank" -> shrink, "leaves" -> leaf,
    leave), lowercased, so that two texts compare by lemma whatever their inflections."""
    lower = word.lower()
    if lower.endswith("'s"):
        lower = lower[:-2]
    return frozenset(lemmas(lower)) | {lower.replace("'", "")}


_REWRITE_KEYS = frozenset(k for w in REWRITE_WORDS for k in word_keys(w))
_STOP_KEYS = frozenset(STOPWORDS)


def words(text: str) -> list[str]:
    """The words of ``text`` (letters with inner apostrophes, or numbers), in order."""
    return _TOKEN.findall(normalize_quotes(text))


def content_words(text: str, extra_allowed: Iterable[str] = ()) -> list[str]:
    """The words of ``text`` that carry content (lowercased, in order): not stopwords, not rewrite words."""
    allowed = _REWRITE_KEYS | {k for w in extra_allowed for k in word_keys(w)}
    out = []
    for word in words(text):
        lower = word.lower()
        if lower in STOPWORDS or lower in REWRITE_WORDS or len(lower) < 2:
            continue
        keys = word_keys(lower)
        if keys & allowed or keys & _STOP_KEYS:
            continue
        out.append(lower)
    return out


def _text_keys(text: str) -> set[str]:
    """Every key of every word of ``text``, and of adjacent words written as one ("surf board" -> surfboard)."""
    tokens = [w.lower() for w in words(text)]
    keys = {k for w in tokens for k in word_keys(w)}
    for first, second in zip(tokens, tokens[1:]):
        keys |= word_keys(first + second)
    return keys


def _matched(word: str, keys: set[str], joined: set[str]) -> bool:
    return bool(word_keys(word) & keys) or word in joined


def _joined_matches(instruction: str, keys: set[str]) -> set[str]:
    """Words of ``instruction`` written apart there and as one word in the other text ("surf board", "surfboard")."""
    tokens = [w.lower() for w in words(instruction)]
    out = set()
    for first, second in zip(tokens, tokens[1:]):
        if word_keys(first + second) & keys:
            out |= {first, second}
    return out


def _normal_form(text: str) -> str:
    return " ".join(w.lower() for w in words(text))


def _remove_known_quotes(variation: str, instruction: str) -> str:
    """Drop quoted spans whose text the instruction has: quoting the instruction's text is not speech."""
    lower_instruction = instruction.lower()

    def replace(match: re.Match) -> str:
        quoted = match.group(1) if match.group(1) is not None else match.group(2)
        return " " if quoted.strip().lower() in lower_instruction else match.group(0)

    return _QUOTED.sub(replace, variation)


def _is_refusal(text: str, instruction_words: set[str]) -> bool:
    if _REFUSAL.search(text):
        return True
    return any(w.lower() in MORAL_WORDS and w.lower() not in instruction_words for w in words(text))


def _is_role_play(text: str, instruction: str, instruction_words: set[str], config: GuardrailConfig) -> bool:
    if _PREAMBLE.search(text) or _SPEAKER_LABEL.search(text) or _ACTION.search(text):
        return True
    if text.count("!") - instruction.count("!") > config.max_exclamations:
        return True
    if "?" in text and "?" not in instruction:
        return True
    if _QUOTED.search(text):  # a quote left after removing the instruction's own: speech
        return True
    if any(unicodedata.category(ch) == "So" for ch in text):  # emoji and pictographs
        return True
    for word in words(text):
        lower = word.lower()
        if lower in instruction_words:
            continue
        if lower in _FIRST_SECOND_PERSON or lower in _INTERJECTIONS or _ELONGATED.search(lower):
            return True
    return False


def _invented_detail(text: str, instruction: str, instruction_words: set[str], config: GuardrailConfig) -> bool:
    if not config.allow_new_names:
        names = set()
        for match in _TOKEN.finditer(text):
            word = match.group(0)
            if not word[0].isupper() or word.lower() in instruction_words or word == "I":
                continue
            if _SENTENCE_START.search(text[: match.start()]):
                continue  # a capital that starts a sentence says nothing
            names.add(word)
        if len(names) > config.max_new_names:
            return True
    if not config.allow_new_numbers:
        for word in words(text):
            lower = word.lower()
            if (word[0].isdigit() or lower in NUMBER_WORDS) and lower not in instruction_words:
                return True
    # Net of the words it dropped: a synonym ("timepiece" for "clock") brings one word and drops one.
    lost = len(set(content_words(instruction))) * (1.0 - content_kept(instruction, text))
    return _new_content(text, instruction, config) - round(lost) > config.max_new_content_words


def _new_content(text: str, instruction: str, config: GuardrailConfig) -> int:
    """Distinct content words of ``text`` that match nothing in ``instruction``."""
    keys = _text_keys(instruction)
    new = {w for w in content_words(text, config.extra_allowed_words) if not word_keys(w) & keys}
    # "surfboard" against the instruction's "surf board": written as one, it is no new word.
    tokens = [w.lower() for w in words(instruction)]
    joined = {a + b for a, b in zip(tokens, tokens[1:])}
    return len({w for w in new if w not in joined})


def _too_long(n_variation: int, n_instruction: int, config: GuardrailConfig) -> bool:
    limit = max(config.max_length_ratio * n_instruction, n_instruction + config.length_slack_words)
    return n_variation > min(limit, config.max_words)


def content_kept(instruction: str, text: str) -> float:
    """Share of the instruction's distinct content words that ``text`` keeps (by lemma), 1.0 when it has none."""
    wanted = set(content_words(instruction))
    if not wanted:
        return 1.0
    keys = _text_keys(text)
    joined = _joined_matches(instruction, keys)
    return sum(_matched(w, keys, joined) for w in wanted) / len(wanted)


def check_variation(
    instruction: str,
    variation: str,
    config: GuardrailConfig | None = None,
    *,
    accepted: Iterable[str] = (),
) -> str | None:
    """The first reason (one of ``REASONS``) why ``variation`` is not a faithful caption of ``instruction``,
    or None when it passes. ``accepted`` holds the variations already kept, for ``duplicate``."""
    config = config if config is not None else GuardrailConfig()
    if not isinstance(variation, str):
        raise TypeError(f"variation must be a string, got {type(variation).__name__}")
    if not isinstance(instruction, str) or not instruction.strip():
        raise ValueError(f"instruction must be a non-empty string, got {instruction!r}")
    instruction = normalize_quotes(instruction)
    text = strip_wrapping_quotes(normalize_quotes(variation))
    if not words(text):
        return "empty"
    instruction_words = {w.lower() for w in words(instruction)}
    if _is_refusal(text, instruction_words):
        return "refusal"
    own = _remove_known_quotes(text, instruction)
    if _is_role_play(own, instruction, instruction_words, config):
        return "role_play"
    if config.check_meaning and (reason := disagreement(instruction, own)) is not None:
        return reason
    if _invented_detail(own, instruction, instruction_words, config):
        return "invented_detail"
    if _too_long(len(words(text)), len(words(instruction)), config):
        return "too_long"
    if len(set(content_words(instruction))) >= config.min_content_words and (
        content_kept(instruction, text) < config.min_content_kept
    ):
        return "lost_content"
    normal = _normal_form(text)
    if normal == _normal_form(instruction) or any(normal == _normal_form(a) for a in accepted):
        return "duplicate"
    return None
