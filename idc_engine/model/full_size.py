"""BLIP-2 OPT-2.7b built from its published configuration, with random weights.

No weights can be downloaded here, but a model of the real shape has the real speed and memory:
GPU tests and benchmarks use it to measure what a user with the checkpoint will see.
The values are those of ``Salesforce/blip2-opt-2.7b``'s ``config.json``.
"""

from __future__ import annotations

from transformers import Blip2Config, Blip2QFormerConfig, Blip2VisionConfig, OPTConfig

IMAGE_TOKEN_INDEX = 50265  # the <image> token appended to OPT's vocabulary


def blip2_opt_2_7b_config() -> Blip2Config:
    vision = Blip2VisionConfig(
        hidden_size=1408,
        intermediate_size=6144,
        num_hidden_layers=39,
        num_attention_heads=16,
        image_size=224,
        patch_size=14,
        qkv_bias=True,
        initializer_range=0.02,
    )
    qformer = Blip2QFormerConfig(
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=12,
        num_attention_heads=12,
        cross_attention_frequency=2,
        encoder_hidden_size=1408,
        vocab_size=30522,
    )
    text = OPTConfig(
        vocab_size=50304,
        hidden_size=2560,
        ffn_dim=10240,
        num_hidden_layers=32,
        num_attention_heads=32,
        max_position_embeddings=2048,
        word_embed_proj_dim=2560,
        do_layer_norm_before=True,
        pad_token_id=1,
        bos_token_id=2,
        eos_token_id=2,
    )
    return Blip2Config(
        vision_config=vision.to_dict(),
        qformer_config=qformer.to_dict(),
        text_config=text.to_dict(),
        num_query_tokens=32,
        image_token_index=IMAGE_TOKEN_INDEX,
    )


def narrowed_config() -> Blip2Config:
    """The same layout at toy width and depth: 224-pixel images in 14-pixel patches, 32 queries,
    cross-attention in every second Q-Former layer, OPT's projection. Runs on a CPU in seconds."""
    config = blip2_opt_2_7b_config().to_dict()
    config["vision_config"].update(hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4)
    config["qformer_config"].update(
        hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4, encoder_hidden_size=64
    )
    config["text_config"].update(
        hidden_size=64, ffn_dim=128, num_hidden_layers=2, num_attention_heads=4, word_embed_proj_dim=64
    )
    return Blip2Config(**config)


def full_size_processor():
    """A processor that feeds the full-size model: the embedded preset's tokenizer (its ids fit OPT's
    vocabulary), 224-pixel images and 32 query tokens."""
    from transformers import Blip2Processor

    from idc_engine.model.base_reference import TINY, resolve_spec

    processor = Blip2Processor.from_pretrained(resolve_spec(TINY))
    processor.image_processor.size = {"height": 224, "width": 224}
    processor.num_query_tokens = 32
    return processor


def full_size_blip2idc(narrow: bool = False, seed: int = 0):
    """BLIP2IDC on BLIP-2 OPT-2.7b's architecture with random weights (fp32, on the CPU; move it after)."""
    import torch
    from transformers import Blip2ForConditionalGeneration

    from idc_engine.model.blip2idc import BLIP2IDC

    processor = full_size_processor()
    config = narrowed_config() if narrow else blip2_opt_2_7b_config()
    config.image_token_index = processor.tokenizer.image_token_id
    torch.manual_seed(seed)
    return BLIP2IDC(Blip2ForConditionalGeneration(config), processor)
