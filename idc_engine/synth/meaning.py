"""What an edit instruction or a difference caption says will change, read closely enough to compare two of them.

The guardrails (``idc_engine.synth.guardrails``) use this to reject a variation whose meaning differs from its
instruction's although it shares almost every word with it:

- **presence**: does the edit put something in (``add``: add, insert, appear, "there is now", ...) or take
  something out (``remove``: remove, delete, disappear, gone, "no longer", without, ...)? "Remove the car" and
  "a car has been added" share their content words and point opposite ways.
- **attribute values**: the colour, size, brightness, time of day, season, state (open / closed, full / empty,
  ...) or side (left / right, top / bottom, ...) that the edit ends with. Each value is read with its position:
  a value after "from", "instead of", "no longer" or "not" is the state *before* the edit; a value in front of a
  noun ("the blue sky") is the state before when the same clause names another value as the result ("the blue
  sky turned grey"), and the value itself otherwise ("add a red hat"). Colours compare by family (crimson is
  red; teal is blue and green); the other classes by pole (bigger, larger and enlarge are one pole; smaller,
  shrink and reduce the other), and "less" in front of a value flips its pole.
- **negation**: "do not add", "the hat was not added", "no hat was added", "the sky is not blue", "leave it as it
  is", "keep the car".
- **power**: the particle of "turn / switch ... on / off" (the lights on, the lamp off).

Words are compared through their lemmas (``idc_engine.synth.morphology``), so "enlarged", "shrank" and "bigger"
find their entries. Quoted text ("write 'NO ENTRY'") is left out: it is content, not meaning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from idc_engine.synth.morphology import FUNCTION_WORDS, lemmas

# ----------------------------------------------------------------------------------------- lexicon

ADD_VERBS = frozenset("add insert include introduce attach append appear emerge plant install sprinkle".split())
# "appear" adds only where it says where ("a cat appeared on the sofa"); "appear to be" / "appear like" is seeming.
SEEM_VERBS = frozenset({"appear", "emerge"})
PLACE_PREPOSITIONS = frozenset(
    "in on at behind next near above below under over inside outside from out beside between around".split() + [""]
)
REMOVE_VERBS = frozenset(
    "remove delete erase eliminate disappear vanish omit extract melt shave drain extinguish exit".split()
)
REMOVE_WORDS = frozenset("gone missing absent without removal deletion anymore".split())
# Verbs that put something somewhere: an addition when the instruction removes, neutral otherwise (they also move).
PLACE_VERBS = frozenset("put place position hang lay restore".split())
# Words after which a word stands as a verb ("the cup *was* placed", "then *put*"), or a sentence starts.
VERB_LEAD = frozenset("and then to was were is are be been being get got gets please now also just".split())
# Verb + particle pairs that take something out ("take away", "get rid of", "clear out").
REMOVE_PARTICLES = {"clear": ("away", "out", "off"), "wipe": ("out", "away")}
REMOVE_PARTICLES |= {"get": ("off", "away"), "pull": ("off", "out"), "cut": ("out",), "rid": ("of",)}
REMOVE_PARTICLES |= {"strip": ("away", "off", "from"), "put": ("away",), "take": ("away", "out", "off", "down", "from")}
REMOVE_PARTICLES |= {"lift": ("off",), "knock": ("off",), "fall": ("off", "out"), "blow": ("out",)}
ADD_PARTICLES = {"pop": ("up",), "bring": ("in", "back"), "put": ("back",), "come": ("in", "back")}
# Words that come in: an addition ("a bird arrived", "the bird is back").
ARRIVE_VERBS = frozenset("arrive".split())
# Verbs that make something where there was nothing: an addition when the instruction removes, as PLACE_VERBS.
MAKE_VERBS = frozenset("draw return".split())
# "the dog lost its hat" (not "lost in thought", "a lost tomb"): losing something that was there.
LOSE_OBJECTS = frozenset("its his her their the a an all".split())
# A thing that stays: "keep the bird", "the car remains", "the car is still there".
STAY_VERBS = frozenset("keep leave preserve retain remain stay".split())
STILL_THERE = frozenset("there here visible present".split())
# "turn on" / "switch off": a power state.
POWER_VERBS = frozenset("turn switch flip power".split())

# Verbs that carry out a change: negating one of them negates the edit.
CHANGE_VERBS = frozenset(
    """make change turn transform convert become paint colour color dye replace swap substitute move shift
    modify alter edit update write draw open close fill cover give wear hold put place set show render
    recreate create""".split()
)
NEGATIONS = frozenset(
    """not never cannot don't doesn't didn't isn't aren't wasn't weren't hasn't haven't hadn't won't can't
    shouldn't mustn't""".split()
)
# "no change", "no difference": nothing was edited (not the absence of an object).
NO_CHANGE_WORDS = frozenset("change changes difference differences edit edits".split())
KEEP_VERBS = frozenset("keep leave preserve retain maintain".split())
# Not "leave": "leave a note on the table" puts something there.
KEEP_IMPERATIVES = frozenset("keep preserve retain maintain".split())
# Verbs whose particle "on" / "off" is a state: "turn the lights off", "switch on the lamp".
POWER_VERBS = frozenset("turn switch power flick".split())
AS_IS_WORDS = frozenset("unchanged untouched intact unaltered unedited".split())
# A value up to three words after one of these is the state before the edit (or one the edit avoids), unless a
# word of SCOPE_END comes between ("from red *to* blue", "replace the day *with* night").
BEFORE_MARKERS = frozenset(
    "from instead rather longer not never formerly previously originally once replace replacing swap substitute".split()
)
DENIALS = NEGATIONS | {"longer", "instead", "rather"}
SCOPE_END = frozenset("to into with by for and but then".split())
# Sides and places: "from the bottom" says where, not a state the edit leaves.
POSITION_KINDS = frozenset({"horizontal", "vertical", "depth", "inside"})
# Words after a value that keep it predicative ("blue in colour", "red and shiny").
VALUE_TAIL = frozenset(
    """color colour colors colours colored coloured tone tones tint shade shades hue hues now again instead too
    all entirely completely overall""".split()
)

# Colour word -> families; a word in two families agrees with both.
# Foods and materials that name colours (lemon, cream, chocolate, olive, copper) are left out: "lemon pound cake"
# is no yellow.
_COLOUR_FAMILIES = {
    "red": "red crimson scarlet ruby maroon burgundy vermilion",
    "pink": "pink fuchsia magenta",
    "orange": "orange amber",
    "yellow": "yellow golden gold blonde blond",
    "green": "green emerald teal turquoise cyan aqua",
    "blue": "blue navy azure cobalt sapphire indigo teal turquoise cyan aqua",
    "purple": "purple violet lavender lilac mauve magenta indigo",
    "brown": "brown tan beige sepia khaki",
    "grey": "grey gray silver charcoal",
    "black": "black",
    "white": "white",
}
COLOURS: dict[str, frozenset[str]] = {}
for _family, _words in _COLOUR_FAMILIES.items():
    for _word in _words.split():
        COLOURS[_word] = COLOURS.get(_word, frozenset()) | {_family}

# Classes with two poles: (class, pole) per lemma. Ambiguous words are left out on purpose ("light" is a lamp,
# "close to" is near, "fall" is a verb, "lower" is a side, "new" is everywhere).
_POLES = {
    "amount": (
        "big large huge giant enormous enlarge grow expand magnify increase more boost intensify amplify tall",
        "small tiny miniature shrink reduce decrease less lessen few diminish minimize weaken",
    ),
    "brightness": ("bright brighten lighten lighter illuminate", "dark darken dim gloomy"),
    "time": ("day daytime morning noon midday afternoon", "night nighttime midnight"),
    "season": ("summer summertime", "winter wintertime"),
    "temperature": ("hot warm", "cold cool freezing"),
    "open": ("open", "close closed shut"),
    "fill": ("full", "empty"),
    "wetness": ("wet", "dry"),
    "age": ("old elderly aged", "young"),
    "mood": ("happy cheerful joyful", "sad unhappy gloomy"),
    "cleanliness": ("clean", "dirty"),
    "horizontal": ("left leftmost", "right rightmost"),
    "vertical": ("top", "bottom"),
    "depth": ("front", "behind"),
    "inside": ("inside indoors", "outside outdoors"),
}
POLES: dict[str, tuple[str, int]] = {}
for _class, (_plus, _minus) in _POLES.items():
    for _pole, _words in ((1, _plus), (-1, _minus)):
        for _word in _words.split():
            POLES[_word] = (_class, _pole)

_STAYS_SAME = re.compile(r" (?:is|are|look|looks|remain|remains|stay|stays|stayed|remained) (?:the )?same ")
_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|\d+")
# A single-quoted span may hold apostrophes inside words: 'So much hair, don't care!'.
_QUOTED = re.compile(r"\"[^\"]*\"|(?<![\w])'(?:[^']|'(?=\w))*'(?![\w])")
_CURLY = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


@dataclass(frozen=True)
class Value:
    """One attribute value in a text: its class, what it is (colour families or a pole), and where it stands."""

    kind: str
    value: frozenset  # colour families, or {+1} / {-1}
    before: bool  # the state before the edit (or one the edit avoids), not its result
    denied: bool = False  # said with a negation: "not blue", "no longer blue", "instead of blue"
    past: bool = False  # said of the thing as it was: "the dog was black", "used to be black"


@dataclass
class Meaning:
    """What a text says will change; see the module docstring."""

    presence: set[str] = field(default_factory=set)  # "add", "remove", "place"
    negated: bool = False
    stays: bool = False  # "keep the bird", "the car remains"
    values: list[Value] = field(default_factory=list)

    def after(self, kind: str) -> set:
        return _union(v.value for v in self.values if v.kind == kind and not v.before)

    def before(self, kind: str) -> set:
        return _union(v.value for v in self.values if v.kind == kind and v.before)

    def denied(self, kind: str) -> set:
        return _union(v.value for v in self.values if v.kind == kind and v.denied)

    def mentions(self, kind: str, before: bool) -> list[frozenset]:
        return [v.value for v in self.values if v.kind == kind and v.before == before]

    def kinds(self) -> set[str]:
        return {v.kind for v in self.values}


def _union(sets) -> set:
    out = set()
    for s in sets:
        out |= s
    return out


def tokens(text: str, known: tuple[str, ...] = ()) -> list[str]:
    """Lowercased words of ``text`` in order, quoted text and the ``known`` texts left out."""
    text = _QUOTED.sub(" ", text.translate(_CURLY))
    for quote in known:
        text = re.sub(rf"(?<!\w){re.escape(quote)}(?!\w)", " ", text, flags=re.IGNORECASE)
    return _TOKEN.findall(text.lower())


def quoted(text: str) -> tuple[str, ...]:
    """The texts ``text`` quotes, without their quotes."""
    return tuple(q[1:-1] for q in _QUOTED.findall(text.translate(_CURLY)) if len(q) > 2)


@lru_cache(maxsize=65536)
def _lemma_set(word: str) -> frozenset[str]:
    return frozenset(lemmas(word)) | {word}


def _has(word: str, lexicon) -> bool:
    return bool(_lemma_set(word) & lexicon)


def _value_of(word: str):
    """``(kind, value set)`` of an attribute word, or None."""
    colour = _colour(word)
    if colour:
        return "colour", colour
    for candidate in (word, *sorted(_lemma_set(word))):
        if candidate in POLES:
            kind, pole = POLES[candidate]
            return kind, frozenset({pole})
    return None


@lru_cache(maxsize=65536)
def _colour(word: str) -> frozenset[str]:
    """Colour families of a colour word or of its derivations: "reddish", "purplish", "blacken", "whitened"."""
    if word in COLOURS:
        return COLOURS[word]
    for suffix in ("ish", "en", "ened", "ens", "ening"):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            stem = word[: -len(suffix)]
            for candidate in (stem, stem + "e", stem[:-1] if stem[-1:] == stem[-2:-1] else stem):
                if candidate in COLOURS:
                    return COLOURS[candidate]
    return frozenset()


def read(text: str, known: tuple[str, ...] = ()) -> Meaning:
    """The meaning of an instruction or a caption, without the ``known`` texts (quoted in its instruction)."""
    words = tokens(text, known)
    meaning = Meaning()
    meaning.presence = _presence(words)
    meaning.negated = _negated(words)
    meaning.stays = _stays(words)
    meaning.values = _values(words)
    return meaning


def _presence(words: list[str]) -> set[str]:
    found = set()
    for i, word in enumerate(words):
        following = words[i + 1] if i + 1 < len(words) else ""
        previous = words[i - 1] if i else ""
        lemma_set = _lemma_set(word)
        if lemma_set & ADD_VERBS and not (lemma_set & SEEM_VERBS and following not in PLACE_PREPOSITIONS):
            found.add("add")
        elif lemma_set & REMOVE_VERBS or word in REMOVE_WORDS:
            found.add("remove")
        elif word == "no" and following in ("longer", "more"):
            found.add("remove")
        elif word == "no" and following not in NO_CHANGE_WORDS and _is_noun_like(following) and previous != "had":
            found.add("remove")  # "the dog has no hat", "no hat on the dog": an absence ("had no hat": before)
        elif word in ("there", "here") and following in ("is", "are", "was", "were") and i + 2 < len(words):
            # "there is now a cat", "there is a cat on the sofa now"
            now = "now" in _until_scope_end(words[i + 2 : i + 9])
            found.add("remove" if words[i + 2] == "no" else "add" if now else "")
        elif word in NEGATIONS and any(w in ABSENT_AFTER_NEGATION for w in words[i + 1 : i + 3]):
            found.add("remove")  # "the bird is not there", "the car is not visible anymore"
        elif word in ("there's", "here's") and following in ("no", "now"):
            found.add({"no": "remove", "now": "add"}[following])
        for verb, particles in REMOVE_PARTICLES.items():
            # "take away the hat" and "take the hat away": the particle may follow the object.
            if verb in lemma_set and any(w in particles for w in _until_scope_end(words[i + 1 : i + 6])):
                found.add("remove")
        for verb, particles in ADD_PARTICLES.items():
            if verb in lemma_set and following in particles:
                found.add("add")
        if lemma_set & ARRIVE_VERBS or (word == "back" and previous in ("is", "are", "was", "were")):
            found.add("add")
        if "lose" in lemma_set and following in LOSE_OBJECTS:
            found.add("remove")
        at_verb = not previous or previous in VERB_LEAD or previous.endswith(("ed", "ly"))
        if lemma_set & (PLACE_VERBS | MAKE_VERBS) and at_verb and following not in ("away", "off", "out"):
            found.add("place")
    found.discard("")
    return found


def _stays(words: list[str]) -> bool:
    """Whether the text says a thing stays as it is: "keep the bird", "leave the bird", "the car remains", "the
    car is still there"."""
    for i, word in enumerate(words):
        lemma_set = _lemma_set(word)
        # At the start only the imperative's base form: "leaves are now on the tree" is no "leave".
        # "Leave a note on the table" puts one there; "leave the bird" keeps it.
        placing = word == "leave" and words[i + 1 : i + 2] in (["a"], ["an"], ["some"])
        if lemma_set & {"remain", "stay"} or (i == 0 and word in STAY_VERBS and not placing):
            return True
        if word == "still" and any(w in STILL_THERE for w in words[i + 1 : i + 3]):
            return True
    return False


CEASE_WORDS = frozenset("stop stopped stops ceased quit".split())


def _ceased(words: list[str]) -> set[str]:
    """Lemmas of what a text says has stopped: "no longer *smiling*", "stopped *smiling*", "not *jumping* anymore"."""
    out = set()
    for i, word in enumerate(words):
        after = []
        if word == "longer" and i and words[i - 1] == "no":
            after = words[i + 1 : i + 3]
        elif word in CEASE_WORDS and words[i + 1 : i + 2] and words[i + 1].endswith("ing"):
            after = words[i + 1 : i + 2]  # "stopped smiling", not "stop the bus" or "the STOP word"
        elif word in NEGATIONS and _ended(words, i):
            after = words[i + 1 : i + 3]
        for candidate in after:
            if candidate in AUX_WORDS or not _is_noun_like(candidate):
                continue
            out |= _lemma_set(candidate)
            break
    return out


def _stopped_action(source: list[str], other: list[str]) -> bool:
    """Whether ``other`` says that a word of ``source`` has stopped, where ``source`` does not stop it."""
    named = {k for w in source if _is_noun_like(w) for k in _lemma_set(w)}
    return bool((_ceased(other) - _ceased(source)) & named)


def _until_scope_end(words: list[str]) -> list[str]:
    for index, word in enumerate(words):
        if word in SCOPE_END and word != "then":
            return words[: index + 1]
    return words


def _negated(words: list[str]) -> bool:
    actions = CHANGE_VERBS | ADD_VERBS | REMOVE_VERBS | PLACE_VERBS
    # "Do not ...", "Please never ...", "Make sure not to ...": an imperative negated whatever its verb; not a
    # statement ("the car *is* not there").
    first = next((i for i, w in enumerate(words[:4]) if w in NEGATIONS), None)
    opening = words[:first] if first is not None else []
    if first is not None and not any(w in ("if", "when", "that", "so") or w in AUX_WORDS for w in opening):
        return True
    for i, word in enumerate(words):
        following = words[i + 1] if i + 1 < len(words) else ""
        if word in NEGATIONS and _ended(words, i):
            continue  # "the dog is not wearing a hat anymore": a state that ended, read as presence and values
        if word == "no" and following in NO_CHANGE_WORDS:
            return True
        absent = word == "nothing" or (word == "no" and _is_noun_like(following))
        if absent and i and _has(words[i - 1], actions):
            return True  # "add no hat", "add nothing to the dog"
        if word in NEGATIONS or word == "nothing":
            if any(_has(w, actions) for w in words[i + 1 : i + 4]):
                return True
        # Not "a man with no hat was added": there "no hat" describes what was added.
        modifier = i and words[i - 1] == "with"
        if (
            word == "no"
            and following not in ("longer", "more")
            and not modifier
            and _no_thing_was_acted_on(words[i + 1 : i + 7])
        ):
            return True  # "no hat was added", "no cars have been removed"
    # "Keep the car", "Please preserve the sky": an imperative that only keeps something.
    lead = words[1:] if words[:1] == ["please"] else words
    if lead and lead[0] in KEEP_IMPERATIVES and not any(_has(w, actions) for w in lead[1:]):
        return True
    # "leave the car as it is", "the two images are identical": an edit that changes nothing.
    keeps = any(_has(w, KEEP_VERBS) for w in words) and ("same" in words or "alone" in words)
    as_is = keeps or any(w in AS_IS_WORDS for w in words) or "identical" in words
    joined = " " + " ".join(words) + " "
    as_is = as_is or " as it is " in joined or bool(_STAYS_SAME.search(joined))
    if as_is:
        acting = [w for w in words if _has(w, actions) and not _has(w, KEEP_VERBS)]
        return not acting
    return False


def _no_thing_was_acted_on(words: list[str]) -> bool:
    """After "no": a passive of a verb that adds, removes or places ("hat was added"); not "no car is shown"."""
    words = _until_scope_end(words)
    presence = ADD_VERBS | REMOVE_VERBS | PLACE_VERBS
    auxiliaries = ("was", "were", "is", "are", "been", "be", "got", "gets")
    return any(
        words[j] in auxiliaries and _has(words[j + 1], presence) and words[j + 1].endswith(("ed", "en", "t"))
        for j in range(len(words) - 1)
    )


ENDED_WORDS = frozenset("anymore longer".split())  # "not ... anymore", "not ... any longer"
ABSENT_AFTER_NEGATION = frozenset("there here visible present seen".split())


def _ended(words: list[str], index: int) -> bool:
    """Whether the negation at ``index`` says a state ended: "anymore" or "any longer" later in its clause."""
    return any(w in ENDED_WORDS for w in _until_scope_end(words[index + 1 : index + 8]))


def _values(words: list[str]) -> list[Value]:
    found = []  # (index, kind, value, marked before, prenominal)
    for i, word in enumerate(words):
        read_value = _value_of(word) or _power(words, i)
        if read_value is None:
            continue
        kind, value = read_value
        following = words[i + 1] if i + 1 < len(words) else ""
        if following in ("ish",):  # "blue-ish"
            following = words[i + 2] if i + 2 < len(words) else ""
        if word in ("more", "less") and _value_of(following) is not None:
            continue  # "more" / "less" in front of another value modifies it
        if kind == "open" and word == "close" and following in ("to", "by", "up"):
            continue  # "close to" is near
        lessened = i > 0 and words[i - 1] == "less" and kind == "colour"  # "less blue": blue is what goes
        if kind != "colour" and i > 0 and words[i - 1] == "less":
            value = frozenset({-next(iter(value))})  # "less bright" is the dark pole, "less big" the small one
        markers = NEGATIONS if kind in POSITION_KINDS else BEFORE_MARKERS | NEGATIONS
        marked = _marked(words, i, markers, kind) or lessened
        denied = (marked and _marked(words, i, DENIALS, kind)) or lessened
        past = _said_of_the_past(words, i)
        found.append((i, kind, value, marked, bool(following) and _is_noun_like(following), denied, past))
    values = []
    for index, kind, value, marked, prenominal, denied, past in found:
        # A value in front of a noun ("the *blue* sky turned grey") or in front of "to" ("alter its *orange*
        # colour to blue") is the state before when a result of its kind is named after it.
        later_result = any(f[1] == kind and f[0] > index and not f[3] and not f[4] for f in found)
        leads_to = any(w in ("to", "into") for w in words[index + 1 : index + 4])
        values.append(Value(kind, value, marked or ((prenominal or leads_to) and later_result), denied, past))
    return values


def _power(words: list[str], index: int):
    """``("power", pole)`` for the particle of "turn on the lamp" / "turn the lamp off", else None ("turn the
    cat on the left blue" and "switch the cup on the table" are places)."""
    word = words[index]
    if word not in ("on", "off"):
        return None
    previous = words[index - 1] if index else ""
    following = words[index + 1] if index + 1 < len(words) else ""
    at_end = not following or following in SCOPE_END
    if _lemma_set(previous) & POWER_VERBS or (
        at_end and any(_lemma_set(w) & POWER_VERBS for w in words[max(0, index - 5) : index])
    ):
        return "power", frozenset({1 if word == "on" else -1})
    return None


def _said_of_the_past(words: list[str], index: int) -> bool:
    """A value the thing had: "the dog *was* black", "*used to be* black", "*had been* black"; not a value the edit
    gave ("was blackened", "was turned black": the word is derived, or a verb stands between)."""
    if (words[index] not in COLOURS and words[index] not in POLES) or words[index].endswith("ed"):
        return False  # "was closed", "was aged": a passive verb as often as a state
    previous = words[max(0, index - 3) : index]
    return previous[-1:] in (["was"], ["were"]) or previous == ["used", "to", "be"] or previous[-2:] == ["had", "been"]


def _marked(words: list[str], index: int, markers, kind: str | None = None) -> bool:
    """Whether a marker stands up to three words before ``words[index]``, with no end of its scope between (nor
    another value of ``kind``: in "no longer blue, is red" the marker is blue's)."""
    for j in range(index - 1, max(-1, index - 4), -1):
        if words[j] in SCOPE_END:
            return False
        if kind is not None and (_value_of(words[j]) or ("",))[0] == kind:
            return False
        if words[j] in markers or _lemma_set(words[j]) & {"replace", "swap", "substitute"} & markers:
            return True
    return False


@lru_cache(maxsize=65536)
def _is_noun_like(word: str) -> bool:
    """A word that a value in front of it would describe ("blue *sky*"), not glue or another value."""
    if word in FUNCTION_WORDS or word in VALUE_TAIL or _value_of(word) is not None or word in NEGATIONS:
        return False
    return not word.isdigit()


# ----------------------------------------------------------------------------------------- compare


def disagreement(instruction: str, variation: str) -> str | None:
    """``negated``, ``reversed`` or ``attribute_swapped`` when ``variation`` says another edit than
    ``instruction``; None when nothing read here disagrees."""
    known = quoted(instruction)
    source, other = read(instruction), read(variation, known)
    if other.negated and not source.negated:
        return "negated"
    if "remove" not in source.presence and _stopped_action(tokens(instruction), tokens(variation, known)):
        return "negated"  # "make the man smile" -> "the man is no longer smiling": the edit's action stopped
    if other.stays and not other.presence and source.presence and not source.stays:
        return "negated"  # "remove the bird" -> "keep the bird": the thing stays
    if _reversed(source.presence, other.presence) or _swapped_roles(tokens(instruction), tokens(variation, known)):
        return "reversed"
    for kind in source.kinds():
        # A value the variation says the thing had is no result of the edit (read so in the variation only).
        wanted = source.after(kind)
        said = _union(v.value for v in other.values if v.kind == kind and not v.before and not v.past)
        if wanted and said and not said & wanted:
            return "attribute_swapped"
        if wanted and not said and other.denied(kind) & wanted:
            return "negated"
        had = _union(v.value for v in other.values if v.kind == kind and v.past)
        if wanted and not said and had & wanted:
            return "attribute_swapped"  # "make the dog black" -> "the dog was black": the value it had
        was, said_was = source.before(kind) - source.denied(kind), other.before(kind) - other.denied(kind)
        if was and said_was and not was & said_was:
            return "attribute_swapped"  # "change the black countertop to white" -> "... the gray countertop ..."
        if _replaced(source.mentions(kind, before=False), other.mentions(kind, before=False)):
            return "attribute_swapped"
    return None


def _replaced(source: list[frozenset], other: list[frozenset]) -> bool:
    """As many mentions of a kind, one of them changed: "a white string on the black scissors" -> "a black
    string on the black scissors", "the time of the day to night" -> "the time of the night to night"."""
    if len(source) != len(other) or not source:
        return False
    unmatched = list(other)
    for value in source:
        match = next((i for i, candidate in enumerate(unmatched) if candidate & value), None)
        if match is None:
            return True
        unmatched.pop(match)
    return False


# Frames that name what goes and what comes: "replace X with Y", "X was replaced by Y", "substitute Y for X",
# "turn / change X into Y", "X became Y"; and what is put where: "add / put X on / to Y".
SWAP_VERBS = frozenset("replace swap exchange switch trade".split())
INTO_VERBS = frozenset("change turn transform convert morph become".split())
WITH_WORDS = frozenset("with by for".split())
INTO_WORDS = frozenset("into to".split())
ONTO_WORDS = frozenset("to on onto in into".split())
AUX_WORDS = frozenset("is are was were be been being get gets got has have had".split())


def _head(phrase: list[str], last: bool = True) -> str | None:
    """The noun a phrase is about: its last content word ("the color of the *car*"), or with ``last=False`` the
    last content word of its first run ("a *cat* on the sofa")."""
    run = []
    for word in phrase:
        if _is_noun_like(word) and not _has(word, SWAP_VERBS | INTO_VERBS | ADD_VERBS | PLACE_VERBS):
            run.append(word)
        elif run and not last:
            break
    return run[-1] if run else None


def _frames(words: list[str]) -> dict[str, tuple[str, str]]:
    """``{"change": (what goes, what comes), "put": (what, where)}`` for the first frame of each kind."""
    frames = {}
    for i, word in enumerate(words):
        lemma_set = _lemma_set(word)
        before, after = words[:i], words[i + 1 :]
        if lemma_set & SWAP_VERBS and "change" not in frames:
            if word == "substitute" or "substitute" in lemma_set:
                continue
            cut = next((j for j, w in enumerate(after) if w in WITH_WORDS), None)
            passive = bool(before) and before[-1] in AUX_WORDS
            if passive and cut is not None and cut == 0:  # "the dog was replaced by a cat"
                gone, come = _head(before[:-1]), _head(after[1:], last=False)
            elif cut is not None and cut > 0:  # "replace the dog with a cat"
                gone, come = _head(after[:cut]), _head(after[cut + 1 :], last=False)
            else:
                continue
            if gone and come:
                frames["change"] = (gone, come)
        elif "substitute" in lemma_set and "change" not in frames:
            cut = next((j for j, w in enumerate(after) if w in ("for", "with")), None)
            if cut:
                first, second = _head(after[:cut]), _head(after[cut + 1 :], last=False)
                if first and second:  # "substitute a cat for the dog", "substitute the dog with a cat"
                    frames["change"] = (second, first) if after[cut] == "for" else (first, second)
        elif lemma_set & INTO_VERBS and "change" not in frames:
            cut = next((j for j, w in enumerate(after[:6]) if w in INTO_WORDS), None)
            if "become" in lemma_set:  # "the dog became a cat"
                gone, come = _head(before), _head(after, last=False)
            elif cut is None:
                continue
            elif cut == 0:  # "the dog turned into a cat", "the dog was turned into a cat"
                gone, come = _head([w for w in before if w not in AUX_WORDS]), _head(after[1:], last=False)
            elif any(w in SCOPE_END for w in after[:cut]):
                continue  # "turned scissors and the scissors to pencils": no single phrase before "to"
            else:  # "turn the dog into a cat"
                gone, come = _head(after[:cut]), _head(after[cut + 1 :], last=False)
            if gone and come:
                frames["change"] = (gone, come)
        elif lemma_set & (ADD_VERBS | PLACE_VERBS) and "put" not in frames:
            cut = next((j for j, w in enumerate(after[:5]) if w in ONTO_WORDS), None)
            passive = cut == 0 and bool(before) and before[-1] in AUX_WORDS
            what = where = None
            if cut:  # "add a hat to the dog", "put the cat on the sofa"
                what, where = _head(after[:cut]), _head(after[cut + 1 :], last=False)
            elif passive:  # "a hat was added to the dog"
                what, where = _head(before[:-1]), _head(after[1:], last=False)
            if what and where:
                frames["put"] = (what, where)
    return frames


def _swapped_roles(source: list[str], other: list[str]) -> bool:
    """The same two things in the same frame, their roles swapped: "replace the dog with a cat" -> "replace the
    cat with a dog", "add a hat to the dog" -> "add a dog to the hat"."""
    mine, theirs = _frames(source), _frames(other)
    for kind, (first, second) in mine.items():
        if kind not in theirs:
            continue
        if all(sum(bool(_lemma_set(w) & _lemma_set(x)) for w in source) > 1 for x in (first, second)):
            continue  # "change the pencils to scissors and the scissors to pencils": both ways already
        other_first, other_second = theirs[kind]
        same = _lemma_set(first) & _lemma_set(other_first) or _lemma_set(second) & _lemma_set(other_second)
        if not same and _lemma_set(first) & _lemma_set(other_second) and _lemma_set(second) & _lemma_set(other_first):
            return True
    return False


def _reversed(source: set[str], other: set[str]) -> bool:
    if source & {"add", "place"} and "remove" not in source:
        return "remove" in other and not other & {"add", "place"}
    if "remove" in source and "add" not in source:
        return "remove" not in other and bool(other & {"add", "place"})
    return False
