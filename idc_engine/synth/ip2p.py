"""InstructPix2Pix as a Syned editor: any local checkpoint (the paper's: InstructPix2Pix fine-tuned on MagicBrush).

diffusers and torch are imported when the pipeline is first used, so this module imports without them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from idc_engine.synth.editors import Editor, EditResult, check_category, check_seed

DTYPES = ("auto", "float32", "fp32", "float16", "fp16", "bfloat16", "bf16")
# Schedulers a user may ask for by name (diffusers classes); None keeps the checkpoint's own.
SCHEDULERS = {
    "euler_ancestral": "EulerAncestralDiscreteScheduler",  # the InstructPix2Pix authors' choice
    "euler": "EulerDiscreteScheduler",
    "ddim": "DDIMScheduler",
    "pndm": "PNDMScheduler",
    "dpm": "DPMSolverMultistepScheduler",
    "lms": "LMSDiscreteScheduler",
}


@dataclass
class InstructPix2PixConfig:
    """How the pipeline runs; the only home of its defaults.

    The guidance scales are a sweep: an item with seed ``s`` uses ``guidance_scales[s % len]`` and
    ``image_guidance_scales[s % len]``, so variants given consecutive seeds cycle through the values.

    Defaults: the paper did not tune guidance ("not tuned"), so text and image guidance are diffusers'
    defaults for this pipeline (7.5 and 1.5). Steps are 20, not diffusers' 100: the InstructPix2Pix authors'
    own examples use 10 to 20 steps with the Euler ancestral scheduler, and 100 costs five times as much for
    no gain the paper reports. 512 px is the resolution InstructPix2Pix was fine-tuned at; on a CPU a smaller
    working size (256, or the input's own with ``resolution=None``) is several times faster.
    """

    num_inference_steps: int = field(default=20, metadata={"help": "denoising steps per edit"})
    guidance_scales: tuple[float, ...] = field(
        default=(7.5,), metadata={"help": "text guidance scales, cycled over seeds (higher: follows the text more)"}
    )
    image_guidance_scales: tuple[float, ...] = field(
        default=(1.5,),
        metadata={"help": "image guidance scales, cycled over seeds (higher: stays closer to the input)"},
    )
    batch_size: int = field(default=4, metadata={"help": "items per pipeline call"})
    resolution: int | None = field(
        default=512,
        metadata={
            "help": "longer side of the image the pipeline sees (rounded to a multiple of 8); 0 or None: the input's"
        },
    )
    scheduler: str | None = field(
        default=None,
        metadata={"help": f"scheduler by name ({', '.join(SCHEDULERS)}); None: the checkpoint's own"},
    )
    local_files_only: bool = field(
        default=True, metadata={"help": "load from local files only (no download); false lets diffusers download"}
    )
    dtype: str = field(default="auto", metadata={"help": "auto (fp32 on the CPU, bf16 or fp16 on a GPU) or a dtype"})
    device: str | None = field(default=None, metadata={"help": "cuda, cuda:1, cpu, ...; None: CUDA when present"})
    cpu_offload: bool = field(
        default=False, metadata={"help": "keep modules on the CPU until used (enable_model_cpu_offload); CUDA only"}
    )

    def __post_init__(self):
        self.guidance_scales = tuple(float(g) for g in self.guidance_scales)
        self.image_guidance_scales = tuple(float(g) for g in self.image_guidance_scales)
        if not isinstance(self.num_inference_steps, int) or self.num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be a positive integer, got {self.num_inference_steps!r}")
        for name in ("guidance_scales", "image_guidance_scales"):
            values = getattr(self, name)
            if not values or any(v < 0 for v in values):
                raise ValueError(f"{name} must be a non-empty list of non-negative scales, got {values!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        if self.resolution == 0:
            self.resolution = None
        if self.resolution is not None and (not isinstance(self.resolution, int) or self.resolution < 8):
            raise ValueError(f"resolution must be an integer of at least 8 or None, got {self.resolution!r}")
        if self.scheduler is not None and self.scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler must be one of {tuple(SCHEDULERS)} or None, got {self.scheduler!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")


class InstructPix2PixEditor(Editor):
    """Edits with ``StableDiffusionInstructPix2PixPipeline.from_pretrained(checkpoint)``; an instruction is required.

    Each item's noise comes from its own CPU ``torch.Generator`` seeded by its seed, so an item gets the
    same noise alone or in a batch, on any device. The same items in the same batches give the same
    pixels; batched differently, a rare 8-bit level can differ by one (float sums run in a
    batch-size-dependent order).
    """

    name = "instruct-pix2pix"

    def __init__(self, checkpoint: str | Path, config: InstructPix2PixConfig | None = None):
        self.checkpoint = _check_checkpoint(checkpoint)
        self.config = config or InstructPix2PixConfig()
        self._pipeline = None

    @property
    def pipeline(self):
        """The loaded pipeline (loaded on first use)."""
        if self._pipeline is None:
            self._pipeline = self._load()
        return self._pipeline

    def _load(self):
        from diffusers import StableDiffusionInstructPix2PixPipeline

        from idc_engine.model.device import inference_dtype, pick_device

        self.device = pick_device(self.config.device)
        self.dtype = inference_dtype(self.device, None if self.config.dtype == "auto" else self.config.dtype)
        local = self.config.local_files_only
        try:
            # Loaded as stored, then cast: diffusers renamed from_pretrained's dtype argument across versions.
            pipeline = StableDiffusionInstructPix2PixPipeline.from_pretrained(self.checkpoint, local_files_only=local)
        except OSError as error:  # a hub id that is not in the local cache, or an incomplete folder
            where = "from local files" if local else "(downloads allowed)"
            raise FileNotFoundError(
                f"InstructPix2Pix checkpoint {self.checkpoint!r} could not be loaded {where}: {error}"
            ) from error
        if self.config.scheduler is not None:
            import diffusers

            scheduler_class = getattr(diffusers, SCHEDULERS[self.config.scheduler])
            pipeline.scheduler = scheduler_class.from_config(pipeline.scheduler.config)
        if pipeline.dtype != self.dtype:
            pipeline.to(self.dtype)
        self.offloaded = self.config.cpu_offload and self.device.type == "cuda"
        if self.offloaded:
            pipeline.enable_model_cpu_offload(device=self.device)
        else:
            pipeline.to(self.device)
        pipeline.set_progress_bar_config(disable=True)
        return pipeline

    def edit(self, image: Image.Image, instruction: str | None, category: str | None, seed: int) -> EditResult:
        return self.edit_batch([(image, instruction, category, seed)])[0]

    def edit_batch(self, items: list[tuple[Image.Image, str | None, str | None, int]]) -> list[EditResult]:
        """Items that share guidance scales and working size go through the pipeline together."""
        import torch

        prepared, groups = [], {}
        for index, (image, instruction, category, seed) in enumerate(items):
            check_category(category)
            seed = check_seed(seed)
            if not isinstance(instruction, str) or not instruction.strip():
                raise ValueError(f"item {index}: InstructPix2PixEditor needs an instruction, got {instruction!r}")
            image = image.convert("RGB")
            scales = (
                self.config.guidance_scales[seed % len(self.config.guidance_scales)],
                self.config.image_guidance_scales[seed % len(self.config.image_guidance_scales)],
            )
            size = working_size(image.size, self.config.resolution)
            prepared.append((image, instruction.strip(), category, seed, scales, size))
            groups.setdefault((scales, size), []).append(index)

        pipeline = self.pipeline
        results: list[EditResult | None] = [None] * len(items)
        for ((guidance, image_guidance), size), indices in groups.items():
            for start in range(0, len(indices), self.config.batch_size):
                chunk = [prepared[i] for i in indices[start : start + self.config.batch_size]]
                output = pipeline(
                    prompt=[item[1] for item in chunk],
                    image=[item[0].resize(size, Image.Resampling.LANCZOS) for item in chunk],
                    num_inference_steps=self.config.num_inference_steps,
                    guidance_scale=guidance,
                    image_guidance_scale=image_guidance,
                    generator=[torch.Generator("cpu").manual_seed(item[3]) for item in chunk],
                    output_type="pil",
                )
                flagged = output.nsfw_content_detected or [None] * len(chunk)
                for i, edited, nsfw in zip(indices[start : start + len(chunk)], output.images, flagged):
                    image, instruction, category, seed = prepared[i][:4]
                    if edited.size != image.size:
                        edited = edited.resize(image.size, Image.Resampling.LANCZOS)
                    settings = self._settings(seed, guidance, image_guidance, size, nsfw)
                    results[i] = EditResult(edited.convert("RGB"), instruction, category, settings)
        return results

    def _settings(self, seed, guidance, image_guidance, size, nsfw) -> dict:
        from importlib.metadata import version

        return {
            "editor": self.name,
            "checkpoint": self.checkpoint,
            "num_inference_steps": self.config.num_inference_steps,
            "scheduler": type(self.pipeline.scheduler).__name__,
            "guidance_scale": guidance,
            "image_guidance_scale": image_guidance,
            "working_size": list(size),
            "dtype": str(self.dtype).removeprefix("torch."),
            "device": str(self.device),
            "cpu_offload": self.offloaded,
            "batch_size": self.config.batch_size,
            "seed": seed,
            "nsfw_flagged": None if nsfw is None else bool(nsfw),
            "diffusers_version": version("diffusers"),
        }


def working_size(size: tuple[int, int], resolution: int | None) -> tuple[int, int]:
    """The size the pipeline sees: longer side ``resolution`` (or the input's), both sides multiples of 8."""
    width, height = size
    if resolution is not None:
        scale = resolution / max(width, height)
        width, height = width * scale, height * scale
    return max(8, round(width / 8) * 8), max(8, round(height / 8) * 8)


def _check_checkpoint(checkpoint) -> str:
    """A local pipeline folder, or a hub id to be found in the local Hugging Face cache."""
    text = str(checkpoint)
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise FileNotFoundError(
                f"InstructPix2Pix checkpoint folder {text!r} has no model_index.json: not a diffusers pipeline folder"
            )
        return str(path)
    if path.exists() or not re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", text):
        raise FileNotFoundError(
            f"InstructPix2Pix checkpoint folder {text!r} does not exist (expected a local diffusers pipeline folder "
            "with model_index.json, e.g. one written by save_pretrained, or a hub id in the local cache)"
        )
    return text
