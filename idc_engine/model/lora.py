"""LoRA adapters on BLIP-2's attention layers, selectable per module group."""

from __future__ import annotations

import re

from peft import LoraConfig

from idc_engine.model.config import LoraSettings

# Module paths inside Blip2ForConditionalGeneration, per group of the paper's module ablation.
GROUP_PATTERNS = {
    "vit": r"vision_model\.encoder\.layers\.\d+\.self_attn\.qkv",
    "qformer": r"qformer\.encoder\.layer\.\d+\.(?:attention|crossattention)\.attention\.(?:query|key|value)",
    "llm": r"language_model\.(?:model\.)?(?:decoder\.)?layers\.\d+\.self_attn\.(?:q_proj|k_proj|v_proj)",
}


def target_regex(groups) -> str:
    """A regex that peft full-matches against module names, selecting exactly ``groups``."""
    return r"(?:.*\.)?(?:" + "|".join(GROUP_PATTERNS[g] for g in groups) + r")"


def lora_config(settings: LoraSettings) -> LoraConfig:
    return LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=target_regex(settings.targets),
        bias="none",
    )


def group_of(module_name: str) -> str | None:
    """Which group a module belongs to, or None."""
    for group, pattern in GROUP_PATTERNS.items():
        if re.fullmatch(r"(?:.*\.)?" + pattern, module_name):
            return group
    return None
