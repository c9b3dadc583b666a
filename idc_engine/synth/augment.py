"""Syned: grow an IDC dataset with edited variants of its originals, each with its own captions.

For every source pair of the chosen splits (never test) and every variant ``v``:

- shapes-change pairs: their own change is carried out again on the reference scene by re-rendering
  (``edit_shapes_scene``): a new modified image of the same instruction, captioned by the benchmark's
  templates, so the variants are valid shapes-change pairs;
- other pairs: the editor edits the reference image with the pair's instruction
  (``metadata["instruction"]``; the procedural editor writes its own when there is none), and the
  variator turns the instruction carried out into ``captions`` reference captions;
- the quality filter rejects an edit that changed nothing or, for a local category, everything.

Each variant's seed depends only on the run's seed, the source pair and ``v``, so the same seed gives
the same bytes, whatever else is augmented. Finished items are appended to ``items.jsonl`` (flushed
to disk) as they are done, so a run killed midway resumes where it stopped. At the end
``synthetic.jsonl`` holds the accepted variants, ``manifest.jsonl`` the sources with them (ready for
``idc train``), and ``report.json`` every count by reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from idc_engine.data.images import load_image
from idc_engine.data.manifest import write_manifest
from idc_engine.data.pair import SPLITS, IDCPair
from idc_engine.errors import ImageLoadError
from idc_engine.provenance import provenance
from idc_engine.synth.quality import QualityConfig, QualityFilter

ITEMS, SYNTHETIC, MANIFEST, REPORT = "items.jsonl", "synthetic.jsonl", "manifest.jsonl", "report.json"
SHAPES_ATTEMPTS = 10


@dataclass
class SynedConfig:
    variations: int = field(default=8, metadata={"help": "edited variants per original (the paper: 8)"})
    captions: int = field(default=5, metadata={"help": "reference captions written for each variant"})
    seed: int = field(default=0, metadata={"help": "seeds every edit and caption; the same seed, the same bytes"})
    splits: tuple[str, ...] = field(default=("train",), metadata={"help": "splits whose pairs are augmented"})
    quality: QualityConfig = field(default_factory=QualityConfig)

    def __post_init__(self):
        if isinstance(self.quality, dict):
            self.quality = QualityConfig(**self.quality)
        if isinstance(self.splits, str):
            self.splits = tuple(s.strip() for s in self.splits.split(",") if s.strip())
        self.splits = tuple(self.splits)
        for name in ("variations", "captions"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if not self.splits or any(s not in SPLITS for s in self.splits):
            raise ValueError(f"splits must be a non-empty subset of {SPLITS}, got {self.splits!r}")
        if "test" in self.splits:
            raise ValueError("splits: never augment the test split (its variants would leak into training)")


@dataclass
class AugmentReport:
    sources: int = 0
    variants: int = 0  # edits made (accepted or not)
    accepted: int = 0
    rejected: Counter = field(default_factory=Counter)  # quality filter, by reason
    caption_rejections: Counter = field(default_factory=Counter)  # variator guardrails, by reason
    caption_fallbacks: int = 0
    skipped_sources: list[tuple[str, str]] = field(default_factory=list)  # unreadable, or nothing to edit with
    resumed: int = 0  # items found done on disk
    editors: Counter = field(default_factory=Counter)  # variants by the editor that really made them

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "rejected": dict(self.rejected),
            "caption_rejections": dict(self.caption_rejections),
            "editors": dict(self.editors),
        }


def load_editor(spec: str = "procedural", device: str | None = None, settings=None):
    """'procedural' (offline, no model) or the folder of a local InstructPix2Pix checkpoint, run with
    ``settings`` (an ``InstructPix2PixConfig`` or a dict of its fields: working size, steps, guidance sweep,
    scheduler, ...); ``device`` overrides theirs."""
    if spec == "procedural":
        from idc_engine.synth.procedural import ProceduralEditor

        return ProceduralEditor()
    from dataclasses import replace

    from idc_engine.synth.ip2p import InstructPix2PixConfig, InstructPix2PixEditor

    config = settings if isinstance(settings, InstructPix2PixConfig) else InstructPix2PixConfig(**(settings or {}))
    if device is not None:
        config = replace(config, device=device)
    return InstructPix2PixEditor(spec, config)


def load_variator(spec: str = "template", device: str | None = None):
    """'template' (offline rewrites) or the folder of a local causal LM (the paper: Llama-2-7b-chat)."""
    from idc_engine.synth.llm_variator import LLMVariator, LLMVariatorConfig
    from idc_engine.synth.templates import TemplateVariator

    if spec == "template":
        return TemplateVariator()
    return LLMVariator(LLMVariatorConfig(model_path=spec, device=device or "auto"))


def variant_seed(seed: int, pair_id: str, variant: int) -> int:
    """A variant's seed: from the run's seed and the pair alone, plus ``variant`` (consecutive per pair,
    so that an editor's sweep over seeds, such as IP2P's guidance scales, cycles over the variants)."""
    digest = hashlib.sha256(f"syned:{seed}:{pair_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") * 64 + variant


def _file_stem(pair_id: str, variant: int) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", pair_id) + f"--syn{variant}"


def _is_shapes(pair: IDCPair) -> bool:
    return isinstance(pair.metadata, dict) and "objects_reference" in pair.metadata


def augment(
    pairs: list[IDCPair],
    out_dir,
    config: SynedConfig | None = None,
    editor=None,
    variator=None,
    progress=None,
    image_progress=None,
) -> AugmentReport:
    """Write Syned variants of ``pairs`` (those of ``config.splits``) under ``out_dir``; see the module docstring.

    ``editor`` defaults to the procedural editor and ``variator`` to the template variator (offline).
    ``progress(done, total)`` is called after each source pair; it may raise to stop (resumable).
    ``image_progress(done, total, seconds)`` after each batch of edited images (``editor.config.batch_size``
    at a time when the editor has one, else a source's variants), with the images edited so far in this run,
    those to edit in all, and the seconds spent editing: enough for a per-image rate and an estimate.
    """
    from idc_engine.synth.procedural import ProceduralEditor
    from idc_engine.synth.templates import TemplateVariator

    config = config or SynedConfig()
    editor = editor or ProceduralEditor()
    variator = variator or TemplateVariator()
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    judge = QualityFilter(config.quality)
    # Variants are not augmented again (a dataset that already holds them is augmented as it was).
    sources = [p for p in pairs if p.split in config.splits and not (p.metadata or {}).get("synthetic")]
    done = _read_items(out_dir / ITEMS)
    report = AugmentReport(sources=len(sources))
    started = time.perf_counter()
    to_edit = sum(not _finished(done.get((p.id, v)), out_dir) for p in sources for v in range(config.variations))
    images = _ImageClock(to_edit, image_progress)
    with (out_dir / ITEMS).open("a", encoding="utf-8") as items:
        for index, pair in enumerate(sources):
            todo = [v for v in range(config.variations) if not _finished(done.get((pair.id, v)), out_dir)]
            report.resumed += config.variations - len(todo)
            if todo:
                try:
                    records = _variants(pair, todo, config, editor, variator, judge, out_dir, images)
                except (ImageLoadError, ValueError) as exc:
                    report.skipped_sources.append((pair.id, str(exc)))
                    records = []
                for record in records:
                    line = json.dumps(record, sort_keys=True)
                    # Kept as a resumed run reads it back, so that both write the same bytes.
                    done[(pair.id, record["variant"])] = json.loads(line)
                    items.write(line + "\n")
                items.flush()
                os.fsync(items.fileno())
            if progress is not None:
                progress(index + 1, len(sources))
    synthetic = []
    for pair in sources:
        for variant in range(config.variations):
            record = done.get((pair.id, variant))
            if record is None:
                continue
            report.variants += 1
            report.editors[record["editor"].get("editor", "unknown")] += 1
            report.caption_rejections.update(record["caption_rejections"])
            report.caption_fallbacks += record["caption_fallbacks"]
            if record["rejected"]:
                report.rejected[record["rejected"]] += 1
                continue
            report.accepted += 1
            synthetic.append(_synthetic_pair(pair, record, out_dir))
    write_manifest(synthetic, out_dir / SYNTHETIC)
    write_manifest(list(pairs) + synthetic, out_dir / MANIFEST)
    record = provenance(
        config=asdict(config),
        seed=config.seed,
        editor=getattr(editor, "name", type(editor).__name__),
        editor_settings=_json_settings(getattr(editor, "config", None)),
        editors_used=dict(report.editors),
        variator=getattr(variator, "name", type(variator).__name__),
        report=report.to_dict(),
        seconds=round(time.perf_counter() - started, 1),
    )
    (out_dir / REPORT).write_text(json.dumps(record, indent=2, default=str) + "\n")
    return report


def _json_settings(config) -> dict | None:
    try:
        return asdict(config)
    except TypeError:  # no dataclass
        return None


def _read_items(path: Path) -> dict[tuple[str, int], dict]:
    """Items a previous run finished; a torn last line (a kill mid-write) is dropped and redone."""
    done = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            done[(record["source"], record["variant"])] = record
    return done


def _finished(record: dict | None, out_dir: Path) -> bool:
    return record is not None and (record["rejected"] or (out_dir / record["image"]).is_file())


class _ImageClock:
    """Counts edited images against the run's total and reports them with the seconds spent editing."""

    def __init__(self, total: int, report=None):
        self.total, self.report, self.done, self.seconds = total, report, 0, 0.0

    def edited(self, count: int, seconds: float) -> None:
        self.done += count
        self.seconds += seconds
        if self.report is not None:
            self.report(self.done, self.total, self.seconds)


def _variants(pair, todo, config, editor, variator, judge, out_dir, images) -> list[dict]:
    reference = load_image(pair.reference, pair.id)
    seeds = {v: variant_seed(config.seed, pair.id, v) for v in todo}
    if _is_shapes(pair):
        edits = []
        for v in todo:
            started = time.perf_counter()
            edits.append(_shapes_edit(pair, reference, seeds[v]))
            images.edited(1, time.perf_counter() - started)
    else:
        instruction = (pair.metadata or {}).get("instruction")
        from idc_engine.synth.editors import CATEGORIES

        category = pair.category if pair.category in CATEGORIES else None
        items = [(reference, instruction, category, seeds[v]) for v in todo]
        # In chunks of the editor's own batch size, so that a slow editor (a diffusion model on a CPU) reports
        # each batch of images as it finishes; the same items in the same batches give the same pixels.
        chunk = getattr(getattr(editor, "config", None), "batch_size", None) or len(items)
        edits = []
        for start in range(0, len(items), chunk):
            started = time.perf_counter()
            results = editor.edit_batch(items[start : start + chunk])
            images.edited(len(results), time.perf_counter() - started)
            edits += [_EditOutcome(r.image, r.instruction, r.category, r.settings, None, {}) for r in results]
    metadata = pair.metadata or {}
    before_after = (metadata.get("caption_before"), metadata.get("caption_after"))
    # The captions of all of a source's edits in one variator call (an LLM batches them into one generation).
    asked = [(v, e) for v, e in zip(todo, edits) if e.captions is None]
    varied = dict(
        zip([v for v, _ in asked], variator.vary_batch([(e.instruction, config.captions, seeds[v]) for v, e in asked]))
    )
    records = []
    for variant, edit in zip(todo, edits):
        rejected, scores = judge.judge(
            reference,
            edit.image,
            edit.category,
            edit.instruction,
            captions=before_after,
            safety_flagged=edit.settings.get("nsfw_flagged"),
        )
        if edit.captions is not None:
            captions, caption_rejections, fallbacks, variator_settings = edit.captions, {}, 0, {"variator": "shapes"}
        else:
            result = varied[variant]
            captions, caption_rejections, fallbacks = result.variations, result.rejected, result.fallbacks
            variator_settings = result.settings
        image = f"images/{_file_stem(pair.id, variant)}.png"
        if not rejected:
            edit.image.save(out_dir / image, format="PNG")
        records.append(
            {
                "source": pair.id,
                "variant": variant,
                "seed": seeds[variant],
                "image": image,
                "instruction": edit.instruction,
                "category": edit.category,
                "captions": captions,
                "editor": edit.settings,
                "variator": variator_settings,
                "caption_rejections": dict(caption_rejections),
                "caption_fallbacks": fallbacks,
                "quality": scores,
                "rejected": rejected,
                "scene": edit.scene,
            }
        )
    return records


@dataclass
class _EditOutcome:
    image: object
    instruction: str
    category: str | None
    settings: dict
    captions: list[str] | None  # written by the editor itself (shapes scenes), else by the variator
    scene: dict


def _shapes_edit(pair, reference, seed) -> _EditOutcome:
    """The pair's own change, carried out again on its reference scene (the same instruction)."""
    from idc_engine.data.shapes_change import ShapesChangeConfig
    from idc_engine.synth.shapes import edit_shapes_scene, scene_background

    change = pair.captions[0] if pair.captions else None
    shapes = ShapesChangeConfig(image_size=reference.size[0])
    background = scene_background(reference)
    for attempt in range(SHAPES_ATTEMPTS):
        try:
            # A crowded scene may have no free place for this draw of an added or moved object: draw again.
            edit = edit_shapes_scene(
                pair.metadata["objects_reference"], change, seed + attempt * 1_000_003, shapes, background=background
            )
            break
        except ValueError:
            if attempt == SHAPES_ATTEMPTS - 1:
                raise
    return _EditOutcome(edit.modified, edit.instruction, edit.category, edit.settings, edit.captions, edit.metadata)


def _synthetic_pair(source: IDCPair, record: dict, out_dir: Path) -> IDCPair:
    metadata = {
        **(record["scene"] or {}),
        "synthetic": True,
        "source_pair": source.id,
        "variant": record["variant"],
        "seed": record["seed"],
        "instruction": record["instruction"],
        "editor": record["editor"],
        "variator": record["variator"],
        "caption_rejections": record["caption_rejections"],
        "caption_fallbacks": record["caption_fallbacks"],
        "quality": record["quality"],
    }
    return IDCPair(
        id=f"{source.id}--syn{record['variant']}",
        reference=source.reference,
        modified=out_dir / record["image"],
        captions=record["captions"],
        split="train",
        category=record["category"],
        metadata=metadata,
    )
