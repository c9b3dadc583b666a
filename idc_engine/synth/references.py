"""The paper's test references: each test pair scored against its instruction and 4 LLM variations of it.

BLIP2IDC evaluates on Emu Edit with 5 references per test pair: the edit instruction and 4 variations of it
that Llama-2-7b-chat wrote, each a neutral, concise editing instruction with the same meaning (paper §4.3
and the authors' released script; their file is ``gt_augmented_test_clean.json``). ``add_instruction_references``
does that for any manifest:

- the instruction of a pair is ``metadata["instruction"]``, else its first caption;
- one prompt per pair asks for all its ``variations`` (``LLMVariator`` in ``instructions`` mode), and the
  prompts of ``batch_size`` pairs go through the model together: one generate call per batch;
- every line passes the guardrails (``idc_engine.synth.guardrails``): refusals, role-play, invented detail,
  turned meaning (negated, reversed, attribute-swapped), lost content and duplicates are rejected, retried up
  to ``max_attempts`` times, and counted by reason; nothing is filled in by rule, so a pair short of
  variations keeps fewer references, and the shortfall is counted too;
- the pair's captions become ``[instruction, *variations]``; what it had before is kept in
  ``metadata["reference_variations"]["previous_captions"]``, with the variator's settings and the seed.

Each pair's seed comes from the run's seed and the pair id alone, so a pair gets the same references
whatever else is in the manifest. Pairs of other splits pass through unchanged.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace

from idc_engine.data.pair import SPLITS, IDCPair

KEY = "reference_variations"


@dataclass
class ReferenceConfig:
    """Settings of the test-reference protocol; the only home of its defaults."""

    variations: int = field(default=4, metadata={"help": "LLM variations per instruction (the paper: 4)"})
    split: str = field(default="test", metadata={"help": "split whose pairs get the references"})
    seed: int = field(default=0, metadata={"help": "seeds the sampling; the same seed, the same references"})

    def __post_init__(self):
        if not isinstance(self.variations, int) or isinstance(self.variations, bool) or self.variations < 1:
            raise ValueError(f"variations must be a positive integer, got {self.variations!r}")
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")


@dataclass
class ReferenceReport:
    pairs: int = 0  # pairs of the split
    without_instruction: list[str] = field(default_factory=list)  # ids of pairs with neither instruction nor caption
    asked: int = 0  # variations asked for
    kept: int = 0  # variations that passed the guardrails
    short: int = 0  # pairs with fewer than the variations asked for
    rejected: Counter = field(default_factory=Counter)  # guardrail reason -> lines
    generate_calls: int = 0  # model calls, each for up to batch_size pairs
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "rejected": dict(self.rejected)}


def instruction_of(pair: IDCPair) -> str | None:
    instruction = (pair.metadata or {}).get("instruction")
    if isinstance(instruction, str) and instruction.strip():
        return instruction.strip()
    return pair.captions[0].strip() if pair.captions and pair.captions[0].strip() else None


def _previous_captions(pair: IDCPair) -> list[str]:
    """The captions the pair had before any run of the protocol: a re-run keeps the first run's record of
    them, not the references that run wrote."""
    earlier = ((pair.metadata or {}).get(KEY) or {}).get("previous_captions")
    return list(earlier) if isinstance(earlier, list) else list(pair.captions)


def pair_seed(seed: int, pair_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"references:{seed}:{pair_id}".encode()).digest()[:4], "big")


def add_instruction_references(
    pairs: list[IDCPair], variator, config: ReferenceConfig | None = None, progress=None
) -> tuple[list[IDCPair], ReferenceReport]:
    """``pairs`` with the pairs of ``config.split`` given ``[instruction, *variations]`` as captions (see the
    module docstring), and the report. ``variator`` is an ``LLMVariator`` in ``instructions`` mode; its
    ``vary_batch`` is called once per batch of pairs. ``progress(done, total)`` after each batch."""
    config = config or ReferenceConfig()
    mode = getattr(getattr(variator, "config", None), "mode", None)
    if mode != "instructions":
        raise ValueError(
            "variator: the test references are imperative variations of the instruction, written by "
            "LLMVariator(LLMVariatorConfig(mode='instructions', ...)); got "
            f"{type(variator).__name__}" + (f" in {mode!r} mode" if mode else "")
        )
    started = time.perf_counter()
    report = ReferenceReport()
    chosen = [i for i, p in enumerate(pairs) if p.split == config.split]
    report.pairs = len(chosen)
    todo = []
    for index in chosen:
        instruction = instruction_of(pairs[index])
        if instruction is None:
            report.without_instruction.append(pairs[index].id)
        else:
            todo.append((index, instruction))
    batch = max(1, getattr(getattr(variator, "config", None), "batch_size", len(todo) or 1))
    calls_before = getattr(variator, "generate_calls", 0)
    out = list(pairs)
    for start in range(0, len(todo), batch):
        chunk = todo[start : start + batch]
        items = [(instruction, config.variations, pair_seed(config.seed, pairs[i].id)) for i, instruction in chunk]
        for (index, instruction), result in zip(chunk, variator.vary_batch(items), strict=True):
            pair = pairs[index]
            report.asked += config.variations
            report.kept += len(result.variations)
            report.short += len(result.variations) < config.variations
            report.rejected.update(result.rejected)
            record = {
                "instruction": instruction,
                "variations": list(result.variations),
                "rejected": dict(result.rejected),
                "missing": config.variations - len(result.variations),
                "seed": pair_seed(config.seed, pair.id),
                "variator": result.settings,
                "previous_captions": _previous_captions(pair),
            }
            metadata = {**(pair.metadata or {}), KEY: record}
            out[index] = replace(pair, captions=[instruction, *result.variations], metadata=metadata)
        if progress is not None:
            progress(min(start + batch, len(todo)), len(todo))
    report.generate_calls = getattr(variator, "generate_calls", 0) - calls_before
    report.seconds = round(time.perf_counter() - started, 2)
    return out, report
