"""The Syned operator passes the InstructPix2Pix settings of its form to the editor and says which editor ran."""

import fiftyone.operators as foo
import numpy as np
import pytest
from PIL import Image

from fiftyone_plugin.dataset import METADATA, MODIFIED, pairs_to_dataset
from idc_engine.data.pair import IDCPair


@pytest.fixture(scope="module")
def tiny_ip2p(tmp_path_factory):
    from idc_engine.synth.tiny_ip2p import build_tiny_ip2p

    return str(build_tiny_ip2p(tmp_path_factory.mktemp("tiny-ip2p")))


@pytest.fixture
def photo_dataset(tmp_path):
    pairs = []
    for index in range(2):
        path = tmp_path / f"{index}.png"
        pixels = np.random.default_rng(index).integers(0, 256, (36, 48, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path)
        pairs.append(IDCPair(f"p{index}", path, path, ["x"], "train", "global", {"instruction": "make it night"}))
    dataset = pairs_to_dataset(pairs)
    yield dataset
    dataset.delete()


def test_the_form_settings_reach_the_editor(photo_dataset, tiny_ip2p, tmp_path):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    params = {
        "out_dir": str(tmp_path / "syned"),
        "variations": 2,
        "editor": tiny_ip2p,
        "ip2p_resolution": 32,
        "ip2p_steps": 2,
        "ip2p_guidance_scales": "7.5, 5",
        "ip2p_scheduler": "ddim",
    }
    try:
        result = foo.execute_operator("@idc/idc/augment_syned", ctx=dict(dataset=photo_dataset, params=params))
    finally:
        torch.set_num_threads(threads)
    assert result.result["editors"] == {"instruct-pix2pix": 4}
    variants = photo_dataset.match_tags("synthetic").select_group_slices(MODIFIED)
    settings = [m["editor"] for m in variants.values(METADATA)]
    assert settings and {s["num_inference_steps"] for s in settings} == {2}
    assert {s["scheduler"] for s in settings} == {"DDIMScheduler"}
    assert {tuple(s["working_size"]) for s in settings} == {(32, 24)}


def test_bad_guidance_text_is_named():
    from operators.syned import editor_settings

    with pytest.raises(ValueError, match="guidance scales must be numbers separated by commas, got 'high'"):
        editor_settings({"ip2p_guidance_scales": "high"})
