"""A tiny InstructPix2Pix pipeline with RANDOM weights, built offline from configs.

For tests and throughput measurements only: its edits are noise, not edits. It has the real pipeline
class and the component sizes of diffusers' own instruct-pix2pix tests (an 8-channel UNet, a two-block
VAE, a 5-layer CLIP text encoder) and a byte-level CLIP tokenizer built in memory, so it saves and
reloads with ``save_pretrained`` / ``from_pretrained`` like a real checkpoint (about 8 MB), with no
download. Like the tiny BLIP-2 preset, it is an offline stand-in for a real checkpoint.
"""

from __future__ import annotations

from pathlib import Path

# A few merges, so that the tokenizer's BPE is exercised; every merged token is in the vocabulary.
_MERGES = (("t", "h"), ("th", "e</w>"), ("a", "n"), ("i", "n"), ("e", "r"), ("o", "n"))


def _byte_characters() -> list[str]:
    """The 256 printable characters CLIP's byte-level BPE stands for the 256 bytes (GPT-2's table)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    extra = iter(range(256, 512))
    return [chr(b) if b in printable else chr(next(extra)) for b in range(256)]


def build_tiny_tokenizer():
    """A CLIP tokenizer over bytes: bos ``<|startoftext|>`` = 0, eos and pad ``<|endoftext|>`` = 2."""
    from transformers import CLIPTokenizer

    tokens = ["<|startoftext|>", "<|unk|>", "<|endoftext|>"]
    characters = _byte_characters()
    tokens += characters + [c + "</w>" for c in characters] + [a + b for a, b in _MERGES]
    vocab = {token: index for index, token in enumerate(dict.fromkeys(tokens))}
    return CLIPTokenizer(
        vocab=vocab,
        merges=list(_MERGES),  # (a, b) tuples: "a b" strings are refused
        unk_token="<|endoftext|>",
        bos_token="<|startoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        model_max_length=77,
    )


def build_tiny_ip2p(folder, seed: int = 0) -> Path:
    """Build the tiny random pipeline, save it under ``folder`` and return the folder.

    Every module is put in eval mode before saving: modules built from configs start in training mode,
    and their outputs then differ slightly from the reloaded pipeline's.
    """
    import torch
    from diffusers import (
        AutoencoderKL,
        PNDMScheduler,
        StableDiffusionInstructPix2PixPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=2,
        sample_size=32,
        in_channels=8,  # the noisy latent and the input image's latent, stacked
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
    )
    scheduler = PNDMScheduler(skip_prk_steps=True)
    torch.manual_seed(seed)
    vae = AutoencoderKL(
        block_out_channels=[32, 64],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
    )
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=0,
            eos_token_id=2,
            pad_token_id=1,
            hidden_size=32,
            intermediate_size=37,
            layer_norm_eps=1e-05,
            num_attention_heads=4,
            num_hidden_layers=5,
            vocab_size=1000,
        )
    )
    pipeline = StableDiffusionInstructPix2PixPipeline(
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        tokenizer=build_tiny_tokenizer(),
        unet=unet.eval(),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    folder = Path(folder)
    pipeline.save_pretrained(folder)
    return folder
