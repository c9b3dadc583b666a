"""Guardrails for instruction variations: reject what an LLM writes when it does not write a caption.

The BLIP2IDC supplementary shows Llama-2-7b-chat failing in three ways when asked to vary an edit
instruction, and the released Syned references contain all three (``gt_augmented_test_clean.json``):
refusing and moralising ("Instead, I would like to provide information on the legal and ethical
implications ..."), role-play ("Mooooo! I'll have a burger, please! ..."), and invented detail ("Add
a stop light on the road" -> "... at the intersection of Main Street and Oak Avenue").
``check_variation`` names the first reason a variation fails, in this order:

- ``empty``: no word at all.
- ``refusal``: refusing, apologising or moralising ("as an AI", "I cannot", "legal and ethical",
  "Instead, I would like ..."); moral vocabulary ("ethical", "harmful", "consent", ...) only counts
  when the instruction does not use the word itself.
- ``role_play``: first or second person, interjections, chatty preambles ("Sure! Here are ..."),
  elongated words ("Mooooo"), *actions*, emoji, questions, speaker labels ("Cow: ..."), quoted
  speech, more than ``max_exclamations`` exclamation marks.
- ``invented_detail``: capitalised names or numbers the instruction does not have, or more than
  ``max_new_content_words`` content words absent from it. Words every rewrite needs ("added",
  "now", "removed", "image", "instead", "there", "new", ...: ``REWRITE_WORDS``) are always allowed.
- ``too_long``: more words than ``max(max_length_ratio * n, n + length_slack_words)`` for an
  instruction of n words, and never more than ``max_words``.
- ``lost_content``: keeps less than ``min_content_kept`` of the instruction's content words.
- ``duplicate``: the same words as the instruction or as a variation already accepted.

Text the instruction itself quotes or contains ("write 'I love you' on the sign") is never held
against a variation. Words are compared after a light stemming, so "added"/"adds"/"add" and
"glasses"/"glass" match.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from functools import lru_cache

REASONS = ("empty", "refusal", "role_play", "invented_detail", "too_long", "lost_content", "duplicate")


@dataclass
class GuardrailConfig:
    """Every threshold of the guardrails; the only home of their defaults."""

    max_length_ratio: float = field(
        default=2.0, metadata={"help": "a variation may have this many times the instruction's words"}
    )
    length_slack_words: int = field(
        default=8, metadata={"help": "... or this many words more than the instruction, whichever is larger"}
    )
    max_words: int = field(default=40, metadata={"help": "absolute cap on a variation's words"})
    min_content_kept: float = field(
        default=0.65, metadata={"help": "share of the instruction's content words a variation must keep"}
    )
    max_new_content_words: int = field(
        default=2, metadata={"help": "content words absent from the instruction a variation may add"}
    )
    max_exclamations: int = field(default=1, metadata={"help": "exclamation marks a variation may have"})
    allow_new_names: bool = field(
        default=False, metadata={"help": "accept capitalised names (places, brands) absent from the instruction"}
    )
    allow_new_numbers: bool = field(default=False, metadata={"help": "accept numbers absent from the instruction"})
    extra_allowed_words: tuple[str, ...] = field(
        default=(), metadata={"help": "words that never count as invented, besides REWRITE_WORDS"}
    )

    def __post_init__(self):
        if not isinstance(self.max_length_ratio, (int, float)) or self.max_length_ratio < 1.0:
            raise ValueError(f"max_length_ratio must be a number >= 1.0, got {self.max_length_ratio!r}")
        for name in ("length_slack_words", "max_new_content_words", "max_exclamations"):
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


STOPWORDS = frozenset(
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
def stem(word: str) -> str:
    """A light, consistent stemmer: enough to match "added"/"adds"/"add", "glasses"/"glass", "trees"/"tree"."""
    w = word.lower()
    if w.endswith("'s"):
        w = w[:-2]
    w = w.replace("'", "")
    if len(w) > 4 and w.endswith("ies"):
        w = w[:-3] + "y"
    elif len(w) > 5 and w.endswith("ing"):
        w = w[:-3]
    elif len(w) > 4 and w.endswith("ed"):
        w = w[:-2]
    elif len(w) > 4 and w.endswith(("sses", "shes", "ches", "xes")):
        w = w[:-2]
    elif len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    if len(w) > 3 and w.endswith("e"):
        w = w[:-1]
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "aeiouls":  # "running" -> "runn" -> "run"
        w = w[:-1]
    return w


_REWRITE_STEMS = frozenset(stem(w) for w in REWRITE_WORDS)
_STOP_STEMS = frozenset(stem(w) for w in STOPWORDS)


def words(text: str) -> list[str]:
    """The words of ``text`` (letters with inner apostrophes, or numbers), in order."""
    return _TOKEN.findall(normalize_quotes(text))


def content_stems(text: str, extra_allowed: Iterable[str] = ()) -> set[str]:
    """Stems of the words that carry content: not stopwords, not rewrite words."""
    allowed = _REWRITE_STEMS | {stem(w) for w in extra_allowed}
    out = set()
    for word in words(text):
        lower = word.lower()
        if lower in STOPWORDS or lower in REWRITE_WORDS:
            continue
        s = stem(lower)
        if len(s) < 2 or s in allowed or s in _STOP_STEMS:
            continue
        out.add(s)
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
        for match in _TOKEN.finditer(text):
            word = match.group(0)
            if not word[0].isupper() or word.lower() in instruction_words or word == "I":
                continue
            if _SENTENCE_START.search(text[: match.start()]):
                continue  # a capital that starts a sentence says nothing
            return True
    if not config.allow_new_numbers:
        for word in words(text):
            lower = word.lower()
            if (word[0].isdigit() or lower in NUMBER_WORDS) and lower not in instruction_words:
                return True
    new = content_stems(text, config.extra_allowed_words) - content_stems(instruction) - _stems_of(instruction_words)
    return len(new) > config.max_new_content_words


def _stems_of(word_set: set[str]) -> set[str]:
    return {stem(w) for w in word_set}


def _too_long(n_variation: int, n_instruction: int, config: GuardrailConfig) -> bool:
    limit = max(config.max_length_ratio * n_instruction, n_instruction + config.length_slack_words)
    return n_variation > min(limit, config.max_words)


def _lost_content(text: str, instruction: str, config: GuardrailConfig) -> bool:
    wanted = content_stems(instruction)
    if not wanted:
        return False
    have = content_stems(text) | {stem(w) for w in words(text)}
    return len(wanted & have) / len(wanted) < config.min_content_kept


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
    instruction = normalize_quotes(str(instruction))
    text = strip_wrapping_quotes(normalize_quotes(variation))
    if not words(text):
        return "empty"
    instruction_words = {w.lower() for w in words(instruction)}
    if _is_refusal(text, instruction_words):
        return "refusal"
    own = _remove_known_quotes(text, instruction)
    if _is_role_play(own, instruction, instruction_words, config):
        return "role_play"
    if _invented_detail(own, instruction, instruction_words, config):
        return "invented_detail"
    if _too_long(len(words(text)), len(words(instruction)), config):
        return "too_long"
    if _lost_content(text, instruction, config):
        return "lost_content"
    normal = _normal_form(text)
    if normal == _normal_form(instruction) or any(normal == _normal_form(a) for a in accepted):
        return "duplicate"
    return None
