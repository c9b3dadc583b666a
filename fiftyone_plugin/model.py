"""BLIP2IDC as a FiftyOne model, for ``apply_model`` on the ``modified`` slice of an IDC dataset.

    view = dataset.select_group_slices("modified")
    view.apply_model(BLIP2IDCModel(BLIP2IDCModelConfig(model="tiny")), label_field="idc_caption")

For each modified sample the model reads the reference image of the same group (looked up when the
batch runs, so groups added since the model was built are found). It captions through the same
path as the ``apply_blip2idc`` operator: a pair whose reference image cannot be read is skipped,
counted and reported (``last_report`` and a warning), never its whole batch. (FiftyOne decodes each
modified image itself before it calls a model, and skips a batch in which one fails; its loader that
would not, the data-loader path, needs torchvision. The operator skips per pair for both images.)
When ``apply_model`` finishes, each caption is also written to the reference sample of its pair,
under the ``label_field`` the call named, with the model's confidence in ``<label_field>_confidence``
on both slices.

FiftyOne hands a model its samples but not the ``label_field`` it was called with; the field is the
one that FiftyOne's own write added to the samples of a batch (see ``_written_field``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import fiftyone.core.models as fom

from fiftyone_plugin.captioning import write_captions
from fiftyone_plugin.dataset import pairs_of_samples
from idc_engine.attention.regions import REGION_SOURCES, RegionConfig
from idc_engine.data.loading import LoadReport
from idc_engine.inference.caption import CaptionResult, GenerationConfig, caption_idc_pairs

logger = logging.getLogger(__name__)
WATCHED_SAMPLES = 32


@dataclass
class BLIP2IDCModelConfig:
    model: str = field(default="tiny", metadata={"help": "checkpoint folder, hub id, adapter folder or 'tiny'"})
    adapter: str | None = field(default=None, metadata={"help": "LoRA adapter folder applied on `model`"})
    base_model: str | None = field(
        default=None, metadata={"help": "base of an adapter folder `model` made on another machine"}
    )
    device: str | None = field(default=None, metadata={"help": "cuda, mps or cpu (default: the best available)"})
    num_beams: int = 1
    max_new_tokens: int = 30
    attention_field: str | None = field(
        default=None, metadata={"help": "also write an attention fo.Heatmap to this field on both slices"}
    )
    # qformer points at the change best on shapes-change (benchmarks/localization.py)
    attention_kind: str = field(default="qformer", metadata={"help": "cls, rollout or qformer"})
    regions_field: str | None = field(
        default=None,
        metadata={"help": "with attention_field: difference regions (fo.Detections) on the modified slice"},
    )
    region_source: str = field(
        default=RegionConfig.source,
        metadata={"help": "regions from 'attention', 'pixels' or 'auto' (pixels for tiny-photo's difference encoding)"},
    )

    def __post_init__(self):
        if self.region_source not in REGION_SOURCES:
            raise ValueError(f"region_source must be one of {REGION_SOURCES}, got {self.region_source!r}")

    def generation(self, batch_size: int) -> GenerationConfig:
        return GenerationConfig(batch_size=batch_size, num_beams=self.num_beams, max_new_tokens=self.max_new_tokens)


class BLIP2IDCModel(fom.SamplesMixin, fom.Model):
    """A samples-aware, batched FiftyOne model that captions (reference, modified) pairs."""

    def __init__(self, config: BLIP2IDCModelConfig | None = None, model=None):
        fom.SamplesMixin.__init__(self)
        self.config = config or BLIP2IDCModelConfig()
        self._idc = model
        self._begin()

    def _begin(self):
        self.last_report = LoadReport()
        self._results = CaptionResult()
        self._dataset = None
        self._watched = []  # (sample, its field names before FiftyOne wrote the label)
        self._refused: Exception | None = None

    # --------------------------------------------------------------------------------- FiftyOne
    @property
    def media_type(self):
        return "image"

    @property
    def ragged_batches(self):
        return False

    @property
    def transforms(self):
        return None

    @property
    def preprocess(self):
        return False

    @preprocess.setter
    def preprocess(self, value):
        pass

    def __enter__(self):
        self._begin()
        return self

    def __exit__(self, exc_type, exc, traceback):
        """Mirror this call's captions under its label field; report skips; raise a refusal."""
        if self._results.captions:
            label_field = self._written_field()
            if label_field is not None:
                write_captions(self._dataset, label_field, self._results, model_spec=self.idc.spec)
        if self.last_report.skipped:
            logger.warning("BLIP2IDC skipped pairs whose images could not be read: %s", self.last_report.summary())
        if self._refused is not None and exc_type is None:
            raise self._refused
        return False

    # --------------------------------------------------------------------------------- captioning
    @property
    def idc(self):
        if self._idc is None:
            from idc_engine.model.loading import load_model

            self._idc = load_model(
                self.config.model,
                adapter=self.config.adapter,
                device=self.config.device,
                base_model=self.config.base_model,
            )
            self._idc.eval()
        return self._idc

    def predict(self, arg, sample=None):
        return self.predict_all([arg], samples=[sample])[0]

    def predict_all(self, args, samples=None):
        if samples is None:
            raise ValueError("samples: BLIP2IDC needs the samples, to find each one's reference image")
        dataset = samples[0]._dataset
        try:
            by_sample = pairs_of_samples(dataset, [s.id for s in samples])
        except ValueError as exc:
            # apply_model logs a batch's error and goes on; this one concerns every batch, so it is
            # raised again when apply_model finishes (__exit__).
            self._refused = self._refused or exc
            raise
        pairs = [by_sample[s.id] for s in samples]
        result = caption_idc_pairs(self.idc, pairs, self.config.generation(len(pairs)))
        self._dataset = dataset
        self._results.captions.update(result.captions)
        self._results.confidences.update(result.confidences)
        self.last_report.loaded += result.report.loaded
        self.last_report.skipped.extend(result.report.skipped)
        for sample, pair in zip(samples, pairs):
            # A few captioned samples suffice to see which field FiftyOne writes; keeping every one
            # would hold the whole collection in memory.
            if pair.id in result.captions and len(self._watched) < WATCHED_SAMPLES:
                self._watched.append((sample, set(sample.field_names)))
        if self.config.attention_field:
            from fiftyone_plugin.heatmaps import heatmaps_for_pairs

            heatmaps_for_pairs(
                dataset,
                self.idc,
                [p for p in pairs if p.id in result.captions],
                result.captions,
                kind=self.config.attention_kind,
                heatmap_field=self.config.attention_field,
                regions_field=self.config.regions_field,
                region_source=self.config.region_source,
                batch_size=len(pairs),
            )
        return [result.captions.get(p.id) for p in pairs]

    def _written_field(self) -> str | None:
        """The field apply_model stored this call's captions in: the one its write added to the samples."""
        for sample, before in self._watched:
            added = set(sample.field_names) - before
            if len(added) == 1:
                return added.pop()
        return None
