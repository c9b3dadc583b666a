"""BLIP2IDC: BLIP-2 captioning the difference between two images.

The pair is joined into one image (reference above modified by default) so that the ViT's
self-attention compares the two from its first layer: the paper's early-fusion design. The
``two-stream`` encoding, kept for the paper's comparison, runs the ViT on each image separately and
joins the two feature sequences before the Q-Former, marking each with a learned stream embedding.
"""

from __future__ import annotations

import inspect
import json
import os
import warnings
from pathlib import Path

import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from transformers import Blip2ForConditionalGeneration, Blip2Processor
from transformers.models.blip_2.modeling_blip_2 import BaseModelOutputWithVisionQformerOutputs

from idc_engine.data.images import to_rgb
from idc_engine.model.base_reference import EMBEDDED_BASE, base_reference, resolve_base
from idc_engine.model.compose import align_reference, compose_pair
from idc_engine.model.config import BLIP2IDCConfig, LoraSettings
from idc_engine.model.device import inference_dtype, parse_dtype, pick_device
from idc_engine.model.lora import lora_config
from idc_engine.model.text import encode_captions, generation_batch, make_layout, prefix_for, training_batch

STREAM_EMBEDDING_FILE = "stream_embedding.safetensors"
ADAPTER_CONFIG_FILE = "adapter_config.json"


def _require_encoder_outputs():
    """Two-stream hands BLIP-2 its own image features, through an argument transformers 5.18 added."""
    if "mm_encoder_outputs" not in inspect.signature(Blip2ForConditionalGeneration.forward).parameters:
        import transformers

        raise ImportError(
            f"encoding 'two-stream' needs transformers >= 5.18 (mm_encoder_outputs); "
            f"this is transformers {transformers.__version__}"
        )


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


class PairPixels:
    """Image pairs -> the model's pixel values, without the model: small and picklable, so that
    DataLoader worker processes can prepare training batches while the model trains."""

    def __init__(self, image_processor, encoding: str, orientation: str):
        self.image_processor, self.encoding, self.orientation = image_processor, encoding, orientation

    def __call__(self, pairs: list[tuple[Image.Image, Image.Image]]) -> torch.Tensor:
        # Images given in memory get what a file gets (16-bit scaled, not saturated; alpha on white).
        pairs = [(to_rgb(ref), to_rgb(mod)) for ref, mod in pairs]
        if self.encoding != "two-stream":
            images = [compose_pair(ref, mod, self.orientation, self.encoding) for ref, mod in pairs]
            return self.image_processor(images=images, return_tensors="pt")["pixel_values"]
        references = [align_reference(ref, mod) for ref, mod in pairs]
        modified = [mod for _, mod in pairs]
        ref_values = self.image_processor(images=references, return_tensors="pt")["pixel_values"]
        mod_values = self.image_processor(images=modified, return_tensors="pt")["pixel_values"]
        return torch.stack([ref_values, mod_values], dim=1)


class BLIP2IDC(torch.nn.Module):
    """A ``Blip2ForConditionalGeneration`` with its processor, adapted to image pairs."""

    def __init__(self, model: Blip2ForConditionalGeneration, processor: Blip2Processor, config=None, source=None):
        super().__init__()
        self.base = model
        self.processor = processor
        self.config = config or BLIP2IDCConfig()
        self.source = str(source) if source is not None else None
        # What a user names to load this model again (an adapter's folder, not its base); see load_model.
        self.spec = self.source
        self.peft_model = None
        self._ensure_image_token()
        self.stream_embedding = None
        if self.config.encoding == "two-stream":
            _require_encoder_outputs()
            hidden = model.config.vision_config.hidden_size
            generator = torch.Generator().manual_seed(0)
            init = torch.randn(2, hidden, generator=generator) * 0.02
            self.stream_embedding = torch.nn.Parameter(init.to(self.device, torch.float32))

    # ----------------------------------------------------------------------------------- properties
    @property
    def tokenizer(self):
        return self.processor.tokenizer

    @property
    def image_processor(self):
        return self.processor.image_processor

    @property
    def device(self) -> torch.device:
        return next(self.base.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return self.base.language_model.get_input_embeddings().weight.dtype

    @property
    def num_query_tokens(self) -> int:
        return self.base.config.num_query_tokens

    @property
    def has_adapter(self) -> bool:
        return self.peft_model is not None

    def layout(self):
        return make_layout(
            self.tokenizer, self.num_query_tokens, self.base.config.image_token_index, self.config.prompt
        )

    def _ensure_image_token(self):
        """Checkpoints saved before BLIP-2 used placeholder tokens get one added, as their processor would."""
        config = self.base.config
        if config.image_token_index is not None:
            return
        token = getattr(self.tokenizer, "image_token", None) or "<image>"
        if token not in self.tokenizer.get_vocab():
            self.tokenizer.add_tokens([token], special_tokens=True)
        config.image_token_index = self.tokenizer.convert_tokens_to_ids(token)
        if config.image_token_index >= self.base.language_model.get_input_embeddings().weight.shape[0]:
            self.base.resize_token_embeddings(len(self.tokenizer))

    # ----------------------------------------------------------------------------------- images
    def pixel_values(self, pairs: list[tuple[Image.Image, Image.Image]]) -> torch.Tensor:
        """Processor-ready tensors: ``(B, 3, H, W)`` for concat, ``(B, 2, 3, H, W)`` for two-stream."""
        return PairPixels(self.image_processor, self.config.encoding, self.config.orientation)(pairs)

    def _two_stream_features(self, pixel_values: torch.Tensor) -> BaseModelOutputWithVisionQformerOutputs:
        batch = pixel_values.shape[0]
        flat = pixel_values.flatten(0, 1).to(self.device, self.base.vision_model.dtype)
        embeds = self.base.vision_model(pixel_values=flat, return_dict=True).last_hidden_state
        embeds = embeds.view(batch, 2, embeds.shape[1], embeds.shape[2])
        embeds = embeds + self.stream_embedding.to(embeds.dtype)[None, :, None, :]
        embeds = embeds.flatten(1, 2)
        mask = torch.ones(embeds.shape[:-1], dtype=torch.long, device=embeds.device)
        queries = self.base.query_tokens.expand(batch, -1, -1)
        query_output = self.base.qformer(
            query_embeds=queries, encoder_hidden_states=embeds, encoder_attention_mask=mask, return_dict=True
        ).last_hidden_state
        features = self.base.language_projection(query_output.to(self.base.language_projection.weight.dtype))
        return BaseModelOutputWithVisionQformerOutputs(last_hidden_state=embeds, pooler_output=features)

    # ----------------------------------------------------------------------------------- training
    def text_batch(self, captions: list[str], prompts: list[str | None] | None = None) -> dict[str, torch.Tensor]:
        """Training tokens; ``prompts`` may give a row its own prompt (None keeps the config's)."""
        layout = self.layout()
        caption_ids = encode_captions(self.tokenizer, captions, self.config.max_caption_tokens)
        prefixes = [prefix_for(layout, self.tokenizer, p) for p in prompts] if prompts else None
        return training_batch(layout, caption_ids, prefixes)

    def forward(self, pixel_values, input_ids, attention_mask, labels=None):
        pixel_values = pixel_values.to(self.device)
        input_ids, attention_mask = input_ids.to(self.device), attention_mask.to(self.device)
        if labels is not None:
            labels = labels.to(self.device)
        if self.config.encoding != "two-stream":
            return self.base(
                pixel_values=pixel_values.to(self.base.vision_model.dtype),
                input_ids=input_ids,
                attention_mask=attention_mask,
                labels=labels,
            )
        features = self._two_stream_features(pixel_values)
        return self.base(
            pixel_values=None,
            input_ids=input_ids,
            attention_mask=attention_mask,
            labels=labels,
            mm_encoder_outputs={"image": features},
        )

    def loss(self, pixel_values: torch.Tensor, captions: list[str], prompts=None) -> torch.Tensor:
        """Mean cross-entropy over caption tokens (and the closing EOS) only."""
        return self(pixel_values, **self.text_batch(captions, prompts)).loss

    # ----------------------------------------------------------------------------------- inference
    @torch.no_grad()
    def generate(
        self, pixel_values: torch.Tensor, num_beams: int = 1, max_new_tokens: int = 30, prompts=None
    ) -> list[str]:
        """Captions for a batch, in input order; ``prompts`` may give a row its own prompt."""
        return self.generate_with_confidence(pixel_values, num_beams, max_new_tokens, prompts)[0]

    @torch.no_grad()
    def generate_with_confidence(
        self, pixel_values: torch.Tensor, num_beams: int = 1, max_new_tokens: int = 30, prompts=None
    ) -> tuple[list[str], list[float]]:
        """Captions and, for each, the model's own confidence: the log-probability of its tokens (and
        its EOS) divided by the square root of their number.

        The sum alone penalises long captions for their length; the mean (the per-token geometric
        mean) hides how many tokens were uncertain and, measured on shapes-change, ranks wrong
        captions worse off the model's own distribution (AUROC 0.54 against 0.62 for the sum);
        the square root keeps most of both (benchmarks/review_queue.py). With beam search it is the
        beam's length-normalised score. Both are <= 0, higher is surer.
        """
        layout = self.layout()
        prefixes = [prefix_for(layout, self.tokenizer, p) for p in prompts] if prompts else None
        inputs = generation_batch(layout, pixel_values.shape[0], prefixes)
        batch = {k: v.to(self.device) for k, v in inputs.items()}
        options = dict(
            num_beams=num_beams,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=layout.eos_token_id,
            pad_token_id=layout.pad_token_id,
            return_dict_in_generate=True,
            output_logits=True,
        )
        if self.config.encoding != "two-stream":
            pixel_values = pixel_values.to(self.device, self.base.vision_model.dtype)
            output = self.base.generate(pixel_values=pixel_values, **batch, **options)
        else:
            features = self._two_stream_features(pixel_values.to(self.device)).pooler_output
            embeddings = self.base.get_input_embeddings()(batch["input_ids"])
            mask = (batch["input_ids"] == layout.image_token_id).unsqueeze(-1)
            embeddings = embeddings.masked_scatter(mask, features.to(embeddings.dtype))
            output = self.base.language_model.generate(inputs_embeds=embeddings, **batch, **options)
        sequences = output.sequences
        prefix_length = batch["input_ids"].shape[1]
        # Decoder-only generate returns the prompt ids followed by the new tokens.
        if sequences.shape[1] >= prefix_length and torch.equal(sequences[:, :prefix_length], batch["input_ids"]):
            sequences = sequences[:, prefix_length:]
        captions = [text.strip() for text in self.tokenizer.batch_decode(sequences, skip_special_tokens=True)]
        return captions, self._confidences(output, sequences, layout, num_beams)

    def _confidences(self, output, new_tokens: torch.Tensor, layout, num_beams: int) -> list[float]:
        if num_beams > 1 and getattr(output, "sequences_scores", None) is not None:
            return [float(v) for v in output.sequences_scores]
        # Raw logits, before any logits processor: the model's own probabilities.
        steps = torch.stack(output.logits, dim=1).float().log_softmax(-1)  # (B, T, V)
        tokens = new_tokens[:, -steps.shape[1] :]
        chosen = steps.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
        # Tokens after the first EOS are padding; the EOS itself counts (stopping is a decision).
        finished = (tokens == layout.eos_token_id).long().cumsum(1)
        keep = (finished == 0) | ((finished == 1) & (tokens == layout.eos_token_id))
        totals = (chosen * keep).sum(1) / keep.sum(1).clamp(min=1).sqrt()
        return [float(v) for v in totals]

    # ----------------------------------------------------------------------------------- LoRA
    def add_lora(self, settings: LoraSettings | None = None):
        """Wrap the model with fresh LoRA adapters; afterwards only adapter weights require gradients."""
        from peft import get_peft_model

        if self.has_adapter:
            raise ValueError("this model already has a LoRA adapter; merge_lora() it first")
        settings = settings or LoraSettings()
        self.peft_model = get_peft_model(self.base, lora_config(settings))
        if self.stream_embedding is not None:
            self.stream_embedding.requires_grad_(True)
        return self

    def merge_lora(self):
        """Fold the adapter into the base weights, for deployment without peft."""
        if not self.has_adapter:
            raise ValueError("this model has no LoRA adapter to merge")
        self.base = self.peft_model.merge_and_unload()
        self.peft_model = None
        return self

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    # ----------------------------------------------------------------------------------- save / load
    def save_pretrained(self, directory) -> Path:
        """Save the adapter (if one is attached) or the whole model, with its processor and IDC config.

        An adapter directory holds ``adapter_model.safetensors`` and ``adapter_config.json``, whose
        ``base_model_name_or_path`` names the model it adapts (see ``base_reference``); a base that
        exists nowhere else (built from a config) is saved inside the adapter, under ``base/``.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if self.has_adapter:
            config = self.peft_model.peft_config["default"]
            config.base_model_name_or_path = base_reference(self.source)
            if config.base_model_name_or_path is None:
                self._save_base(directory / EMBEDDED_BASE)
                config.base_model_name_or_path = EMBEDDED_BASE
            with warnings.catch_warnings():
                # peft looks for the base's config to detect a resized vocabulary; "tiny" and "base"
                # are idc's names, resolved at load time (BLIP2IDC never resizes a loaded vocabulary).
                warnings.filterwarnings("ignore", message="Could not find a config file")
                self.peft_model.save_pretrained(str(directory), safe_serialization=True)
        else:
            self.base.save_pretrained(str(directory), safe_serialization=True)
            self.processor.save_pretrained(str(directory))
        if self.stream_embedding is not None:
            save_file(
                {"stream_embedding": self.stream_embedding.detach().float().cpu().contiguous()},
                str(directory / STREAM_EMBEDDING_FILE),
            )
        self.config.save(directory)
        return directory

    def _save_base(self, directory: Path):
        """The frozen base weights under an adapter (LoRA leaves them untouched), as a plain checkpoint."""
        state = {
            name.replace(".base_layer.", "."): tensor
            for name, tensor in self.peft_model.get_base_model().state_dict().items()
            if "lora_" not in name
        }
        plain = Blip2ForConditionalGeneration(self.base.config)
        plain.load_state_dict(state, strict=True)
        plain.save_pretrained(str(directory), safe_serialization=True)
        self.processor.save_pretrained(str(directory))
        self.config.save(directory)

    @classmethod
    def from_pretrained(
        cls,
        path_or_id,
        adapter=None,
        config: BLIP2IDCConfig | None = None,
        device: str | None = None,
        dtype: str | torch.dtype | None = None,
        local_files_only: bool | None = None,
        attn_implementation: str | None = None,
        trainable_adapter: bool = False,
        base_model: str | None = None,
    ) -> BLIP2IDC:
        """Load a BLIP-2 checkpoint (local folder or hub id), or an adapter folder saved by idc.

        ``adapter`` adds a saved LoRA adapter on top of the base. When ``path_or_id`` is itself an
        adapter folder, its base is read from ``adapter_config.json`` unless ``base_model`` (a path,
        hub id or 'tiny') names it, for an adapter made on another machine. With ``HF_HUB_OFFLINE=1`` (or
        ``local_files_only=True``) nothing is downloaded: a hub id must already be in the HF cache.
        """
        path_or_id = str(path_or_id)
        if (Path(path_or_id) / ADAPTER_CONFIG_FILE).is_file():
            if adapter is not None:
                raise ValueError(f"path_or_id {path_or_id!r} is an adapter folder; pass its base, or omit adapter")
            adapter = path_or_id
            recorded = json.loads((Path(adapter) / ADAPTER_CONFIG_FILE).read_text()).get("base_model_name_or_path")
            path_or_id = resolve_base(recorded, adapter, base_model)
        elif base_model is not None:
            raise ValueError(f"base_model: only an adapter folder takes one, and {path_or_id!r} is not an adapter")
        if local_files_only is None:
            local_files_only = hub_offline()
        target = pick_device(device)
        torch_dtype = parse_dtype(dtype) if dtype is not None else inference_dtype(target)
        local = Path(path_or_id)
        if not local.exists() and (local.is_absolute() or path_or_id.startswith(".") or path_or_id.count("/") > 1):
            raise FileNotFoundError(f"path_or_id {path_or_id!r}: no such checkpoint folder")
        options = {"local_files_only": local_files_only}
        try:
            processor = Blip2Processor.from_pretrained(path_or_id, **options)
            model = Blip2ForConditionalGeneration.from_pretrained(
                path_or_id,
                dtype=torch_dtype,
                attn_implementation=attn_implementation,
                **options,
            )
        except (OSError, ValueError) as exc:
            hint = (
                " (offline: only local folders and models already in the Hugging Face cache can be loaded)"
                if local_files_only
                else ""
            )
            raise OSError(f"path_or_id {path_or_id!r}: cannot load a BLIP-2 checkpoint{hint}: {exc}") from exc
        model.to(target)
        saved = BLIP2IDCConfig.load(adapter) if adapter is not None else BLIP2IDCConfig.load(path_or_id)
        model_config = config or saved or BLIP2IDCConfig()
        idc = cls(model, processor, model_config, source=path_or_id)
        if adapter is not None:
            idc._load_adapter(adapter, trainable_adapter)
            idc.spec = str(Path(adapter).resolve()) if Path(adapter).exists() else str(adapter)
        elif Path(path_or_id, STREAM_EMBEDDING_FILE).is_file():
            idc._load_stream_embedding(path_or_id)
        idc.eval()
        return idc

    def _load_adapter(self, adapter, trainable: bool):
        from peft import PeftModel

        self.peft_model = PeftModel.from_pretrained(self.base, str(adapter), is_trainable=trainable)
        if Path(adapter, STREAM_EMBEDDING_FILE).is_file():
            self._load_stream_embedding(adapter)

    def _load_stream_embedding(self, directory):
        if self.stream_embedding is None:
            raise ValueError(
                f"{directory}: holds a two-stream embedding, but the config's encoding is {self.config.encoding!r}"
            )
        tensor = load_file(str(Path(directory) / STREAM_EMBEDDING_FILE))["stream_embedding"]
        with torch.no_grad():
            self.stream_embedding.copy_(tensor.to(self.stream_embedding.device))
