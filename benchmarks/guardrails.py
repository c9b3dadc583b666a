"""How well do the Syned guardrails separate faithful rewrites from turned ones, on real text?

    python benchmarks/guardrails.py [--out benchmarks/results/guardrails.json]

Reads only annotation files (``../shared/fixtures/idc_formats/syned_blip2idc``, or ``--fixtures``), about
a minute on 2 cores. Three measures:

1. **Rejections of the released references.** BLIP2IDC's release keeps every line Llama-2-7b-chat wrote for
   each Emu Edit test instruction (``gt_augmented_test_clean.json``); ``check_variation`` judges each line
   against its instruction. The thresholds were chosen on the *even* idx (``dev``); the figures that count
   are those of the *odd* idx (``held_out``), which were not looked at while tuning. Reported by reason,
   with examples, so that a reader can judge whether a rejected line was worth keeping: many are LLM junk
   (refusals, role-play, word counts, prompts about other things), which the authors kept too.
2. **Catch rate on turned rewrites.** ``turn()`` below makes reversed (added <-> removed), negated and
   attribute-swapped (colour, size, side, time ...) versions of the release's instructions by plain string
   rules of its own: it shares no code or word list with the guardrails (``idc_engine.synth.meaning``), so
   the benchmark does not mirror them. Held-out instructions only (odd test idx); ``dev`` shows the same for
   the instructions that tuning could have seen (even test idx and the train file).
3. **The supplementary's three failure listings** (refusal, role-play, invented place), as printed in the
   paper and as released: each must still be rejected.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import time
from collections import Counter, defaultdict
from datetime import date
from functools import lru_cache
from pathlib import Path

from idc_engine.synth.guardrails import MEANING_REASONS, REASONS, GuardrailConfig, check_variation

DEFAULT_FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "idc_formats"
JUNK_REASONS = ("empty", "refusal", "role_play")

# ------------------------------------------------------------------------------------ turned rewrites
# Word lists of this benchmark's own (not the guardrails'): what a careless rewrite would flip.
_ADD_LEADS = ("add", "insert", "include", "put", "place", "draw", "attach")
_REMOVE_LEADS = ("get rid of", "take away", "take out", "remove", "delete", "erase", "eliminate")
_TO_REMOVED = (
    "Remove {o}",
    "{O} was removed",
    "Delete {o}",
    "{O} has disappeared",
    "Take away {o}",
    "there is no longer {o}",
    "Erase {o}",
    "{O} is gone",
)
_TO_ADDED = (
    "Add {o}",
    "{O} was added",
    "Insert {o}",
    "{O} appeared",
    "Put {o} back",
    "there is now {o}",
    "Include {o}",
    "{O} has been added",
)
_NEGATIONS = (
    "Do not {i}",
    "Don't {i}",
    "Never {i}",
    "Please do not {i}",
    "Make sure not to {i}",
    "Leave the image unchanged and do not {i}",
)
_SWAP_COLOURS = ("red", "blue", "green", "yellow", "purple", "orange", "pink", "black", "white", "brown", "gray")
_COLOUR_WORDS = {*_SWAP_COLOURS, "grey", "gold", "golden", "silver"}
_OPPOSITES = {
    "big": "small",
    "small": "big",
    "bigger": "smaller",
    "smaller": "bigger",
    "large": "small",
    "larger": "smaller",
    "taller": "shorter",
    "day": "night",
    "night": "day",
    "daytime": "nighttime",
    "nighttime": "daytime",
    "winter": "summer",
    "summer": "winter",
    "left": "right",
    "right": "left",
    "top": "bottom",
    "bottom": "top",
    "dark": "bright",
    "darker": "brighter",
    "brighter": "darker",
    "open": "closed",
    "closed": "open",
    "full": "empty",
    "empty": "full",
    "wet": "dry",
    "dry": "wet",
    "old": "young",
    "young": "old",
    "happy": "sad",
    "sad": "happy",
}


def _clean(instruction: str) -> str:
    return re.sub(r"[\s.!?]+$", "", " ".join(instruction.split()))


def turn(instruction: str, index: int) -> list[tuple[str, str, str]]:
    """Turned rewrites of ``instruction``: ``(kind, template, text)``; ``index`` rotates the templates."""
    text = _clean(instruction)
    lower = text[:1].lower() + text[1:]
    out = []
    head = lower.lower()
    for leads, templates, kind in ((_ADD_LEADS, _TO_REMOVED, "reversed"), (_REMOVE_LEADS, _TO_ADDED, "reversed")):
        lead = next((lead for lead in leads if head.startswith(lead + " ")), None)
        if lead:
            obj = re.sub(r" (?:from|in|off|out of) (?:the|this) (?:image|picture|photo)$", "", lower[len(lead) + 1 :])
            template = templates[index % len(templates)]
            out.append((kind, template, template.format(o=obj, O=obj[:1].upper() + obj[1:])))
            break
    template = _NEGATIONS[index % len(_NEGATIONS)]
    out.append(("negated", template, template.format(i=lower)))
    swapped = _swap(text, index)
    if swapped:
        out.append(("attribute_swapped", swapped[0], swapped[1]))
    return out


def _swap(text: str, index: int) -> tuple[str, str] | None:
    """The first colour, size, side, time, season or state word replaced by another / its opposite."""
    for match in re.finditer(r"[A-Za-z]+", text):
        word = match.group(0).lower()
        if word in _COLOUR_WORDS:
            choices = [c for c in _SWAP_COLOURS if c not in (word, "gray" if word == "grey" else word)]
            new, rule = choices[index % len(choices)], "colour"
        elif word in _OPPOSITES:
            new, rule = _OPPOSITES[word], "opposite"
        else:
            continue
        if match.group(0)[0].isupper():
            new = new.capitalize()
        return rule, text[: match.start()] + new + text[match.end() :]
    return None


# ------------------------------------------------------------------------------------------ release


def read_release(folder: Path):
    instructions = {}
    for name in ("test", "train"):
        for line in (folder / f"instructions_with_idx_{name}_split.txt").read_text(encoding="utf-8").splitlines():
            idx, text = line.split(" <INSTRUCT> ", 1)
            instructions[(name, int(idx))] = text.strip()
    references = json.loads((folder / "gt_augmented_test_clean.json").read_text(encoding="utf-8"))
    return instructions, {int(k): v for k, v in references.items()}


# The guardrails' tests and code quote a few odd-idx instructions and lines ("surf board", "at night instead of
# day", ...): rules were written from them, so they are no held-out text and are left out of that half.
RULE_SOURCES = ("tests/synth/test_guardrails.py", "idc_engine/synth/meaning.py", "idc_engine/synth/guardrails.py")


def _normal(text: str) -> str:
    return " ".join(text.split()).lower().strip(" .\"'")


@lru_cache(maxsize=1)
def _rule_text() -> str:
    root = Path(__file__).resolve().parents[1]
    return " ".join(" ".join((root / p).read_text(encoding="utf-8").split()).lower() for p in RULE_SOURCES)


def seen_while_tuning(instructions, references) -> set[int]:
    """Test idx whose instruction or a line of it (20 characters or more) the guardrails' tests or code quote."""
    quoted = _rule_text()
    return {
        idx
        for idx, lines in references.items()
        if any(len(t) >= 20 and _normal(t) in quoted for t in [instructions[("test", idx)], *lines])
    }


def judge_release(instructions, references, part: str, config: GuardrailConfig) -> dict:
    reasons, examples, none_left, with_four = Counter(), defaultdict(list), 0, 0
    lines = 0
    seen = seen_while_tuning(instructions, references) if part == "held_out" else set()
    for idx, variations in sorted(references.items()):
        if (idx % 2 == 0) != (part == "dev") or idx in seen:
            continue
        instruction = instructions[("test", idx)]
        kept = 0
        for variation in variations:
            reason = check_variation(instruction, variation, config)
            reasons[reason or "kept"] += 1
            lines += 1
            kept += reason is None
            if reason and len(examples[reason]) < 12:
                examples[reason].append({"idx": idx, "instruction": instruction, "variation": variation})
        if len(variations) == 4:
            with_four += 1
            none_left += kept == 0
    rejected = lines - reasons["kept"]
    junk = sum(reasons[r] for r in JUNK_REASONS)
    content = sum(reasons[r] for r in REASONS if r not in JUNK_REASONS and r != "duplicate")
    return {
        "left_out_seen_while_tuning": sorted(i for i in seen if i % 2 == 1),
        "lines": lines,
        "rejected": rejected,
        "rejected_share": round(rejected / max(lines, 1), 4),
        "rejected_share_excluding_duplicates": round((rejected - reasons["duplicate"]) / max(lines, 1), 4),
        "rejected_llm_junk_share": round(junk / max(lines, 1), 4),
        "rejected_content_or_meaning_share": round(content / max(lines, 1), 4),
        # What the target (<= 10 %) is about. Junk is what the paper's own failure listings show (it must
        # be rejected); a copy of the instruction, or of a line already kept, adds no reference. So at most the
        # content and meaning rejections are false ones (many of them are the invented detail of listing 3),
        # and at most those plus the copies if copies were counted as lost references.
        "false_rejections_at_most": round(content / max(lines, 1), 4),
        "false_rejections_at_most_counting_copies": round((rejected - junk) / max(lines, 1), 4),
        "by_reason": {r: reasons[r] for r in REASONS if reasons[r]},
        "instructions_with_4_lines": with_four,
        "instructions_with_4_lines_none_kept": none_left,
        "examples": {r: examples[r] for r in REASONS if examples[r]},
    }


def judge_turned(instructions, part: str, config: GuardrailConfig, references=None) -> dict:
    if part == "held_out":
        seen = seen_while_tuning(instructions, references or {})  # the idx the rules were written from
        chosen = [
            text
            for (name, idx), text in sorted(instructions.items())
            if name == "test" and idx % 2 == 1 and idx not in seen
        ]
    else:
        chosen = [text for (name, idx), text in sorted(instructions.items()) if name == "train" or idx % 2 == 0]
    by_kind, by_template, misses, right_kind = defaultdict(Counter), defaultdict(Counter), defaultdict(list), Counter()
    for index, instruction in enumerate(chosen):
        for kind, template, text in turn(instruction, index):
            reason = check_variation(instruction, text, config)
            caught = reason is not None
            by_kind[kind][caught] += 1
            by_template[f"{kind}: {template}"][caught] += 1
            right_kind[kind] += reason == kind
            if not caught and len(misses[kind]) < 15:
                misses[kind].append({"instruction": instruction, "variation": text})
    total = sum(sum(c.values()) for c in by_kind.values())
    caught = sum(c[True] for c in by_kind.values())
    return {
        "instructions": len(chosen),
        "variations": total,
        "caught": caught,
        "catch_rate": round(caught / total, 4),
        "by_kind": {
            k: {
                "variations": sum(c.values()),
                "catch_rate": round(c[True] / sum(c.values()), 4),
                "rejected_as_this_kind": round(right_kind[k] / sum(c.values()), 4),
            }
            for k, c in sorted(by_kind.items())
        },
        "by_template": {t: round(c[True] / sum(c.values()), 4) for t, c in sorted(by_template.items())},
        "missed_examples": dict(misses),
    }


def judge_supplementary(config: GuardrailConfig) -> dict:
    """The paper's three failure listings (as printed, and as released under keys 677, 1398 and 202)."""
    from tests.synth.test_guardrails import (
        INVENTED,
        INVENTED_INSTRUCTION,
        INVENTED_PAPER,
        REFUSAL,
        REFUSAL_INSTRUCTION,
        ROLE_PLAY,
        ROLE_PLAY_INSTRUCTION,
        ROLE_PLAY_PAPER,
    )

    listings = [
        (REFUSAL_INSTRUCTION, REFUSAL),
        (ROLE_PLAY_INSTRUCTION, ROLE_PLAY),
        (ROLE_PLAY_INSTRUCTION, ROLE_PLAY_PAPER),
        (INVENTED_INSTRUCTION, INVENTED),
        (INVENTED_INSTRUCTION, INVENTED_PAPER),
    ]
    return {variation[:60]: check_variation(instruction, variation, config) for instruction, variation in listings}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fixtures", default=str(DEFAULT_FIXTURES), help="folder holding syned_blip2idc/")
    parser.add_argument("--out", default="benchmarks/results/guardrails.json")
    args = parser.parse_args(argv)
    folder = Path(args.fixtures) / "syned_blip2idc"
    if not folder.is_dir():
        raise SystemExit(f"--fixtures {args.fixtures}: no syned_blip2idc/ folder there")
    started = time.perf_counter()
    config = GuardrailConfig()
    instructions, references = read_release(folder)
    results = {
        "date": date.today().isoformat(),
        "command": "python benchmarks/guardrails.py",
        "python": platform.python_version(),
        "guardrails": config.to_dict(),
        "split": "dev = even test idx (thresholds chosen there); held_out = odd test idx (reported), less the "
        "idx whose instruction or lines the guardrails' tests or code quote (left_out_seen_while_tuning)",
        "release": {part: judge_release(instructions, references, part, config) for part in ("held_out", "dev")},
        "turned": {part: judge_turned(instructions, part, config, references) for part in ("held_out", "dev")},
        "supplementary": judge_supplementary(config),
    }
    results["seconds"] = round(time.perf_counter() - started, 1)
    held, turned = results["release"]["held_out"], results["turned"]["held_out"]
    print(f"released Llama-2 references, held-out half ({held['lines']} lines):")
    print(f"  rejected {held['rejected_share']:.1%}: LLM junk {held['rejected_llm_junk_share']:.1%}, ", end="")
    print(f"content or meaning {held['rejected_content_or_meaning_share']:.1%}, ", end="")
    print(f"duplicates {held['by_reason'].get('duplicate', 0) / held['lines']:.1%}")
    print(f"  false rejections at most {held['false_rejections_at_most']:.1%} (junk and copies aside), ", end="")
    print(f"{held['false_rejections_at_most_counting_copies']:.1%} counting copies of the instruction as lost")
    print(f"  by reason: {held['by_reason']}")
    print(f"  instructions with 4 lines and none kept: {held['instructions_with_4_lines_none_kept']}", end="")
    print(f" of {held['instructions_with_4_lines']}")
    print(f"turned rewrites of held-out instructions: {turned['variations']} made, caught {turned['catch_rate']:.1%}")
    for kind, figures in turned["by_kind"].items():
        print(f"  {kind:<18} {figures['variations']:>5}  caught {figures['catch_rate']:.1%}")
    print(f"supplementary listings: {results['supplementary']}")
    missed = [k for k, v in results["supplementary"].items() if v is None]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"-> {out} ({results['seconds']} s)")
    assert set(MEANING_REASONS) <= set(REASONS)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
