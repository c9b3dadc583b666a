"""Difference captions written by rule from an edit instruction: ``TemplateVariator``, offline and deterministic.

The rules are about edits (what "add X to Y" says happened); the English word forms they need (plurals,
"a" or "an", verb agreement) come from ``idc_engine.synth.morphology``.

Template rules, tried in this order on the lowercased instruction (quoted text keeps its case, a
leading "please", trailing punctuation and wrapping quotes are dropped, "in the sky, add X" becomes
"add X in the sky"); X, Y are noun phrases, P a preposition, V a value:

- shapes-change captions (``shapes_change.TEMPLATES``): a caption of one template family is varied
  through the other templates of that family with the same colours and shape.
- text: "write 'SALE' [P Y]", "add [the text|word] 'hello' [P Y]", "add the text saying hello",
  "change the text [on Y] to 'B'", "replace 'A' with 'B'" -> "the text 'SALE' was written on the sign",
  "the sign now says 'SALE'", "the text on the sign now reads 'B'", "'A' was replaced by 'B'".
- global / style: "make it so that C", "change the image so C" -> "now C" ("change X so C" -> "X was
  changed so that C"); "make it|this|the image V":
  a time or season ("night") -> "it is now night"; an adjective ("snowy") -> "the image has been made
  snowy"; "a painting" or "turn it into a painting" -> "the image now looks like a painting";
  "cartoon style" -> "the image is now in cartoon style"; "make it look like V" -> "it now looks like V".
- "make X look|appear|seem [like] V" -> "X now looks [like] V".
- wear / hold: "make|let|have X wear Y", "give X Y" -> "X now wears Y", "X is now wearing Y".
- replace: "replace|swap|substitute X with|by|for Y" -> "X was replaced by Y", "there is Y instead of X".
- colour: "change the colo(u)r of X to V" -> "X is now V", "X changed color to V", "X was painted V".
- change: "change|turn|convert|transform|set X to|into V" and "make X into|a V": V with a determiner,
  or "into" -> transform ("X has been turned into V"), else attribute ("X is now V", "X has been
  turned V", "X changed to V"); "make|turn|paint X V" splits V off the end ("make the sky purple").
- remove: "remove|delete|erase|eliminate|get rid of|take away X [from Y]", "take|get X off [of] Y"
  -> "X has been removed", "X is gone", "there is no X anymore", "someone removed X".
- put / place: "put|place|position|set|hang X P Y" -> "X is now P Y", "X was placed P Y", "there is
  now X P Y".
- add: "add|insert|include|introduce|draw X [P Y]" -> "X has been added P Y", "X was added P Y",
  "there is now X P' Y" ("to" reads "in" for a background, sky, room ..., else "on"), "Y now has X",
  "Y now wears X" (a wearable on a person or animal), "a new X appeared", "someone added X".
- move: "move|shift X [to|towards ... Y]" -> "X has been moved to Y", "X is in a different place".
- also: "cover|fill X with Y" -> "X is now covered with Y"; "open|close X" -> "X is now open"; "X should
  be V" and "have X be V" as "change"; "there should be no X [on Y]" as "remove"; "make X have Y" as
  "add"; "remove X and replace it with Y" as "replace"; "show me|recreate|render|I want this as|in|like
  V", "apply the style of V to this", "give this the look of V" as global / style.
- difference captions: "X was|has been added|removed|moved|replaced by Y", "X is gone", "X
  disappeared", "X turned|became|is now V", "there is a new X", "there is no change" are varied
  through the same families.

Articles are kept as written ("a"/"an" chosen when one is added), verbs agree with plural subjects,
"there is" forms are used only with indefinite noun phrases. No rule: the honest generic form "the
image was edited: <instruction lowercased>" (and a few like it), counted as fallbacks.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from idc_engine.data.shapes_change import COLORS, SHAPES, TEMPLATES
from idc_engine.synth.guardrails import normalize_quotes, strip_wrapping_quotes, words
from idc_engine.synth.morphology import DETERMINERS, INDEFINITE_DETERMINERS, head, indefinite_article, is_plural
from idc_engine.synth.variators import VariationResult, Variator, check_item

# ----------------------------------------------------------------------------------------- phrases

_PRONOUN_SUBJECTS = {"him": "he", "her": "she", "them": "they", "it": "it"}
_ANIMATE = frozenset(
    """man woman person boy girl child kid baby guy lady player skateboarder surfer skier snowboarder rider
    dog puppy cat kitten horse cow bear teddy giraffe elephant zebra sheep goat bird monkey lion tiger
    statue snowman people men women children dogs cats""".split()
)
_WEARABLES = frozenset(
    """hat cap beanie helmet crown tiara glasses sunglasses goggles mask scarf tie bowtie necklace collar
    jacket coat shirt sweater jersey dress costume cape wig earrings earring bracelet watch gloves boots
    shoes backpack bandana headband""".split()
)
_IN_NOUNS = frozenset(
    """background foreground sky scene image picture photo photograph room water sea ocean lake river pond pool
    field grass forest woods garden park air distance corner middle center centre frame kitchen bowl cup
    glass vase basket box hand hands mouth window yard snow sand crowd street""".split()
)
_TIME_NOUNS = frozenset(
    """night day daytime nighttime night-time winter summer spring autumn fall sunset sunrise dawn dusk evening
    morning noon midnight twilight""".split()
)
_STYLE_NOUNS = frozenset(
    """painting drawing sketch cartoon illustration print watercolor watercolour poster photograph mosaic comic
    render animation anime etching engraving woodcut caricature collage""".split()
)
_COLOURS = frozenset(
    "red orange yellow green blue purple pink brown black white gray grey gold golden silver violet beige cyan teal "
    "magenta turquoise maroon navy blonde".split()
)
_MASS_NOUNS = frozenset(
    """water snow sand grass popcorn rice food fire smoke fog rain ice milk coffee tea juice wine beer bread cheese
    meat soup salad pasta hair fur paint light text money jello gold silver wood metal concrete stone paper ink jam
    chocolate candy mud dirt lava steam blood art furniture luggage foliage traffic""".split()
)
_ADJECTIVES = _COLOURS | frozenset(
    """dark bright light old new vintage sepia monochrome grayscale greyscale colorful colourful warm cold hot
    wet dry blurry blurred sharp big bigger small smaller large larger tall taller short shorter happy sad
    clean dirty empty full open closed broken""".split()
)
_ADJECTIVE_SUFFIXES = ("y", "ish", "ful", "ous", "al", "ic", "ive", "ed", "er", "est", "less", "ing", "ent", "ant")
_MODIFIERS = frozenset(
    "very more less much slightly light dark bright pale deep completely fully all bit a really extra".split()
)
_ACTION_VERBS = frozenset(
    "smile laugh cry sit stand run jump fly dance sleep look eat drink face walk swim talk sing play wave "
    "frown hug kiss fight read write climb ride".split()
)
_GLOBAL_TARGETS = {
    "it": "the image",
    "this": "the image",
    "everything": "the image",
    "the whole thing": "the image",
    "the image": "the image",
    "this image": "the image",
    "the whole image": "the image",
    "the entire image": "the image",
    "the picture": "the picture",
    "this picture": "the picture",
    "the whole picture": "the picture",
    "the photo": "the photo",
    "this photo": "the photo",
    "the photograph": "the photo",
    "this photograph": "the photo",
    "the scene": "the scene",
    "this scene": "the scene",
    "the whole scene": "the scene",
    "the entire scene": "the scene",
}
_FINITE = frozenset("is are was were has have had".split())  # "can", "will" are nouns too often

_PREPOSITIONS = (
    "in front of|on top of|next to|close to|in the middle of|away from|on|onto|in|into|inside|at|near|beside|"
    "behind|above|below|under|underneath|beneath|over|around|outside|between|along|across|by|to"
)
_PUT_PREPOSITIONS = _PREPOSITIONS.replace("|to", "")
_GLOBAL_RE = "|".join(sorted((re.escape(g) for g in _GLOBAL_TARGETS), key=len, reverse=True))


def _first(np: str) -> str:
    return np.split(" ", 1)[0]


def _is_definite(np: str) -> bool:
    first = _first(np)
    if first in INDEFINITE_DETERMINERS:
        return False
    if first in DETERMINERS or first in _PRONOUN_SUBJECTS.values() or first.endswith("'s"):
        return True
    return first.startswith("qtext")


def _has_simple_article(np: str) -> bool:
    parts = np.split()
    return len(parts) >= 2 and parts[0] in ("the", "a", "an") and "'s" not in parts[1]


def _bare(np: str) -> str:
    return np.split(" ", 1)[1] if _has_simple_article(np) else np


def _indefinite(np: str) -> str:
    """``np`` with "a"/"an" when it is a bare singular noun phrase; unchanged otherwise."""
    if _first(np) in DETERMINERS or is_plural(np) or head(np) in _MASS_NOUNS or np.startswith("qtext"):
        return np
    return f"{indefinite_article(np)} {np}"


def _verbs(np: str) -> dict[str, str]:
    plural = is_plural(np)
    return {
        "is": "are" if plural else "is",
        "was": "were" if plural else "was",
        "has": "have" if plural else "has",
        "its": "their" if plural else "its",
    }


def _subject(np: str) -> str:
    return _PRONOUN_SUBJECTS.get(np, np)


def _noun_phrase_ok(np: str | None) -> bool:
    """A slot that holds a clause ("the climate was rainy") or a whole paragraph is no noun phrase."""
    if not np:
        return False
    parts = np.split()
    if not 0 < len(parts) <= 12:
        return False
    for i, part in enumerate(parts):
        if part in _FINITE and not any(p in ("that", "which", "who", "where") for p in parts[:i]):
            return False
    return True


def _existential_preposition(prep: str, place: str) -> str:
    """The preposition of "there is X P Y" for "add X P Y": "to the dog" reads "on", "to the sky" "in"."""
    if prep == "to":
        return "in" if head(place) in _IN_NOUNS else "on"
    return {"onto": "on", "into": "in"}.get(prep, prep)


def _looks_adjectival(value: str) -> bool:
    last = value.split()[-1]
    if value in ("black and white",) or last in _ADJECTIVES:
        return True
    if last in _TIME_NOUNS or last in _STYLE_NOUNS:
        return False
    return last.endswith(_ADJECTIVE_SUFFIXES) and len(last) > 3


def _is_comparative(value: str) -> bool:
    last = value.split()[-1]
    return (
        value.startswith(("more ", "less "))
        or (last.endswith("er") and last in _ADJECTIVES)
        or last
        in (
            "darker",
            "brighter",
            "lighter",
            "bluer",
            "redder",
            "greener",
            "warmer",
            "colder",
            "older",
            "younger",
            "happier",
            "sadder",
        )
    )


def _split_value(phrase: str) -> tuple[str, str] | None:
    """ "the sky purple" -> ("the sky", "purple"); "the dog's fur light brown" -> ("the dog's fur", "light brown")."""
    tail = ""
    instead = re.search(r" (instead of .+)$", phrase)
    if instead:
        tail, phrase = " " + instead.group(1), phrase[: instead.start()]
    parts = phrase.split()
    if len(parts) >= 3 and parts[-2] == "and":  # "black and white"
        cut = len(parts) - 3
    else:
        cut = len(parts) - 1
    while cut > 1 and parts[cut - 1] in _MODIFIERS:
        cut -= 1
    target, value = " ".join(parts[:cut]), " ".join(parts[cut:])
    if not target or not value or value.split()[0] in _ACTION_VERBS:
        return None
    return target, value + tail


# ------------------------------------------------------------------------------------------ frames


@dataclass
class _Frame:
    kind: str
    slots: dict[str, str | None]


def _render(frame: _Frame) -> list[str]:
    return _RENDERERS[frame.kind](**frame.slots)


def _render_add(x, prep=None, place=None, verb="add") -> list[str]:
    v = _verbs(x)
    out = []
    if place:
        loc = f"{prep} {place}"
        ep = _existential_preposition(prep, place)
        definite = _is_definite(x)
        if verb == "put":
            out += [f"{x} {v['is']} now {ep} {place}", f"{x} {v['has']} been put {loc}", f"{x} {v['was']} placed {loc}"]
        if verb != "put" or not definite:  # "the chair has been added on the table" reads oddly
            out += [f"{x} {v['has']} been added {loc}", f"{x} {v['was']} added {loc}"]
        if not definite:
            out += [f"there {v['is']} now {x} {ep} {place}", f"there {v['is']} {x} {ep} {place} now"]
        elif verb != "put":
            out.append(f"{x} {v['is']} now {ep} {place}")
        if prep in ("to", "on", "onto") and not definite:
            out.append(f"{place} now {_verbs(place)['has']} {x}")
            if head(x) in _WEARABLES and head(place) in _ANIMATE:
                out += _render_wear(place, x)[:2]
        out.append(f"someone {'put' if verb == 'put' else 'added'} {x} {loc}")
    else:
        out += [f"{x} {v['has']} been added", f"{x} {v['was']} added"]
        if not _is_definite(x):
            out.append(f"there {v['is']} now {x}")
        if _first(x) in ("a", "an"):
            out.append(f"a new {_bare(x)} appeared")
        out.append(f"someone added {x}")
    return out


def _render_wear(t, x) -> list[str]:
    v = _verbs(t)
    wears = "wear" if is_plural(t) else "wears"
    return [
        f"{t} now {wears} {x}",
        f"{t} {v['is']} now wearing {x}",
        f"{x} {_verbs(x)['has']} been put on {t}",
        f"{t} {v['has']} been given {x}",
    ]


def _render_cover(t, x, verb) -> list[str]:
    v, done = _verbs(t), "covered" if verb == "cover" else "filled"
    where = "on" if verb == "cover" else "in"
    return [
        f"{t} {v['is']} now {done} with {x}",
        f"{t} {v['has']} been {done} with {x}",
        f"{t} {v['was']} {done} with {x}",
        f"there {_verbs(x)['is']} now {x} {where} {t}",
    ]


def _render_open_close(x, verb) -> list[str]:
    v = _verbs(x)
    state, done = ("open", "opened") if verb == "open" else ("closed", "closed")
    return [
        f"{x} {v['is']} now {state}",
        f"{x} {v['has']} been {done}",
        f"{x} {v['was']} {done}",
        f"someone {done} {x}",
    ]


def _render_state(t, value) -> list[str]:
    """A state that "made"/"turned" do not fit: "the man is now catching the ball", "the cup is now on the table"."""
    v = _verbs(t)
    return [f"{t} {v['is']} now {value}", f"now {t} {v['is']} {value}", f"{t} {v['is']} {value} now"]


def _render_clause(t, value) -> list[str]:
    v = _verbs(t)
    return [
        f"{t} {v['was']} changed so that {value}",
        f"{t} {v['has']} been changed so that {value}",
        f"{t} {v['was']} edited so that {value}",
        f"{t} {v['has']} been edited so that {value}",
    ]


def _render_hold(t, x) -> list[str]:
    v = _verbs(t)
    holds = "hold" if is_plural(t) else "holds"
    return [f"{t} {v['is']} now holding {x}", f"{t} now {holds} {x}", f"{t} {v['has']} been given {x} to hold"]


def _render_remove(x, place=None) -> list[str]:
    v = _verbs(x)
    loc = f" from {place}" if place else ""
    out = [
        f"{x} {v['has']} been removed{loc}",
        f"{x} {v['was']} removed{loc}",
        f"{x} {v['is']} gone{loc}",
        f"{x} disappeared{loc}",
        f"someone removed {x}{loc}",
    ]
    where = f" {_existential_preposition('to', place)} {place}" if place else ""
    out.append(f"{x} {v['is']} no longer{where or ' there'}")
    if _has_simple_article(x):
        out.append(f"there {v['is']} no {_bare(x)}{where} anymore")
    return out


def _render_move(x, prep=None, dest=None) -> list[str]:
    v = _verbs(x)
    d = f" {prep} {dest}" if prep and dest else (f" {prep}" if prep else "")
    out = [f"{x} {v['has']} been moved{d}", f"{x} {v['was']} moved{d}", f"{x} moved{d}", f"someone moved {x}{d}"]
    if not d:
        out += [f"{x} {v['is']} in a different place", f"{x} changed {v['its']} position"]
    return out


def _render_attribute(t, value, colour=False) -> list[str]:
    v = _verbs(t)
    out = [f"{t} {v['is']} now {value}", f"{t} {v['has']} been made {value}", f"{t} became {value}"]
    if _is_comparative(value):
        return out + [f"{t} {v['was']} made {value}"]
    out += [f"{t} {v['has']} been turned {value}", f"{t} changed to {value}", f"{t} turned {value}"]
    if colour:
        out += [f"{t} changed color to {value}", f"{t} {v['was']} painted {value}"]
    return out


def _render_transform(t, value) -> list[str]:
    v = _verbs(t)
    return [
        f"{t} {v['is']} now {value}",
        f"{t} {v['has']} been turned into {value}",
        f"{t} {v['was']} changed into {value}",
        f"{t} became {value}",
        f"{t} {v['has']} been changed to {value}",
        f"{t} {v['was']} transformed into {value}",
    ]


def _render_replace(x, y) -> list[str]:
    vx, vy = _verbs(x), _verbs(y)
    out = [
        f"{x} {vx['was']} replaced by {y}",
        f"{x} {vx['has']} been replaced with {y}",
        f"{x} {vx['has']} been swapped for {y}",
        f"{y} replaced {x}",
        f"{y} {vy['is']} now where {x} {vx['was']}",
    ]
    if not _is_definite(y):
        out.append(f"there {vy['is']} {y} instead of {x}")
    return out


def _render_global(g, value, mode) -> list[str]:
    if mode == "clause":
        return [f"now {value}", f"{g} was changed so that {value}", f"{g} has been edited so that {value}"]
    if mode == "as_if":
        return [
            f"{g} now looks as if {value}",
            f"it now looks as if {value}",
            f"{g} has been edited to look as if {value}",
            f"{g} was changed to look as if {value}",
        ]
    if mode == "look_like":
        return [
            f"{g} now looks like {value}",
            f"{g} has been made to look like {value}",
            f"{g} was edited to look like {value}",
            f"it now looks like {value}",
        ]
    if mode == "np":
        return [
            f"{g} now looks like {value}",
            f"{g} has been turned into {value}",
            f"it is now {value}",
            f"{g} was made into {value}",
            f"{g} was changed into {value}",
        ]
    if mode == "style_in":
        return [f"{g} is now in {value}", f"{g} has been changed to {value}", f"{g} was converted to {value}"]
    if mode == "adj":
        return [f"it is now {value}", f"{g} is now {value}", f"{g} has been made {value}", f"{g} was made {value}"]
    other = "the scene" if g != "the scene" else "the image"
    return [
        f"it is now {value}",
        f"{g} was changed to {value}",
        f"{g} has been changed to {value}",
        f"{other} was changed to {value}",
    ]


def _render_look(t, value, like) -> list[str]:
    v, looks = _verbs(t), "look" if is_plural(t) else "looks"
    sep = " like " if like else " "
    return [
        f"{t} now {looks}{sep}{value}",
        f"{t} {v['has']} been made to look{sep}{value}",
        f"{t} {v['was']} edited to look{sep}{value}",
        f"{t} {looks}{sep}{value} now",
    ]


def _text_noun(kind) -> str:
    return kind if kind in ("word", "words", "phrase", "name", "letters", "message") else "text"


def _render_text_add(q, kind=None, prep=None, place=None) -> list[str]:
    noun = _text_noun(kind)
    if not place:
        return [
            f"the {noun} {q} was written",
            f"the {noun} {q} has been added",
            f"{q} is now written in the image",
            f"the image now says {q}",
            f"there is now text reading {q}",
        ]
    p = _existential_preposition(prep, place)
    out = [
        f"the {noun} {q} was written {p} {place}",
        f"the {noun} {q} has been added {p} {place}",
        f"{q} is now written {p} {place}",
        f"there is now text reading {q} {p} {place}",
    ]
    if p in ("on", "over"):
        out.append(f"{place} now says {q}")
    return out


def _render_text_change(q, kind=None, prep=None, place=None) -> list[str]:
    subject = f"the {_text_noun(kind)}" + (f" {prep} {place}" if place else "")
    out = [
        f"{subject} now says {q}",
        f"{subject} was changed to {q}",
        f"{subject} has been changed to {q}",
        f"{subject} now reads {q}",
    ]
    if place and prep == "on":
        out.append(f"{place} now says {q}")
    return out


def _render_text_replace(q1, q2) -> list[str]:
    return [
        f"{q1} was replaced by {q2}",
        f"{q1} has been replaced with {q2}",
        f"the text now says {q2} instead of {q1}",
        f"{q2} is now written instead of {q1}",
    ]


def _render_family(family, slots) -> list[str]:
    return [template.format(**slots) for template in TEMPLATES[family]]


_RENDERERS: dict[str, Callable[..., list[str]]] = {
    "add": _render_add,
    "wear": _render_wear,
    "hold": _render_hold,
    "state": _render_state,
    "clause": _render_clause,
    "cover": _render_cover,
    "open_close": _render_open_close,
    "remove": _render_remove,
    "move": _render_move,
    "attribute": _render_attribute,
    "transform": _render_transform,
    "replace": _render_replace,
    "global": _render_global,
    "look": _render_look,
    "text_add": _render_text_add,
    "text_change": _render_text_change,
    "text_replace": _render_text_replace,
    "family": _render_family,
}

# ------------------------------------------------------------------------------------------ parsing


def _shapes_family_patterns() -> list[tuple[str, re.Pattern]]:
    colour = "|".join(COLORS)
    shape = "|".join(SHAPES)
    slots = {"color": f"(?P<color>{colour})", "new_color": f"(?P<new_color>{colour})", "shape": f"(?P<shape>{shape})"}
    patterns = []
    for family, templates in TEMPLATES.items():
        for template in templates:
            regex = re.escape(template).replace(r"\{", "{").replace(r"\}", "}")
            patterns.append((family, re.compile("^" + regex.format(**slots) + "$")))
    return patterns


_SHAPES_PATTERNS = _shapes_family_patterns()


def _global_frame(g: str, value: str, into: bool = False) -> _Frame:
    if value.startswith(("look like ", "looks like ")):
        return _Frame("global", {"g": g, "value": value.split(" ", 2)[2], "mode": "look_like"})
    if _first(value) in DETERMINERS:
        return _Frame("global", {"g": g, "value": value, "mode": "np"})
    last = value.split()[-1]
    if last in ("style", "art", "aesthetic"):
        return _Frame("global", {"g": g, "value": value, "mode": "style_in"})
    if last in _STYLE_NOUNS or into:
        return _Frame("global", {"g": g, "value": _indefinite(value), "mode": "np"})
    if last in _TIME_NOUNS:
        return _Frame("global", {"g": g, "value": value, "mode": "noun"})
    return _Frame("global", {"g": g, "value": value, "mode": "adj" if _looks_adjectival(value) else "noun"})


def _style_frame(g: str, how: str, value: str) -> _Frame:
    """ "show this as|in|like V": "as if" and "like" compare, "as"/"into" make it a V, "in"/"to" set it to V."""
    if how == "as if":
        return _Frame("global", {"g": g, "value": value, "mode": "as_if"})
    if how in ("to look like", "look like", "like"):
        return _Frame("global", {"g": g, "value": value, "mode": "look_like"})
    return _global_frame(g, value, into=how in ("as", "into", "to be"))


def _change_frame(target: str, value: str, into: bool) -> _Frame | None:
    """ "change|turn|make X to|into V": global, transform (V a noun phrase) or attribute (V an adjective)."""
    g = _GLOBAL_TARGETS.get(target)
    if g:
        return _global_frame(g, value, into=into)
    if value.startswith("be "):
        value = value[3:]
    if not _noun_phrase_ok(target) or not value:
        return None
    target = _subject(target)
    if into or _first(value) in DETERMINERS:
        return _Frame("transform", {"t": target, "value": value})
    first = _first(value)
    if (first.endswith("ing") and first not in _ADJECTIVES) or re.match(rf"^(?:{_PUT_PREPOSITIONS}) ", value):
        return _Frame("state", {"t": target, "value": value})
    return _Frame("attribute", {"t": target, "value": value, "colour": value.split()[-1] in _COLOURS})


def _frame_add(m, verb="add") -> _Frame | None:
    x, prep, place = m.group("x"), m.groupdict().get("prep"), m.groupdict().get("place")
    if not _noun_phrase_ok(x) or (place is not None and not _noun_phrase_ok(place)):
        return None
    return _Frame("add", {"x": x, "prep": prep, "place": place, "verb": verb})


def _frame_make_value(m) -> _Frame | None:
    phrase = m.group("t")
    first = phrase.split(" ", 1)
    if first[0] in ("it", "this", "everything") and len(first) == 2:
        return _global_frame(_GLOBAL_TARGETS[first[0]], first[1])
    for target, g in sorted(_GLOBAL_TARGETS.items(), key=lambda item: -len(item[0])):
        if phrase.startswith(target + " "):
            return _global_frame(g, phrase[len(target) + 1 :])
    split = _split_value(phrase)
    if split is None:
        return None
    target, value = split
    if not _is_definite(target) and target not in _PRONOUN_SUBJECTS:
        return None
    return _change_frame(target, value, into=False)


def _frame_remove(m) -> _Frame | None:
    x, place = m.group("x"), m.groupdict().get("place")
    if not _noun_phrase_ok(x) or (place is not None and not _noun_phrase_ok(place)):
        return None
    return _Frame("remove", {"x": _subject(x), "place": place})


def _frame_caption_is_now(m) -> _Frame | None:
    x, rest = m.group("x"), m.group("v")
    located = re.match(rf"^(?P<prep>{_PUT_PREPOSITIONS}) (?P<place>.+)$", rest)
    if located:
        return _Frame("add", {"x": x, "prep": located.group("prep"), "place": located.group("place"), "verb": "put"})
    return _change_frame(x, rest, into=False)


_P, _PP, _Q = _PREPOSITIONS, _PUT_PREPOSITIONS, r"qtext\d+"
_LOC = rf"(?: (?P<prep>{_P}) (?P<place>.+))?$"  # an optional "P Y" at the end
_ADD_VERBS = "add|insert|include|introduce|draw|put in|attach|sprinkle|stick|scatter|install|plant"
_MOVE_PREPS = "to|towards|toward|closer to|away from|next to|behind|in front of|into|onto|up|down|left|right"
_TEXT_KIND = r"(?:(?P<kind>word|words|text|phrase|letters|name|caption|label|message|sign) )?"
_AUX = r"(?:was|were|has been|have been)"

# (rule name, pattern, frame builder); the first rule whose pattern matches and whose builder returns a frame wins.
_RULES: list[tuple[str, re.Pattern, Callable[[re.Match], _Frame | None]]] = [
    (name, re.compile(pattern), builder)
    for name, pattern, builder in [
        (
            "text_replace",
            rf"^(?:replace|swap|change) (?:the (?:word|text) )?(?P<q1>{_Q}) (?:with|by|for|to|into) "
            rf"(?:the (?:word|text) )?(?P<q2>{_Q})$",
            lambda m: _Frame("text_replace", {"q1": m.group("q1"), "q2": m.group("q2")}),
        ),
        (
            "text_change",
            rf"^(?:change|replace|update|edit|alter) the (?P<kind>text|word|words|writing|lettering|sign|name|message)"
            rf"(?: (?P<prep>on|in) (?P<place>.+?))? (?:to|with|into) (?:say |read )?(?P<q>{_Q})$",
            lambda m: _Frame("text_change", m.groupdict()),
        ),
        (
            "text_write",
            rf"^(?:write|print|spell out|spell|type|paint|draw|add|insert|include|put|place) (?:the |a )?{_TEXT_KIND}"
            rf"(?:saying |that says |reading |that reads )?(?P<q>{_Q})(?: (?P<prep>{_P}) (?P<place>.+))?$",
            lambda m: _Frame("text_add", m.groupdict()),
        ),
        (
            "text_saying",
            rf"^(?:add|write|insert) (?:the |a )?(?P<kind>text|word|words|phrase|caption|message|sign) "
            rf"(?:saying|that says|reading|that reads) (?!.*qtext)(?P<t>\w+(?: \w+){{0,3}}?){_LOC}",
            lambda m: _Frame(
                "text_add", {"q": f"'{m.group('t')}'", "kind": m.group("kind"), "prep": m["prep"], "place": m["place"]}
            ),
        ),
        (
            "clause",
            r"^(?:make it so|make it look as if|(?:change|edit|alter|modify) (?P<g>.+?) so)(?: that)? (?P<c>.+)$",
            lambda m: (
                _Frame("global", {"g": _GLOBAL_TARGETS[m["g"] or "it"], "value": m["c"], "mode": "clause"})
                if (m["g"] or "it") in _GLOBAL_TARGETS
                else _Frame("clause", {"t": _subject(m["g"]), "value": m["c"]})
                if _noun_phrase_ok(m["g"])
                else None
            ),
        ),
        (
            "look",
            r"^(?:make|have|let) (?P<t>.+?) (?:look|appear|seem)(?P<like> like| as if)? (?:to be )?(?P<v>.+)$",
            lambda m: (
                _Frame("global", {"g": _GLOBAL_TARGETS[m["t"]], "value": m["v"], "mode": "look_like"})
                if m["t"] in _GLOBAL_TARGETS and m["like"]
                else _Frame("look", {"t": _subject(m["t"]), "value": m["v"], "like": bool(m["like"])})
            ),
        ),
        (
            "style",
            rf"^(?:recreate|redo|render|redraw|draw|paint|reimagine|re-imagine|show me|show|depict|present|convert|"
            rf"turn|transform|change|make|create|i want to see|i want|i'd like|let's see|lets see|give me)"
            rf"(?: (?P<g>{_GLOBAL_RE}))? (?P<how>as if|to look like|look like|like|as|in|into|to be|to) (?P<v>.+)$",
            lambda m: _style_frame(_GLOBAL_TARGETS[m["g"] or "it"], m["how"], m["v"]),
        ),
        (
            "style_of",
            rf"^(?:apply (?P<v>the style of .+?) to (?P<g>{_GLOBAL_RE})|"
            rf"give (?P<g2>{_GLOBAL_RE}) the (?:look|appearance|style) of (?P<v2>.+))$",
            lambda m: (
                _Frame("global", {"g": _GLOBAL_TARGETS[m["g"]], "value": m["v"], "mode": "style_in"})
                if m["v"]
                else _Frame("global", {"g": _GLOBAL_TARGETS[m["g2"]], "value": m["v2"], "mode": "look_like"})
            ),
        ),
        (
            "cover",
            r"^(?P<verb>cover|fill) (?P<t>.+?) (?:with|in) (?P<x>.+)$",
            lambda m: (
                _Frame("cover", {"t": _subject(m["t"]), "x": m["x"], "verb": m["verb"]})
                if _noun_phrase_ok(m["t"]) and _noun_phrase_ok(m["x"])
                else None
            ),
        ),
        (
            "open_close",
            r"^(?P<verb>open|close|shut) (?P<x>.+?)(?: all the way)?$",
            lambda m: (
                _Frame("open_close", {"x": _subject(m["x"]), "verb": m["verb"]}) if _noun_phrase_ok(m["x"]) else None
            ),
        ),
        (
            "should_be_no",
            r"^there should (?:now )?be no (?P<x>.+?)(?: (?P<prep>on|in|at|inside|near) (?P<place>.+))?$",
            lambda m: (
                _Frame("remove", {"x": "the " + m["x"], "place": m["place"]}) if _noun_phrase_ok(m["x"]) else None
            ),
        ),
        (
            "should_be",
            r"^(?P<t>(?:the|this|that|these|those|his|her|their|its) .+?) should (?:now )?be (?P<v>.+)$",
            lambda m: _change_frame(m["t"], m["v"], into=False),
        ),
        (
            "make_have",
            r"^(?:make|let|have) (?P<t>.+?) have (?P<x>.+)$",
            lambda m: (
                _Frame("add", {"x": m["x"], "prep": "to", "place": _subject(m["t"]), "verb": "add"})
                if _noun_phrase_ok(m["t"]) and _noun_phrase_ok(m["x"])
                else None
            ),
        ),
        (
            "remove_replace",
            r"^(?:remove|delete|erase) (?P<x>.+?) and replace (?:it |them )?with (?P<y>.+)$",
            lambda m: (
                _Frame("replace", {"x": m["x"], "y": _indefinite(m["y"])})
                if _noun_phrase_ok(m["x"]) and _noun_phrase_ok(m["y"])
                else None
            ),
        ),
        (
            "have_be",
            r"^(?:have|let) (?P<t>.+?) be (?P<v>.+)$",
            lambda m: _change_frame(m["t"], m["v"], into=False),
        ),
        (
            "wear",
            r"^(?:make|let|have|get) (?P<t>.+?) (?:wear|put on|dress in) (?P<x>.+)$",
            lambda m: _Frame("wear", {"t": _subject(m["t"]), "x": m["x"]}),
        ),
        (
            "hold",
            r"^(?:make|let|have|get) (?P<t>.+?) (?:hold|carry) (?P<x>.+)$",
            lambda m: _Frame("hold", {"t": _subject(m["t"]), "x": m["x"]}),
        ),
        (
            "give",
            r"^give (?P<t>(?:the|this|that|his|her|their) .+?) (?P<x>(?:a|an|some) .+)$",
            lambda m: _Frame("add", {"x": m["x"], "prep": "to", "place": m["t"], "verb": "add"}),
        ),
        (
            "replace",
            r"^(?:replace|swap|substitute|exchange|change) (?P<x>.+?) (?:with|by|for) (?P<y>.+)$",
            lambda m: (
                _Frame("replace", {"x": m["x"], "y": _indefinite(m["y"])})
                if _noun_phrase_ok(m["x"]) and _noun_phrase_ok(m["y"])
                else None
            ),
        ),
        (
            "colour",
            r"^(?:change|turn|make|set|paint|color|colour|dye) the colou?r of (?P<t>.+?) (?:to|into) (?P<v>.+)$",
            lambda m: _Frame("attribute", {"t": m["t"], "value": m["v"], "colour": True}),
        ),
        (
            "change_to",
            r"^(?:change|turn|convert|transform|switch|update|set|alter|modify) (?P<t>.+?) "
            r"(?P<into>to|into) (?P<v>.+)$",
            lambda m: _change_frame(m["t"], m["v"], into=m["into"] == "into"),
        ),
        (
            "make_into",
            r"^(?:make|turn) (?P<t>.+?) into (?P<v>.+)$",
            lambda m: _change_frame(m["t"], m["v"], into=True),
        ),
        (
            "make_np",
            r"^make (?P<t>(?:the|this|that|his|her|their|its) .+?) (?P<v>(?:a|an) .+)$",
            lambda m: _change_frame(m["t"], m["v"], into=False),
        ),
        ("paint_add", rf"^paint (?P<x>(?:a|an|some) .+?)(?: (?P<prep>{_P}) (?P<place>.+))?$", _frame_add),
        ("make_value", r"^(?:make|turn|paint|color|colour|dye) (?P<t>.+)$", _frame_make_value),
        (
            "remove",
            r"^(?:remove|delete|erase|eliminate|get rid of|take away|take out) (?P<x>.+?)"
            r"(?: (?:from|off of|off|out of) (?P<place>.+))?$",
            _frame_remove,
        ),
        ("take_off", r"^(?:take|get|pull) (?P<x>.+?) (?:off of|off|out of|away from) (?P<place>.+)$", _frame_remove),
        (
            "put",
            rf"^(?:put|place|position|set|lay|hang|stand|sit|seat|park|mount) (?P<x>.+?) "
            rf"(?P<prep>{_PP}) (?P<place>.+)$",
            lambda m: _frame_add(m, verb="put"),
        ),
        (
            "add",
            rf"^(?:{_ADD_VERBS})(?: in)? (?P<x>.+?){_LOC}",
            _frame_add,
        ),
        (
            "move",
            rf"^(?:move|shift|slide|drag|relocate) (?P<x>.+?)(?: (?P<prep>{_MOVE_PREPS})(?: (?P<dest>.+))?)?$",
            lambda m: (
                _Frame("move", {"x": _subject(m["x"]), "prep": m["prep"], "dest": m["dest"]})
                if _noun_phrase_ok(m["x"])
                else None
            ),
        ),
        # Difference captions: an instruction that already describes the change is varied the same way.
        (
            "caption_added",
            rf"^(?:(?P<x>.+?) {_AUX} added|someone added (?P<x2>.+?))(?: (?P<prep>{_P}) (?P<place>.+))?$",
            lambda m: _Frame("add", {"x": m["x"] or m["x2"], "prep": m["prep"], "place": m["place"], "verb": "add"}),
        ),
        (
            "caption_appeared",
            rf"^(?P<x>.+?) (?:has |have )?appeared(?: (?P<prep>{_P}) (?P<place>.+))?$",
            lambda m: _Frame(
                "add", {"x": m["x"].replace(" new ", " ", 1), "prep": m["prep"], "place": m["place"], "verb": "add"}
            ),
        ),
        (
            "caption_there_is",
            rf"^there (?:is|are) (?:now )?(?P<x>(?:a|an|some) (?:new )?.+?)"
            rf"(?: (?P<prep>{_P}) (?P<place>.+?))?(?: now)?$",
            lambda m: _Frame(
                "add", {"x": m["x"].replace(" new ", " ", 1), "prep": m["prep"], "place": m["place"], "verb": "add"}
            ),
        ),
        (
            "caption_removed",
            rf"^(?:(?P<x>.+?) (?:{_AUX} removed|(?:is|are) gone|disappeared|(?:is|are) no longer there)|"
            rf"someone removed (?P<x2>.+?))(?: from (?P<place>.+))?$",
            lambda m: _Frame("remove", {"x": m["x"] or m["x2"], "place": m["place"]}),
        ),
        (
            "caption_replaced",
            rf"^(?P<x>.+?) {_AUX} replaced (?:by|with) (?P<y>.+)$",
            lambda m: _Frame("replace", {"x": m["x"], "y": m["y"]}),
        ),
        (
            "caption_moved",
            rf"^(?P<x>.+?) (?:{_AUX} )?moved(?: (?P<prep>{_MOVE_PREPS})(?: (?P<dest>.+))?)?$",
            lambda m: _Frame("move", {"x": m["x"], "prep": m["prep"], "dest": m["dest"]}),
        ),
        (
            "caption_changed",
            rf"^(?P<x>.+?) (?:turned|became|changed to|(?:{_AUX}) (?:turned|changed to|made|painted)) (?P<v>.+)$",
            lambda m: _change_frame(m["x"], m["v"], into=False),
        ),
        (
            "caption_wears",
            r"^(?P<t>.+?) (?:now wears?|(?:is|are) now wearing) (?P<x>.+)$",
            lambda m: _Frame("wear", {"t": m["t"], "x": m["x"]}),
        ),
        (
            "caption_has",
            r"^(?P<t>.+?) now (?:has|have) (?P<x>(?:a|an|some) .+)$",
            lambda m: _Frame("add", {"x": m["x"], "prep": "to", "place": m["t"], "verb": "add"}),
        ),
        ("caption_is_now", r"^(?P<x>.+?) (?:is|are) now (?P<v>.+)$", _frame_caption_is_now),
        (
            "caption_none",
            r"^(?:there is no (?:change|difference)|nothing (?:has )?changed|no change(?: was made)?|"
            r"the (?:two )?images are (?:the same|identical)|the scene is unchanged)$",
            lambda m: _Frame("family", {"family": "none", "slots": {}}),
        ),
    ]
]

_LEADING_LOCATION = re.compile(
    r"^(?P<prep>in|on|at|inside|behind|above|below|next to|beside|on top of|in front of|near|under) "
    r"(?:(?P<place>[^,]+), (?P<rest>.+)|(?P<place2>.+?) (?P<rest2>(?:add|put|place|insert|draw|write) .+))$"
)
_POLITE = re.compile(r"^(?:please|can you|could you|kindly|now|and|then)\s+|\s+(?:please|now)$")


def prepare(instruction: str) -> tuple[str, list[str]]:
    """Lowercase ``instruction`` (quoted text aside, replaced by ``qtextN`` placeholders) and tidy it."""
    text = strip_wrapping_quotes(normalize_quotes(instruction)).strip()
    quotes: list[str] = []

    def hold(match: re.Match) -> str:
        quotes.append(match.group(1) if match.group(1) is not None else match.group(2))
        return f" qtext{len(quotes) - 1} "

    text = re.sub(r"\"([^\"]+)\"|(?<![\w])'([^']+)'(?![\w])", hold, text)
    text = re.sub(r"\s+", " ", text.lower()).strip()
    text = re.sub(r"[\s.!?;,:]+$", "", text)
    previous = None
    while previous != text:
        previous, text = text, _POLITE.sub("", text).strip()
    located = _LEADING_LOCATION.match(text)
    if located:
        rest, place = located["rest"] or located["rest2"], located["place"] or located["place2"]
        text = f"{rest} {located['prep']} {place}"
    return text, quotes


def _restore(text: str, quotes: list[str]) -> str:
    return re.sub(r"qtext(\d+)", lambda m: f"'{quotes[int(m.group(1))]}'", text)


def _normal(text: str) -> str:
    return " ".join(w.lower() for w in words(text))


def match_rule(instruction: str) -> tuple[str | None, list[str]]:
    """(name of the rule that matched or None, its distinct rewrites of ``instruction``, in rule order)."""
    text, quotes = prepare(instruction)
    frame, rule = None, None
    for family, pattern in _SHAPES_PATTERNS:
        m = pattern.match(text)
        if m:
            frame, rule = _Frame("family", {"family": family, "slots": m.groupdict()}), f"shapes_{family}"
            break
    if frame is None:
        for name, pattern, build in _RULES:
            m = pattern.match(text)
            if m and (candidate := build(m)) is not None:
                frame, rule = candidate, name
                break
    if frame is None:
        return None, []
    seen = {_normal(instruction)}
    rewrites = []
    for rewrite in _render(frame):
        rewrite = _restore(re.sub(r"\s+", " ", rewrite).strip(), quotes)
        if _normal(rewrite) not in seen:
            seen.add(_normal(rewrite))
            rewrites.append(rewrite)
    return rule, rewrites


_GENERIC = (
    "the image was edited: {i}",
    "the image has been edited: {i}",
    "the picture was changed: {i}",
    "this edit was made: {i}",
    "the scene was edited: {i}",
    "the photo has been changed: {i}",
)


def generic_forms(instruction: str) -> list[str]:
    """The honest forms used when no rule matches: the instruction itself, lowercased, after a caption stem."""
    text, quotes = prepare(instruction)
    return [form.format(i=_restore(text, quotes)) for form in _GENERIC]


class TemplateVariator(Variator):
    """Rule-based rewrites of an instruction into difference captions (see the module docstring)."""

    name = "template"

    def settings(self) -> dict:
        return {"variator": self.name}

    def fill(self, instruction: str, n: int, seed: int, exclude: Sequence[str] = ()) -> tuple[list[str], int]:
        """Up to ``n`` rewrites not in ``exclude``: rule rewrites first (seeded choice), then generic forms.
        Returns the rewrites and how many of them are generic."""
        rng = random.Random(f"template:{seed}:{instruction}")
        taken = {_normal(e) for e in exclude}
        _, rewrites = match_rule(instruction)
        rewrites = [r for r in rewrites if _normal(r) not in taken]
        chosen = rng.sample(rewrites, min(n, len(rewrites)))
        taken |= {_normal(c) for c in chosen}
        generic = [g for g in generic_forms(instruction) if _normal(g) not in taken][: n - len(chosen)]
        return chosen + generic, len(generic)

    def vary(self, instruction: str, k: int, seed: int) -> VariationResult:
        """``k`` rewrites (fewer only when the rule and the generic forms run out of distinct ones)."""
        instruction, k, seed = check_item(instruction, k, seed)
        variations, generic = self.fill(instruction, k, seed)
        return VariationResult(instruction, variations, {}, generic, self.settings(), k - len(variations))
