"""The models a form offers: trained folders, cached BLIP-2 checkpoints, and the shapes demo preset."""

import json

from idc_engine.model.config import LoraSettings
from idc_engine.model.discovery import TINY_DESCRIPTION, cached_blip2, local_models, trained_models
from idc_engine.train.config import TrainConfig
from idc_engine.train.loop import train


def test_trained_folders_and_cached_checkpoints_are_found_and_described(tiny_model, shapes_pairs, tmp_path):
    config = TrainConfig(lora=LoraSettings(rank=2), max_steps=1, batch_size=2, eval_every=0, checkpoint_every=5)
    train(tiny_model, shapes_pairs[:4], None, config, tmp_path / "runs" / "a", show_progress=False)
    found = trained_models([tmp_path / "runs"])
    assert [m.spec for m in found] == [str((tmp_path / "runs" / "a" / "model").resolve())]
    assert found[0].description.startswith("LoRA adapter trained by idc on 4 pairs")

    snapshot = tmp_path / "hub" / "models--Salesforce--blip2-opt-2.7b" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps({"model_type": "blip-2"}))
    other = tmp_path / "hub" / "models--bert--base" / "snapshots" / "abc"
    other.mkdir(parents=True)
    (other / "config.json").write_text(json.dumps({"model_type": "bert"}))
    assert [m.spec for m in cached_blip2(tmp_path / "hub")] == ["Salesforce/blip2-opt-2.7b"]

    everything = local_models([tmp_path / "runs"])
    assert everything[-1].spec == "tiny" and everything[-1].description == TINY_DESCRIPTION
