"""Reproduce the embedded tiny checkpoints: BLIP-2's pretraining, in miniature, on a CPU.

A real BLIP2IDC starts from a BLIP-2 that has learned to see and to describe images. The tiny
preset has no such checkpoint to start from, and trained from scratch on difference captions alone
it collapses to the language prior (see README). So it is pretrained here, from random weights,
the way the paper's thesis suggests: half of the examples ask it to describe what is in both
images ("top: a red circle and a blue square. bottom: ..."), which forces the vision side to read
every object, and half to caption the difference. The pretraining pairs come from shapes-change
with a seed of their own, so the demo's and the tests' pairs (seed 0) are never seen.

The photo preset (``tiny-photo``, :func:`pretrain_tiny_photo`) is pretrained the same way on
photo-edits pairs cut from the training photographs only, with a tokenizer trained on the photo
captions; its description task names the colour of each cell of a 3 x 3 grid in both images.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from idc_engine.data.manifest import read_manifest
from idc_engine.data.pair import IDCPair, split_pairs
from idc_engine.data.photo_edits import PHOTO_SPLITS, PhotoEditsConfig
from idc_engine.data.photo_edits import TEMPLATES as PHOTO_TEMPLATES
from idc_engine.data.photo_edits import describe_pair as describe_photo_pair
from idc_engine.data.photo_edits import generate as generate_photo_edits
from idc_engine.data.shapes_change import TEMPLATES, ShapesChangeConfig, describe_pair, generate
from idc_engine.model.config import BLIP2IDCConfig
from idc_engine.model.tiny import DESCRIBE_PROMPT, TinyPresetConfig, build_tiny, photo_tokenizer_corpus
from idc_engine.provenance import git_revision, provenance
from idc_engine.train.augment import AugmentConfig
from idc_engine.train.config import TrainConfig
from idc_engine.train.loop import train

PRETRAIN_RECORD = "pretraining.json"


@dataclass
class PretrainConfig:
    data_seed: int = field(default=1_000_003, metadata={"help": "shapes-change seed, distinct from the demo's 0"})
    pairs: int = field(default=40_000, metadata={"help": "training pairs generated for pretraining"})
    validation_pairs: int = field(default=300, metadata={"help": "validation pairs (difference captions)"})
    shared_edit_share: float = field(
        default=0.4, metadata={"help": "fraction of training pairs whose original already carries an edit"}
    )
    description_share: float = field(
        default=0.5, metadata={"help": "fraction of examples that describe both scenes instead of the difference"}
    )
    steps: int = field(default=28_000, metadata={"help": "optimizer steps (about an hour on 2 CPU cores)"})
    learning_rate: float = field(default=1e-3, metadata={"help": "peak learning rate (full training)"})
    batch_size: int = field(default=32, metadata={"help": "pairs per step"})
    seed: int = field(default=0, metadata={"help": "seed of the initial weights, data order and augmentation"})
    encoding: str = field(default="concat", metadata={"help": "'concat' (BLIP2IDC), 'difference' or 'two-stream'"})
    minutes: float | None = field(
        default=None, metadata={"help": "stop after this many minutes (benchmarks at equal CPU budget)"}
    )

    def __post_init__(self):
        if not 0.0 <= self.description_share < 1.0:
            raise ValueError(f"description_share must be in [0, 1), got {self.description_share!r}")
        _check_descriptions(self.encoding, self.description_share)
        if self.steps < 1:
            raise ValueError(f"steps must be positive, got {self.steps!r}")
        if self.pairs < 100:
            raise ValueError(f"pairs must be at least 100, got {self.pairs!r}")


def _check_descriptions(encoding: str, description_share: float):
    """A description answers "top: <reference>. bottom: <modified>": with the 'difference' encoding the
    top panel is the difference image, so the description would name an image the model does not see."""
    if encoding == "difference" and description_share:
        raise ValueError(
            f"description_share must be 0 with the 'difference' encoding (its descriptions name the reference "
            f"as the top image, where the difference is), got {description_share!r}"
        )


def description_pairs(pairs: list[IDCPair], describe=describe_pair) -> list[IDCPair]:
    """The same image pairs, captioned with both images (``describe(metadata)``), asked with the description prompt."""
    return [
        IDCPair(
            id=f"{p.id}-describe",
            reference=p.reference,
            modified=p.modified,
            captions=[describe(p.metadata)],
            split=p.split,
            category="describe",
            metadata={"prompt": DESCRIBE_PROMPT},
        )
        for p in pairs
    ]


def mixture(pairs: list[IDCPair], share: float, describe=describe_pair) -> list[IDCPair]:
    """Difference pairs plus enough description pairs that they make up ``share`` of the mixture."""
    if share == 0:
        return list(pairs)
    count = round(len(pairs) * share / (1.0 - share))
    described = description_pairs(pairs, describe)
    repeats = -(-count // len(described))
    return list(pairs) + (described * repeats)[:count]


def pretrain_tiny(config: PretrainConfig, out_dir, preset: TinyPresetConfig | None = None) -> Path:
    """Pretrain a tiny BLIP2IDC from random weights and save it to ``out_dir`` as a full checkpoint."""
    out_dir = Path(out_dir)
    started, revision = time.time(), git_revision()
    work = Path(tempfile.mkdtemp(prefix="idc-pretrain-"))
    try:
        data_config = ShapesChangeConfig(seed=config.data_seed)
        manifest = generate(work / "data", config.pairs, 0, config.validation_pairs, data_config)
        pairs = read_manifest(manifest)
        train_pairs = mixture(split_pairs(pairs, "train"), config.description_share)
        # Taught to say "no change" in five ways: training ends by calibrating its no-change decision.
        model = build_tiny(preset, BLIP2IDCConfig(encoding=config.encoding, no_change_captions=TEMPLATES["none"]))
        # Steps, not minutes, so that the same command reproduces the same checkpoint on any machine.
        train_config = TrainConfig(
            finetune="full",
            learning_rate=config.learning_rate,
            batch_size=config.batch_size,
            max_steps=config.steps,
            time_budget_s=config.minutes * 60 if config.minutes else None,
            warmup_steps=300,
            schedule="cosine",
            min_lr_ratio=0.05,
            eval_every=2000,
            eval_max_pairs=config.validation_pairs,
            checkpoint_every=1000,
            seed=config.seed,
            # Every modified image already carries JPEG, blur or brightness noise.
            augment=AugmentConfig(blur_probability=0.0, jpeg_probability=0.0),
        )
        result = train(model, train_pairs, split_pairs(pairs, "validation"), train_config, work / "run")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        shutil.copytree(result.model_dir, out_dir)
        record = provenance(
            config=asdict(config),
            seed=config.seed,
            revision=revision,
            preset=asdict(preset or TinyPresetConfig()),
            shapes_change=asdict(data_config),
            steps=result.steps,
            best=result.best,
            minutes=round((time.time() - started) / 60, 1),
        )
        (out_dir / PRETRAIN_RECORD).write_text(json.dumps(record, indent=2, default=str))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out_dir


@dataclass
class PhotoPretrainConfig:
    """How ``tiny-photo`` is pretrained; the only home of these defaults."""

    data_seed: int = field(default=2_000_003, metadata={"help": "photo-edits seed, distinct from the benchmark's 0"})
    pairs: int = field(default=14_000, metadata={"help": "training pairs (crops of the training photographs)"})
    validation_pairs: int = field(default=300, metadata={"help": "validation pairs (the validation photograph)"})
    unchanged_share: float = field(
        default=0.25, metadata={"help": "fraction of training pairs with no edit (few false alarms need many)"}
    )
    shared_edit_share: float = field(
        default=0.4, metadata={"help": "fraction of training pairs whose original already carries an edit"}
    )
    description_share: float = field(
        default=0.0, metadata={"help": "fraction of examples that describe both images instead of the difference"}
    )
    encoding: str = field(
        default="difference",
        metadata={
            "help": "'difference': the modified photograph and its difference from the original (a model this "
            "small, trained from scratch on 15 photographs, learns the edit instead of the photographs); 'concat': "
            "the two photographs (BLIP2IDC)"
        },
    )
    steps: int = field(
        default=18_000, metadata={"help": "optimizer steps (65 minutes on 2 CPU cores, 75 with the pairs' making)"}
    )
    learning_rate: float = field(default=1e-3, metadata={"help": "peak learning rate (full training)"})
    batch_size: int = field(default=32, metadata={"help": "pairs per step"})
    image_size: int = field(default=128, metadata={"help": "side of the model's input and of each pair's images"})
    patch_size: int = field(default=16, metadata={"help": "ViT patch side, in pixels"})
    seed: int = field(default=0, metadata={"help": "seed of the initial weights, data order and augmentation"})
    eval_every: int = field(default=1000, metadata={"help": "validate (CIDEr-D) every N steps; the best step is kept"})
    loader_workers: int = field(default=1, metadata={"help": "processes preparing batches beside the model"})
    data_workers: int = field(default=2, metadata={"help": "processes generating the pairs (same pairs for any)"})
    threads: int = field(
        default=1, metadata={"help": "torch threads of the model (the loader takes the other core of two)"}
    )
    minutes: float | None = field(default=None, metadata={"help": "stop after this many minutes"})

    def __post_init__(self):
        if not 0.0 <= self.description_share < 1.0:
            raise ValueError(f"description_share must be in [0, 1), got {self.description_share!r}")
        if not 0.0 <= self.unchanged_share < 1.0:
            raise ValueError(f"unchanged_share must be in [0, 1), got {self.unchanged_share!r}")
        if self.encoding not in ("concat", "difference"):
            raise ValueError(f"encoding must be 'concat' or 'difference', got {self.encoding!r}")
        _check_descriptions(self.encoding, self.description_share)
        if self.steps < 1:
            raise ValueError(f"steps must be positive, got {self.steps!r}")
        if self.pairs < 100:
            raise ValueError(f"pairs must be at least 100, got {self.pairs!r}")

    def preset(self) -> TinyPresetConfig:
        # 640 leaves room for every word of the photo captions to be one token (the corpus needs ~590).
        return TinyPresetConfig(
            image_size=self.image_size, patch_size=self.patch_size, vocab_size=640, position_init="sincos"
        )

    def data(self) -> PhotoEditsConfig:
        return PhotoEditsConfig(
            image_size=self.image_size,
            unchanged_share=self.unchanged_share,
            shared_edit_share=self.shared_edit_share,
            seed=self.data_seed,
        )


def _photo_data(config: PhotoPretrainConfig, data_dir: Path, workers: int) -> Path:
    """The pretraining pairs, generated once per work folder (again only when the data settings changed)."""
    wanted = {"pairs": config.pairs, "validation": config.validation_pairs, "photo_edits": asdict(config.data())}
    wanted = json.loads(json.dumps(wanted))
    stamp, manifest = data_dir / "data.json", data_dir / "manifest.jsonl"
    if manifest.is_file() and stamp.is_file() and json.loads(stamp.read_text()) == wanted:
        return manifest
    manifest = generate_photo_edits(data_dir, config.pairs, 0, config.validation_pairs, config.data(), workers=workers)
    stamp.write_text(json.dumps(wanted))
    return manifest


def _wait_for_photo_data(
    config: PhotoPretrainConfig, data_dir: Path, timeout_s: float = 3 * 3600, poll_s: float = 5.0
) -> Path:
    """On the other ranks of a launched run: the pairs rank 0 generates, once they are all written."""
    wanted = json.loads(json.dumps({"pairs": config.pairs, "validation": config.validation_pairs}))
    stamp, deadline = data_dir / "data.json", time.monotonic() + timeout_s
    while not (stamp.is_file() and {k: json.loads(stamp.read_text()).get(k) for k in wanted} == wanted):
        if time.monotonic() > deadline:
            raise TimeoutError(f"work_dir: rank 0 wrote no pairs under {data_dir} within {timeout_s:.0f} s")
        time.sleep(poll_s)
    return data_dir / "manifest.jsonl"


START_RECORD = "preset.json"


def _record_or_check_start(path: Path, preset: dict, resume: bool, main: bool):
    """The model a run started from, written when it starts: a resumed run's record names its real start
    (a run begun before position_init existed began from random positions whatever the code says now)."""
    if not resume:
        if main:
            path.write_text(json.dumps(preset, indent=2))
        return
    if not path.is_file():
        raise ValueError(
            f"resume: {path.parent} has no {path.name}, so the model its run started from is not known (a run "
            "begun by an idc before position_init was recorded); start it again without resume"
        )
    started = json.loads(path.read_text())
    changed = sorted(k for k in set(started) | set(preset) if started.get(k) != preset.get(k))
    if changed:
        name = changed[0]
        raise ValueError(
            f"resume: the run in {path.parent} started from another model ({name} {started.get(name)!r}, "
            f"now {preset.get(name)!r}); start it again without resume"
        )


def pretrain_tiny_photo(config: PhotoPretrainConfig, out_dir, work_dir=None, resume: bool = False) -> Path:
    """Pretrain ``tiny-photo`` from random weights and save it to ``out_dir`` as a full checkpoint.

    ``work_dir`` keeps the generated pairs and the run's checkpoints (a temporary folder, removed at
    the end, when None); with ``resume`` a killed run continues from its last checkpoint there.
    Started by ``torchrun --nproc_per_node 2`` each process takes half of every batch (one per core:
    on a CPU shared with other work, two processes get twice the share of one); rank 0 generates the
    pairs and writes the checkpoint, and the run is the same as in one process.
    """
    from idc_engine.train.distributed import is_main_process, launched

    out_dir = Path(out_dir)
    started, revision = time.time(), git_revision()
    if resume and work_dir is None:
        raise ValueError("resume: needs the work_dir of the run to continue")
    if launched() and work_dir is None:
        raise ValueError("work_dir: a run of several processes needs one folder they all share")
    import torch

    torch.set_num_threads(config.threads)
    main = is_main_process()
    work = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="idc-pretrain-photo-"))
    try:
        if main:
            manifest = _photo_data(config, work / "data", workers=config.data_workers)
        else:
            manifest = _wait_for_photo_data(config, work / "data")
        pairs = read_manifest(manifest)
        train_pairs = mixture(split_pairs(pairs, "train"), config.description_share, describe_photo_pair)
        # Taught to say "no change" in five ways: training ends by calibrating its no-change decision.
        idc_config = BLIP2IDCConfig(encoding=config.encoding, no_change_captions=PHOTO_TEMPLATES["none"])
        preset = config.preset()
        _record_or_check_start(work / START_RECORD, asdict(preset), resume, main)
        model = build_tiny(preset, idc_config, corpus=photo_tokenizer_corpus(idc_config.prompt))
        train_config = TrainConfig(
            finetune="full",
            learning_rate=config.learning_rate,
            batch_size=config.batch_size,
            max_steps=config.steps,
            time_budget_s=config.minutes * 60 if config.minutes else None,
            warmup_steps=300,
            schedule="cosine",
            min_lr_ratio=0.05,
            eval_every=config.eval_every,
            eval_max_pairs=config.validation_pairs,
            checkpoint_every=500,
            loader_workers=config.loader_workers,
            seed=config.seed,
            # Every modified image already carries re-encoding or resizing.
            augment=AugmentConfig(blur_probability=0.0, jpeg_probability=0.0),
        )
        run = work / "run"
        result = train(
            model, train_pairs, split_pairs(pairs, "validation"), train_config, run, resume=resume, overwrite=not resume
        )
        if not main:
            return out_dir
        if out_dir.exists():
            shutil.rmtree(out_dir)
        shutil.copytree(result.model_dir, out_dir)
        record = provenance(
            config=asdict(config),
            seed=config.seed,
            revision=revision,
            preset=asdict(preset),
            photo_edits=asdict(config.data()),
            photographs={split: list(PHOTO_SPLITS[split]) for split in ("train", "validation")},
            steps=result.steps,
            best=result.best,
            minutes=round((time.time() - started) / 60, 1),
            processes=int(os.environ.get("WORLD_SIZE", "1") or 1),
        )
        (out_dir / PRETRAIN_RECORD).write_text(json.dumps(record, indent=2, default=str))
    finally:
        if work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    return out_dir
