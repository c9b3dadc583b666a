"""The tiny preset: a BLIP-2 of about a million parameters, built from configs, that trains on a CPU.

It has the real architecture (ViT -> Q-Former -> OPT) at toy sizes, a byte-level tokenizer trained
locally, and a processor, and is saved and reloaded with ``save_pretrained`` / ``from_pretrained``
like any checkpoint.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import torch
from transformers import (
    Blip2Config,
    Blip2ForConditionalGeneration,
    Blip2Processor,
    Blip2QFormerConfig,
    Blip2VisionConfig,
    OPTConfig,
)
from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil

from idc_engine.data.shapes_change import COLORS, SHAPES, TEMPLATES, Shape, describe_scene
from idc_engine.model.blip2idc import BLIP2IDC
from idc_engine.model.config import BLIP2IDCConfig
from idc_engine.model.tokenizer import build_tokenizer

# The prompt of the scene-description task the tiny preset is pretrained on (see idc_engine.pretrain).
DESCRIBE_PROMPT = "Describe the two images:"


@dataclass
class TinyPresetConfig:
    """Sizes of the tiny BLIP-2; the only home of their defaults."""

    image_size: int = field(default=96, metadata={"help": "side of the square ViT input, in pixels"})
    patch_size: int = field(default=16, metadata={"help": "ViT patch side, in pixels"})
    vision_hidden: int = 128
    vision_layers: int = 4
    vision_heads: int = 4
    qformer_hidden: int = 128
    qformer_layers: int = 2
    qformer_heads: int = 4
    text_hidden: int = 128
    text_layers: int = 2
    text_heads: int = 4
    num_query_tokens: int = field(default=16, metadata={"help": "Q-Former queries = image tokens the LLM reads"})
    vocab_size: int = field(default=512, metadata={"help": "byte-level BPE vocabulary size"})
    max_positions: int = field(default=128, metadata={"help": "longest LLM sequence, image tokens included"})
    dropout: float = field(default=0.0, metadata={"help": "dropout everywhere; synthetic data needs none"})
    init_std: float = field(
        default=0.02,
        metadata={"help": "std of the initial weights; BLIP-2's vision default (1e-10) cannot train from scratch"},
    )
    position_init: str = field(
        default="random",
        metadata={
            "help": "'sincos': the ViT's position embeddings start as 2D sine-cosine codes of each patch's row and "
            "column (trained from scratch on few photographs, random ones learned only which half of the pair a "
            "patch is in, so no caption placed an edit); 'random': BLIP-2's initialisation"
        },
    )
    seed: int = 0

    def __post_init__(self):
        if self.position_init not in ("random", "sincos"):
            raise ValueError(f"position_init must be 'random' or 'sincos', got {self.position_init!r}")
        if self.position_init == "sincos" and self.vision_hidden % 4:
            # Checked here, not only in sincos_positions: that runs after the whole model is built.
            raise ValueError(
                f"vision_hidden ({self.vision_hidden}) must be a multiple of 4 for position_init='sincos' "
                "(sine and cosine of the row and of the column)"
            )
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size ({self.image_size}) must be a multiple of patch_size ({self.patch_size})")
        for name in ("vision", "qformer", "text"):
            hidden, heads = getattr(self, f"{name}_hidden"), getattr(self, f"{name}_heads")
            if hidden % heads:
                raise ValueError(f"{name}_hidden ({hidden}) must be a multiple of {name}_heads ({heads})")
        if self.max_positions <= self.num_query_tokens + 8:
            raise ValueError(
                f"max_positions ({self.max_positions}) must exceed num_query_tokens ({self.num_query_tokens}) + 8"
            )


def tokenizer_corpus(prompt: str) -> list[str]:
    """Every sentence shapes-change and scene captioning can produce, plus the prompt."""
    corpus = [prompt, DESCRIBE_PROMPT]
    for color, new_color, shape in itertools.product(COLORS, COLORS, SHAPES):
        words = {"color": color, "new_color": new_color, "shape": shape}
        corpus.extend(template.format(**words) for templates in TEMPLATES.values() for template in templates)
        scene = [Shape(color, shape, 0.2, 0.5, 0.1), Shape(new_color, "circle", 0.5, 0.5, 0.1)]
        corpus.append(f"top: {describe_scene(scene)}. bottom: {describe_scene(scene[:1])}")
    return corpus


def photo_tokenizer_corpus(prompt: str) -> list[str]:
    """Every sentence photo-edits and its layout descriptions can produce, plus the prompts."""
    from idc_engine.data.photo_edits import caption_corpus

    return [prompt, DESCRIBE_PROMPT, *caption_corpus()]


def sincos_positions(grid: int, width: int) -> torch.Tensor:
    """2D sine-cosine codes (MAE's) of a ``grid`` x ``grid`` patch layout, row-major: half the channels
    encode the row, half the column. The frequencies run from a quarter turn per patch down to a quarter
    turn across the grid (MAE's 1/10,000 would leave most channels constant on a grid of 8)."""
    if width % 4 or width < 4:
        raise ValueError(f"width must be a multiple of 4 (4 or more) for 2D sine-cosine positions, got {width!r}")
    count = width // 4
    # One frequency per axis (width 4) is the lowest, a quarter turn across the grid: the highest alone
    # (a quarter turn per patch) would give patches four apart the same code.
    steps = torch.arange(count, dtype=torch.float64) / (count - 1) if count > 1 else torch.ones(1, dtype=torch.float64)
    frequencies = (math.pi / 2) * float(grid) ** -steps
    rows, columns = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")

    def codes(positions: torch.Tensor) -> torch.Tensor:
        angles = positions.reshape(-1, 1).double() * frequencies
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    return torch.cat([codes(rows), codes(columns)], dim=1).float()


def build_tiny(
    preset: TinyPresetConfig | None = None, config: BLIP2IDCConfig | None = None, corpus: list[str] | None = None
) -> BLIP2IDC:
    """A freshly initialised tiny BLIP2IDC, ready to train from scratch.

    ``corpus`` is what its tokenizer is trained on (default: every shapes-change sentence); a
    tokenizer that has never seen a task's words spends several tokens on each of them.
    """
    preset = preset or TinyPresetConfig()
    config = config or BLIP2IDCConfig()
    corpus = corpus if corpus is not None else tokenizer_corpus(config.prompt)
    tokenizer = build_tokenizer(corpus, vocab_size=preset.vocab_size)
    image_token_id = tokenizer.convert_tokens_to_ids(tokenizer.image_token)
    vision = Blip2VisionConfig(
        hidden_size=preset.vision_hidden,
        intermediate_size=4 * preset.vision_hidden,
        num_hidden_layers=preset.vision_layers,
        num_attention_heads=preset.vision_heads,
        image_size=preset.image_size,
        patch_size=preset.patch_size,
        initializer_range=preset.init_std,
        attention_dropout=preset.dropout,
    )
    qformer = Blip2QFormerConfig(
        hidden_size=preset.qformer_hidden,
        intermediate_size=4 * preset.qformer_hidden,
        num_hidden_layers=preset.qformer_layers,
        num_attention_heads=preset.qformer_heads,
        encoder_hidden_size=preset.vision_hidden,
        cross_attention_frequency=1,
        hidden_dropout_prob=preset.dropout,
        attention_probs_dropout_prob=preset.dropout,
        initializer_range=preset.init_std,
        vocab_size=tokenizer.vocab_size,
    )
    text = OPTConfig(
        vocab_size=len(tokenizer),
        hidden_size=preset.text_hidden,
        word_embed_proj_dim=preset.text_hidden,
        ffn_dim=4 * preset.text_hidden,
        num_hidden_layers=preset.text_layers,
        num_attention_heads=preset.text_heads,
        max_position_embeddings=preset.max_positions,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        init_std=preset.init_std,
        dropout=preset.dropout,
        attention_dropout=preset.dropout,
    )
    blip_config = Blip2Config(
        vision_config=vision.to_dict(),
        qformer_config=qformer.to_dict(),
        text_config=text.to_dict(),
        num_query_tokens=preset.num_query_tokens,
        image_token_index=image_token_id,
        initializer_range=preset.init_std,
    )
    torch.manual_seed(preset.seed)
    model = Blip2ForConditionalGeneration(blip_config)
    with torch.no_grad():
        # BLIP-2 zero-initialises the queries (they are always loaded from a checkpoint); identical
        # queries would make every query attend alike, so give them distinct small values.
        model.query_tokens.normal_(0.0, preset.init_std)
        if preset.position_init == "sincos":
            grid = preset.image_size // preset.patch_size
            embedding = model.vision_model.embeddings.position_embedding
            embedding.zero_()
            embedding[0, 1:] = sincos_positions(grid, preset.vision_hidden)
    image_processor = BlipImageProcessorPil(size={"height": preset.image_size, "width": preset.image_size})
    processor = Blip2Processor(image_processor, tokenizer, num_query_tokens=preset.num_query_tokens)
    return BLIP2IDC(model, processor, config, source=None).eval()
