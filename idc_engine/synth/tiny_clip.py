"""A tiny CLIP (model and processor) with RANDOM weights, built offline from configs.

For tests only: its scores mean nothing. It has the real ``CLIPModel`` and ``CLIPProcessor`` classes and
the byte-level tokenizer of the tiny InstructPix2Pix pipeline, and saves and reloads with
``save_pretrained`` / ``from_pretrained(local_files_only=True)`` like a real checkpoint, with no download,
so that the quality filter's CLIP directional score runs through the code a real checkpoint uses.
"""

from __future__ import annotations

from pathlib import Path

IMAGE_SIZE = 32


def build_tiny_clip(folder, seed: int = 0) -> Path:
    """Build the tiny random CLIP, save model and processor under ``folder`` and return the folder."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    from idc_engine.synth.tiny_ip2p import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    layers = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4}
    config = CLIPConfig(
        text_config={
            **layers,
            "vocab_size": len(tokenizer),
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
            "max_position_embeddings": tokenizer.model_max_length,
        },
        vision_config={**layers, "image_size": IMAGE_SIZE, "patch_size": 8},
        projection_dim=16,
    )
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()  # built in training mode: eval, as a reloaded checkpoint is
    images = CLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    )
    folder = Path(folder)
    model.save_pretrained(folder)
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    return folder
