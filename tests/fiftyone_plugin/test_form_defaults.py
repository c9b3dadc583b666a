"""Every operator form shows its engine dataclass's defaults, and a form left as shown runs with them."""

import sys

import fiftyone.operators as foo
import pytest
from fiftyone.operators.executor import ExecutionContext

from fiftyone_plugin.retrain import RetrainConfig
from idc_engine.attention.maps import AttentionConfig
from idc_engine.attention.regions import RegionConfig
from idc_engine.inference.caption import GenerationConfig
from idc_engine.synth.augment import SynedConfig
from idc_engine.synth.references import ReferenceConfig
from idc_engine.train.config import TrainConfig

PLUGIN = "@idc/idc"
TRAIN, LORA = TrainConfig(), TrainConfig().lora

# operator -> {form input: the dataclass default it must show}
EXPECTED = {
    "train_blip2idc": {
        "finetune": TRAIN.finetune,
        "lora_rank": LORA.rank,
        "lora_alpha": LORA.alpha,
        "learning_rate": TRAIN.learning_rate,
        "batch_size": TRAIN.batch_size,
        "max_steps": TRAIN.max_steps,
        "warmup_steps": TRAIN.warmup_steps,
        "eval_metric": TRAIN.eval_metric,
    },
    "apply_blip2idc": {"batch_size": GenerationConfig().batch_size, "num_beams": GenerationConfig().num_beams},
    "caption_idc_shards": {"batch_size": GenerationConfig().batch_size, "num_beams": GenerationConfig().num_beams},
    "compute_idc_heatmaps": {"batch_size": AttentionConfig().batch_size, "region_source": RegionConfig().source},
    "augment_syned": {"variations": SynedConfig().variations, "captions": SynedConfig().captions, "seed": 0},
    "add_instruction_references": {"variations": ReferenceConfig().variations, "seed": ReferenceConfig().seed},
    "retrain_blip2idc_on_reviewed": {
        name: getattr(RetrainConfig(), name)
        for name in (
            "holdout",
            "validation",
            "replay_ratio",
            "include_test",
            "test_pairs",
            "max_steps",
            "batch_size",
            "learning_rate",
        )
    },
}


def _module(operator):
    """The operator's module as the plugin loaded it."""
    return sys.modules[type(foo.get_operator(f"{PLUGIN}/{operator}")).__module__]


def _form(uri, dataset, params=None):
    ctx = ExecutionContext(request_params={"dataset_name": dataset.name, "params": params or {}}, operator_uri=uri)
    return foo.get_operator(uri).resolve_input(ctx).to_json()["type"]["properties"]


@pytest.mark.parametrize("operator", sorted(EXPECTED))
def test_form_defaults_are_the_dataclass_defaults(operator, idc_dataset):
    form = _form(f"{PLUGIN}/{operator}", idc_dataset)
    shown = {name: form[name].get("default") for name in EXPECTED[operator] if name in form}
    assert shown == EXPECTED[operator]


def test_a_train_form_left_as_shown_is_the_default_train_config(idc_dataset):
    train_config = _module("train_blip2idc").train_config
    form = _form(f"{PLUGIN}/train_blip2idc", idc_dataset)
    params = {name: spec.get("default") for name, spec in form.items()}
    assert train_config(params) == TrainConfig()
    chosen = train_config({**params, "lora_rank": 8, "max_steps": 30, "eval_metric": "loss"})
    assert (chosen.lora.rank, chosen.lora.alpha, chosen.max_steps, chosen.eval_metric) == (8, LORA.alpha, 30, "loss")


def test_a_syned_form_left_as_shown_is_the_default_syned_config(idc_dataset):
    syned_config = _module("augment_syned").syned_config
    form = _form(f"{PLUGIN}/augment_syned", idc_dataset)
    assert syned_config({name: spec.get("default") for name, spec in form.items()}) == SynedConfig()
