"""Token sequences for BLIP-2's LLM: image placeholders, prompt, caption, and the loss mask.

A sequence is ``[<image>] * num_query_tokens + [BOS] + prompt + caption + [EOS]``. BLIP-2 replaces
the placeholders with the Q-Former's outputs. Only caption tokens and the final EOS are learned:
placeholders, BOS, prompt and padding get the label -100, which the loss ignores.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

IGNORE_INDEX = -100


@dataclass
class TextLayout:
    """What the LLM's token sequences are made of, shared by training and generation."""

    image_token_id: int
    num_query_tokens: int
    bos_token_id: int
    eos_token_id: int
    pad_token_id: int
    prompt_ids: list[int]

    @property
    def prefix(self) -> list[int]:
        return [self.image_token_id] * self.num_query_tokens + [self.bos_token_id] + self.prompt_ids


def prefix_for(layout: TextLayout, tokenizer, prompt: str | None) -> list[int]:
    """The layout's prefix, or the same with another prompt."""
    if prompt is None:
        return layout.prefix
    ids = tokenizer(prompt, add_special_tokens=False).input_ids if prompt else []
    return [layout.image_token_id] * layout.num_query_tokens + [layout.bos_token_id] + list(ids)


def make_layout(tokenizer, num_query_tokens: int, image_token_id: int, prompt: str) -> TextLayout:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    prompt_ids = tokenizer(prompt, add_special_tokens=False).input_ids if prompt else []
    return TextLayout(
        image_token_id=image_token_id,
        num_query_tokens=num_query_tokens,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=pad,
        prompt_ids=list(prompt_ids),
    )


def encode_captions(tokenizer, captions: list[str], max_tokens: int) -> list[list[int]]:
    """Caption token ids, each preceded by a space so the first word tokenizes as it does mid-sentence."""
    encoded = tokenizer([" " + c.strip() for c in captions], add_special_tokens=False).input_ids
    return [ids[: max_tokens - 1] for ids in encoded]


def training_batch(
    layout: TextLayout, caption_ids: list[list[int]], prefixes: list[list[int]] | None = None
) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` for teacher-forced training.

    ``prefixes`` gives each row its own prefix (another prompt); by default all share the layout's.
    """
    prefixes = prefixes or [layout.prefix] * len(caption_ids)
    rows = [prefix + ids + [layout.eos_token_id] for prefix, ids in zip(prefixes, caption_ids)]
    length = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), length), layout.pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
    labels = torch.full((len(rows), length), IGNORE_INDEX, dtype=torch.long)
    for i, (prefix, row) in enumerate(zip(prefixes, rows)):
        input_ids[i, : len(row)] = torch.tensor(row)
        attention_mask[i, : len(row)] = 1
        labels[i, len(prefix) : len(row)] = torch.tensor(row[len(prefix) :])
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def generation_batch(
    layout: TextLayout, batch_size: int, prefixes: list[list[int]] | None = None
) -> dict[str, torch.Tensor]:
    """Prompt-only inputs for ``generate``.

    Rows that share the layout's prompt need no padding. Rows with prompts of their own
    (``prefixes``) are left-padded, so that every row's next token follows its prompt directly.
    """
    prefixes = prefixes or [layout.prefix] * batch_size
    if len(prefixes) != batch_size:
        raise ValueError(f"prefixes: {len(prefixes)} given for a batch of {batch_size}")
    length = max(len(p) for p in prefixes)
    input_ids = torch.full((batch_size, length), layout.pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((batch_size, length), dtype=torch.long)
    for i, prefix in enumerate(prefixes):
        input_ids[i, length - len(prefix) :] = torch.tensor(prefix)
        attention_mask[i, length - len(prefix) :] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}
