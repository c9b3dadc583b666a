"""The paper's test references in a FiftyOne dataset: each test pair's ``captions`` become its instruction and
4 LLM variations of it (``idc_engine.synth.references``), so that evaluation scores against 5 references as
BLIP2IDC scores Emu Edit.

Both slices of a pair get the new ``captions``, and ``idc_metadata["reference_variations"]`` records the
variations, the guardrail rejections, the settings, the seed and the captions the pair had before (nothing
already stored is lost). The same seed writes the same references again.
"""

from __future__ import annotations

from fiftyone_plugin import faults
from fiftyone_plugin.captioning import Cancelled
from fiftyone_plugin.dataset import CAPTIONS, METADATA, dataset_to_pairs, write_pair_values
from idc_engine.synth.llm_variator import LLMVariator, LLMVariatorConfig
from idc_engine.synth.references import KEY, ReferenceConfig, add_instruction_references


def add_references_to_samples(
    samples,
    model_path: str,
    config: ReferenceConfig | None = None,
    llm: dict | None = None,
    progress=None,
    cancelled=None,
) -> dict:
    """Give the pairs of ``samples`` (those of ``config.split``) their instruction and LLM variations as
    ``captions``; ``llm`` holds further ``LLMVariatorConfig`` settings (device, batch_size, ...)."""
    config = config or ReferenceConfig()
    dataset = samples._dataset
    variator = LLMVariator(LLMVariatorConfig(model_path=model_path, mode="instructions", **(llm or {})))

    def on_batch(done, total):
        if cancelled is not None and cancelled():
            raise Cancelled(f"references cancelled after {done} of {total} pairs; nothing was written")
        if progress is not None:
            progress(done / max(total, 1), f"{done}/{total} pairs given references")

    pairs = dataset_to_pairs(samples)
    out, report = add_instruction_references(pairs, variator, config, progress=on_batch)
    changed = [after for before, after in zip(pairs, out) if after is not before and KEY in (after.metadata or {})]
    # The record (which keeps the captions a pair had) before the new captions: a run stopped between the two
    # leaves the old captions in place and recorded, and the next run keeps that record's previous captions.
    write_pair_values(dataset, METADATA, {p.id: p.metadata for p in changed})
    faults.boundary("references.between_fields")
    write_pair_values(dataset, CAPTIONS, {p.id: list(p.captions) for p in changed})
    return {
        "pairs": report.pairs,
        "written": len(changed),
        "variations_kept": report.kept,
        "variations_asked": report.asked,
        "short": report.short,
        "rejected": dict(report.rejected),
        "without_instruction": len(report.without_instruction),
        "generate_calls": report.generate_calls,
    }
