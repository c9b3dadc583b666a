"""Variators turn an edit instruction into several texts that say the same edit: the extra references of Syned.

This module holds what every variator shares: the ``Variator`` interface, its ``VariationResult`` and the
check of one item. The variators themselves:

- ``idc_engine.synth.templates.TemplateVariator`` (offline, the default): difference captions written by rule.
- ``idc_engine.synth.llm_variator.LLMVariator``: a local causal LM (the paper: Llama-2-7b-chat), every line
  through the guardrails (``idc_engine.synth.guardrails``), in one of two modes: ``captions`` (difference
  captions for training variants, filled up by the templates) or ``instructions`` (imperative variations of
  the instruction: the paper's test references, ``idc_engine.synth.references``).

Both are deterministic: the same instruction, k and seed give the same variations.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class VariationResult:
    """The variations of one instruction, and what it took to get them."""

    instruction: str
    variations: list[str]  # k of them when possible, each a difference caption
    rejected: dict[str, int] = field(default_factory=dict)  # guardrail reason -> count
    fallbacks: int = 0  # how many variations came from a fallback (generic form or templates)
    settings: dict = field(default_factory=dict)  # the variator's name and settings, JSON-serialisable
    missing: int = 0  # how many of the k asked for could not be written (no fallback, or distinct forms ran out)


class Variator(ABC):
    """Writes ``k`` difference captions for an edit instruction; same inputs and seed, same output."""

    name: str = "variator"

    @abstractmethod
    def vary(self, instruction: str, k: int, seed: int) -> VariationResult: ...

    def vary_batch(self, items: Sequence[tuple[str, int, int]]) -> list[VariationResult]:
        """``vary`` over ``(instruction, k, seed)`` items; variators that batch override this."""
        return [self.vary(instruction, k, seed) for instruction, k, seed in items]


def check_item(instruction, k, seed) -> tuple[str, int, int]:
    """Validate one ``(instruction, k, seed)``; errors name the argument and the bad value."""
    if not isinstance(instruction, str) or not instruction.strip():
        raise ValueError(f"instruction must be a non-empty string, got {instruction!r}")
    if not isinstance(k, int) or isinstance(k, bool) or k < 0:
        raise ValueError(f"k must be a non-negative integer, got {k!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    return instruction, k, seed
