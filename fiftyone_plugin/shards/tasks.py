"""What a shard does, one small class per task: captions, heatmaps, Syned variants.

The worker (``fiftyone_plugin.shards.worker``) calls, for each chunk of pairs, ``compute`` (no write)
and then ``write``, which writes the chunk's results and the job's mark through the plugin's one writer
of each field (``write_captions``, ``write_heatmaps``, ``add_variants``), so a sample is written once per
job however many attempts overlap. A pair is done when its reference sample carries the mark in
``mark_field``'s ``<field>_job``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import fiftyone as fo

from fiftyone_plugin import faults
from fiftyone_plugin.dataset import PAIR_ID
from fiftyone_plugin.writeback import JobMark, declare_fields, job_field, write_pairs


class ShardTask:
    """One kind of sharded job; ``settings`` are its parameters (stored in the ledger)."""

    name = ""

    def __init__(self, settings: dict):
        self.settings = dict(settings)
        self.check()

    @property
    def mark_field(self) -> str:
        """The field whose job mark (``<field>_job``) says that a pair is done."""
        raise NotImplementedError

    def mark(self, job: str) -> JobMark:
        return JobMark(job_field(self.mark_field), job)

    def check(self):
        """Raise ``ValueError`` naming a bad setting."""

    def stored_settings(self) -> dict:
        """What the ledger keeps: the settings with every default the job's meaning depends on filled in
        now, so that a job resumed after the defaults changed still does what it was queued to do."""
        return dict(self.settings)

    def prepare(self, dataset):
        """Declare what the workers will write, before several of them write at once."""

    modules: tuple[str, ...] = ()  # what ``load`` and the chunks import (torch and the model's code)

    def warm_up(self):
        """Import the task's heavy modules. Done before the shard is claimed: a fresh process importing
        torch holds the interpreter's lock long enough to delay the lease's heartbeat thread."""
        for module in self.modules:
            importlib.import_module(module)

    def load(self):
        """The model (or tools) the chunks need; loaded once per attempt."""

    def attempt_folder(self, job: str, shard: int, token: str) -> Path | None:
        """A folder of this attempt's own for files, if the task writes any."""
        return None

    def compute(self, dataset, model, pairs, folder: Path | None):
        """The chunk's results; nothing written to the dataset."""
        raise NotImplementedError

    def write(self, dataset, computed, mark: JobMark, lease) -> tuple[int, list[tuple[str, str]]]:
        """Write the results and the marks; return (samples written, [(pair id, why skipped)])."""
        raise NotImplementedError


def _identifier(name: str, value):
    if not str(value).isidentifier():
        raise ValueError(f"{name} must be a valid identifier (letters, digits, underscores), got {value!r}")


def _positive_ints(settings: dict, *names: str):
    """Refuse, when the job is queued, what every shard would fail on in its worker (checked here
    without importing torch: the workers check the settings before their heartbeat starts)."""
    for name in names:
        value = settings.get(name, 1)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


class CaptionTask(ShardTask):
    name = "caption"
    modules = ("idc_engine.model.loading", "idc_engine.inference.caption", "fiftyone_plugin.captioning")

    @property
    def mark_field(self) -> str:
        return self.settings["label_field"]

    def check(self):
        _identifier("label_field", self.settings.get("label_field"))
        _positive_ints(self.settings, "batch_size", "num_beams")

    def prepare(self, dataset):
        from fiftyone_plugin.captioning import caption_fields, record_caption_source

        declare_fields(dataset, caption_fields(self.mark_field, self.mark("")))
        record_caption_source(dataset, self.mark_field, self.settings.get("model"))

    def load(self):
        from idc_engine.model.loading import load_model

        return load_model(self.settings.get("model", "tiny"))

    def compute(self, dataset, model, pairs, folder):
        from idc_engine.inference.caption import GenerationConfig, caption_idc_pairs

        generation = GenerationConfig(
            batch_size=self.settings.get("batch_size", 16), num_beams=self.settings.get("num_beams", 1)
        )
        return caption_idc_pairs(model, pairs, generation)

    def write(self, dataset, computed, mark, lease):
        from fiftyone_plugin.captioning import write_captions

        return write_captions(dataset, self.mark_field, computed, mark=mark), list(computed.report.skipped)


class HeatmapTask(ShardTask):
    name = "heatmaps"
    modules = ("idc_engine.model.loading", "fiftyone_plugin.heatmaps")

    @property
    def mark_field(self) -> str:
        return self.settings["heatmap_field"]

    def check(self):
        _identifier("heatmap_field", self.settings.get("heatmap_field"))
        for name in ("regions_field", "caption_field"):
            if self.settings.get(name):
                _identifier(name, self.settings[name])
        _positive_ints(self.settings, "batch_size")
        from idc_engine.attention.regions import REGION_SOURCES, RegionConfig  # no torch: checked at queue time

        source = self.settings.get("region_source", RegionConfig.source)
        if source not in REGION_SOURCES:
            raise ValueError(f"region_source must be one of {REGION_SOURCES}, got {source!r}")
        if self.settings.get("regions_field") == self.mark_field:
            raise ValueError(f"regions_field must differ from heatmap_field, both are {self.mark_field!r}")

    def stored_settings(self) -> dict:
        from idc_engine.attention.regions import RegionConfig

        return {**self.settings, "region_source": self.settings.get("region_source", RegionConfig.source)}

    @property
    def region_source(self) -> str:
        # A job queued before the ledger kept the source was queued when 'attention' was the only default.
        return self.settings.get("region_source", "attention")

    def prepare(self, dataset):
        from fiftyone_plugin.heatmaps import heatmap_fields

        regions = self.settings.get("regions_field") or None
        declare_fields(dataset, heatmap_fields(self.mark_field, regions, self.mark("")))

    def load(self):
        from idc_engine.model.loading import load_model

        return load_model(self.settings.get("model", "tiny"))

    def compute(self, dataset, model, pairs, folder):
        from fiftyone_plugin.heatmaps import captions_of, heatmap_values

        chunk = dataset.match({PAIR_ID: {"$in": [p.id for p in pairs]}})
        return heatmap_values(
            model,
            pairs,
            captions_of(chunk, self.settings.get("caption_field")),
            kind=self.settings.get("kind", "qformer"),
            heatmap_field=self.mark_field,
            regions_field=self.settings.get("regions_field") or None,
            region_source=self.region_source,
            batch_size=self.settings.get("batch_size", 8),
        )

    def write(self, dataset, computed, mark, lease):
        from fiftyone_plugin.heatmaps import write_heatmaps

        regions = self.settings.get("regions_field") or None
        written = write_heatmaps(dataset, computed, self.mark_field, regions, mark=mark)
        return written, list(computed.report.skipped)


class SynedTask(ShardTask):
    """Syned variants of the chunk's pairs: edited into the attempt's own folder under ``out_dir``,
    added to the dataset (idempotently: ``fiftyone_plugin.syned``), then the sources marked."""

    name = "augment"
    modules = ("idc_engine.synth.augment", "idc_engine.synth.procedural", "fiftyone_plugin.syned")

    @property
    def mark_field(self) -> str:
        return "syned"  # sources carry the job in ``syned_job``

    def check(self):
        from idc_engine.synth.augment import SynedConfig

        out_dir = self.settings.get("out_dir")
        if not isinstance(out_dir, str) or not out_dir.strip():
            raise ValueError(f"out_dir must be a folder every worker can reach, got {out_dir!r}")
        SynedConfig(**self.settings.get("config", {}))  # its own errors name the bad argument

    def prepare(self, dataset):
        from fiftyone_plugin.syned import prepare_for_variants

        prepare_for_variants(dataset)
        declare_fields(dataset, {job_field(self.mark_field): (fo.StringField, {})})

    def load(self):
        from idc_engine.synth.augment import load_editor, load_variator

        editor = load_editor(self.settings.get("editor", "procedural"))
        return editor, load_variator(self.settings.get("variator", "template"))

    def attempt_folder(self, job, shard, token):
        # Each attempt edits into a folder of its own: two attempts of one shard (a slow one and the
        # one that took it over) never append to one items file.
        return Path(self.settings["out_dir"]) / f"{job}-shard-{shard}" / f"attempt-{token[:12]}"

    def compute(self, dataset, model, pairs, folder):
        from idc_engine.data.manifest import read_manifest
        from idc_engine.synth.augment import SYNTHETIC, SynedConfig, augment

        editor, variator = model
        report = augment(pairs, folder, SynedConfig(**self.settings.get("config", {})), editor, variator)
        return pairs, read_manifest(folder / SYNTHETIC), report

    def write(self, dataset, computed, mark, lease):
        from fiftyone_plugin.syned import add_variants
        from idc_engine.synth.augment import SynedConfig

        pairs, synthetic, report = computed
        add_variants(dataset, synthetic, SynedConfig(**self.settings.get("config", {})).seed)
        faults.boundary("shard.between_add_and_mark")
        lease.check()
        skipped = list(report.skipped_sources)
        skipped_ids = {pair_id for pair_id, _ in skipped}
        written = write_pairs(dataset, {p.id: {} for p in pairs if p.id not in skipped_ids}, mark=mark)
        return written, skipped


TASKS = {task.name: task for task in (CaptionTask, HeatmapTask, SynedTask)}


def task_for(name: str, settings: dict) -> ShardTask:
    if name not in TASKS:
        raise ValueError(f"task must be one of {tuple(TASKS)}, got {name!r}")
    return TASKS[name](settings)
