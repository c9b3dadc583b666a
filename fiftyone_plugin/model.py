"""BLIP2IDC as a FiftyOne model, for ``apply_model`` on the ``modified`` slice of an IDC dataset.

    view = dataset.select_group_slices("modified")
    view.apply_model(BLIP2IDCModel(BLIP2IDCModelConfig(model="tiny")), label_field="idc_caption")

For each modified sample the model reads the reference image of the same group, and also writes the
caption onto that reference sample (``mirror_field``), so the App's group view shows it on both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import fiftyone.core.models as fom
from PIL import Image

from fiftyone_plugin.dataset import (
    GROUP_FIELD,
    REFERENCE,
    check_grouped,
    mirror_to_reference,
    reference_paths,
    reference_samples,
)
from idc_engine.data.images import load_image, to_rgb
from idc_engine.inference.caption import GenerationConfig


@dataclass
class BLIP2IDCModelConfig:
    model: str = field(default="tiny", metadata={"help": "checkpoint folder, hub id, adapter folder or 'tiny'"})
    adapter: str | None = field(default=None, metadata={"help": "LoRA adapter folder applied on `model`"})
    device: str | None = field(default=None, metadata={"help": "cuda, mps or cpu (default: the best available)"})
    num_beams: int = 1
    max_new_tokens: int = 30
    mirror_field: str | None = field(
        default="idc_caption", metadata={"help": "field the caption is mirrored to on the reference slice"}
    )
    attention_field: str | None = field(
        default=None, metadata={"help": "also write an attention fo.Heatmap to this field on both slices"}
    )
    # qformer points at the change best on shapes-change (benchmarks/localization.py)
    attention_kind: str = field(default="qformer", metadata={"help": "cls, rollout or qformer"})
    regions_field: str | None = field(
        default=None,
        metadata={"help": "with attention_field: difference regions (fo.Detections) on the modified slice"},
    )

    def generation(self, batch_size: int) -> GenerationConfig:
        return GenerationConfig(batch_size=batch_size, num_beams=self.num_beams, max_new_tokens=self.max_new_tokens)


class BLIP2IDCModel(fom.SamplesMixin, fom.Model):
    """A samples-aware, batched FiftyOne model that captions (reference, modified) pairs."""

    def __init__(self, config: BLIP2IDCModelConfig | None = None, model=None):
        fom.SamplesMixin.__init__(self)
        self.config = config or BLIP2IDCModelConfig()
        self._idc = model
        self._references: dict[str, dict[str, str]] = {}

    # apply_model replaces needs_fields with the call's keyword arguments; the group is always needed.
    @property
    def needs_fields(self):
        return {**self._fields, "group_field": GROUP_FIELD}

    @needs_fields.setter
    def needs_fields(self, fields):
        self._fields = dict(fields or {})

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

    @property
    def idc(self):
        if self._idc is None:
            from idc_engine.model.loading import load_model

            self._idc = load_model(self.config.model, adapter=self.config.adapter, device=self.config.device)
            self._idc.eval()
        return self._idc

    def _reference_path(self, sample) -> str:
        dataset = sample._dataset
        cached = self._references.get(dataset.name)
        if cached is None:
            check_grouped(dataset)
            cached = reference_paths(dataset)
            self._references[dataset.name] = cached
        group = sample[GROUP_FIELD]
        if group is None or group.id not in cached:
            raise ValueError(f"sample {sample.id}: its group has no {REFERENCE!r} sample to compare with")
        return cached[group.id]

    def predict(self, arg, sample=None):
        return self.predict_all([arg], samples=[sample])[0]

    def predict_all(self, args, samples=None):
        if samples is None:
            raise ValueError("samples: BLIP2IDC needs the samples, to find each one's reference image")
        from idc_engine.inference.caption import caption_pairs

        pairs = []
        for image, sample in zip(args, samples):
            modified = to_rgb(Image.fromarray(image)) if image is not None else load_image(sample.filepath, sample.id)
            pairs.append((load_image(self._reference_path(sample), sample.id), modified))
        captions = caption_pairs(self.idc, pairs, self.config.generation(len(pairs)))
        if self.config.mirror_field:
            self._mirror(samples, captions)
        if self.config.attention_field:
            self._write_attention(samples, pairs, captions)
        return captions

    def _write_attention(self, samples, pairs, captions):
        from fiftyone_plugin.heatmaps import detections, heatmap
        from idc_engine.attention.maps import AttentionConfig, attention_maps
        from idc_engine.attention.regions import aligned_change_map, map_regions

        kind = self.config.attention_kind
        maps = attention_maps(self.idc, pairs, AttentionConfig(kinds=(kind,), batch_size=len(pairs)))
        dataset = samples[0]._dataset
        references = reference_samples(dataset, [s[GROUP_FIELD].id for s in samples])
        heatmaps, regions = {}, {}
        for sample, caption, pair_maps in zip(samples, captions, maps):
            reference_map, modified_map = pair_maps.maps[kind]
            heatmaps[sample.id] = heatmap(modified_map)
            heatmaps[references[sample[GROUP_FIELD].id]] = heatmap(reference_map)
            if self.config.regions_field:
                regions[sample.id] = detections(map_regions(aligned_change_map(reference_map, modified_map), caption))
        dataset.set_values(self.config.attention_field, heatmaps, key_field="id")
        if regions:
            dataset.set_values(self.config.regions_field, regions, key_field="id")

    def _mirror(self, samples, captions):
        by_group = {s[GROUP_FIELD].id: c for s, c in zip(samples, captions)}
        mirror_to_reference(samples[0]._dataset, self.config.mirror_field, by_group)
