"""FiftyOne remote-zoo source for BLIP2IDC (see manifest.json).

    import fiftyone.zoo as foz
    foz.register_zoo_model_source("https://github.com/idc-project/idc")
    model = foz.load_zoo_model("blip2idc-tiny")
    dataset.select_group_slices("modified").apply_model(model, label_field="idc_caption")

No weights are downloaded: the tiny preset ships inside the ``idc`` package, and ``blip2idc`` loads
a BLIP-2 checkpoint that is already on disk (``model=...``).
"""

import json
import os


def download_model(model_name, model_path):
    os.makedirs(os.path.dirname(model_path), exist_ok=True)
    with open(model_path, "w") as handle:
        json.dump({"model": model_name, "weights": "none downloaded; see load_model"}, handle)


def load_model(model_name, model_path, **kwargs):
    from fiftyone_plugin.model import BLIP2IDCModel, BLIP2IDCModelConfig

    if model_name.startswith("blip2idc-tiny"):
        kwargs.setdefault("model", "tiny")
    elif "model" not in kwargs:
        raise ValueError(f"{model_name}: pass model=<local BLIP-2 checkpoint folder or cached hub id>")
    return BLIP2IDCModel(BLIP2IDCModelConfig(**kwargs))
