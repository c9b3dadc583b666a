import io
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from idc_engine.data.pair import IDCPair
from idc_engine.synth.ip2p import InstructPix2PixConfig, InstructPix2PixEditor, working_size
from idc_engine.synth.tiny_ip2p import build_tiny_ip2p

# Random weights, 2 steps, 32-pixel working images: the real pipeline class, at a test's cost.
CONFIG = InstructPix2PixConfig(
    num_inference_steps=2, guidance_scales=(7.5, 5.0), image_guidance_scales=(1.5, 1.2), resolution=32
)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # The tiny pipeline's ops are too small to gain from a second thread; on a busy 2-core machine a
    # second thread made each edit up to 10x slower (threads waiting on each other).
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return build_tiny_ip2p(tmp_path_factory.mktemp("tiny-ip2p"))


@pytest.fixture(scope="module")
def editor(checkpoint):
    return InstructPix2PixEditor(checkpoint, CONFIG)


def photo(width=40, height=40, seed=0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_same_seed_same_bytes_other_seed_other_image(editor, checkpoint):
    first = editor.edit(photo(), "make it blue", "color", 4)
    again = editor.edit(photo(), "make it blue", "color", 4)
    assert png(first.image) == png(again.image)
    assert png(editor.edit(photo(), "make it blue", "color", 6).image) != png(first.image)  # same scales
    assert (first.instruction, first.category) == ("make it blue", "color")
    settings = first.settings
    assert settings["editor"] == "instruct-pix2pix" and settings["checkpoint"] == str(checkpoint)
    assert (settings["seed"], settings["num_inference_steps"], settings["dtype"]) == (4, 2, "float32")


def test_a_batch_gives_what_each_item_gives_alone_and_cycles_the_guidance_sweep(editor):
    # Seeds 0 and 2 share guidance scales and size: one pipeline call. Seed 1 sweeps to the next scales;
    # seed 4's image has another working size.
    items = [(photo(seed=0), "add a hat", None, 0), (photo(seed=1), "add a dog", "add", 2)]
    items += [(photo(seed=2), "add a hat", None, 1), (photo(48, 24, seed=3), "make it night", "global", 4)]
    batch = editor.edit_batch(items)
    for item, result in zip(items, batch):
        # Each item has its own noise, so batching changes nothing but float rounding: CPU kernels sum in a
        # batch-size-dependent order, which can flip a rare 8-bit level (seen: 1 value in 5,000, by 1).
        alone = np.asarray(editor.edit(*item).image, np.int16)
        difference = np.abs(np.asarray(result.image, np.int16) - alone)
        assert difference.max() <= 2 and (difference > 0).mean() < 0.01
        assert result.image.size == item[0].size and result.instruction == item[1] and result.category == item[2]
    scales = [(r.settings["guidance_scale"], r.settings["image_guidance_scale"]) for r in batch]
    assert scales == [(7.5, 1.5), (7.5, 1.5), (5.0, 1.2), (7.5, 1.5)]
    assert [r.settings["working_size"] for r in batch] == [[32, 32], [32, 32], [32, 32], [32, 16]]


def test_output_has_the_input_size_when_that_is_no_multiple_of_8(editor):
    result = editor.edit(photo(70, 50), "make it red", None, 0)
    assert result.image.size == (70, 50) and result.image.mode == "RGB"
    assert result.settings["working_size"] == [32, 24]
    assert working_size((70, 50), None) == (72, 48) and working_size((70, 50), 512) == (512, 368)


def test_missing_or_wrong_checkpoint_folders_are_named(tmp_path):
    missing = tmp_path / "no-such-ip2p"
    with pytest.raises(FileNotFoundError, match="no-such-ip2p.*does not exist"):
        InstructPix2PixEditor(missing)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty.*has no model_index.json"):
        InstructPix2PixEditor(tmp_path / "empty")


def test_instruction_and_config_are_checked(editor):
    with pytest.raises(ValueError, match="item 1: InstructPix2PixEditor needs an instruction, got None"):
        editor.edit_batch([(photo(), "make it red", None, 0), (photo(), None, None, 0)])
    with pytest.raises(ValueError, match="dtype must be one of .* got 'float8'"):
        InstructPix2PixConfig(dtype="float8")
    with pytest.raises(ValueError, match="guidance_scales must be a non-empty list"):
        InstructPix2PixConfig(guidance_scales=())


def test_the_synth_package_imports_without_diffusers():
    script = (
        "import sys\n"
        "sys.modules['diffusers'] = None\n"
        "import idc_engine.synth, idc_engine.synth.tiny_ip2p\n"
        "assert 'torch' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_settings_scheduler_and_offline_loading_reach_the_pipeline(checkpoint):
    config = InstructPix2PixConfig(num_inference_steps=2, resolution=0, scheduler="euler_ancestral")
    assert config.resolution is None  # 0 on the command line: the input's own size
    editor = InstructPix2PixEditor(checkpoint, config)
    result = editor.edit(photo(40, 24), "make it blue", None, 1)
    assert result.settings["scheduler"] == "EulerAncestralDiscreteScheduler"
    assert result.settings["working_size"] == [40, 24]
    with pytest.raises(ValueError, match="scheduler must be one of .* got 'fast'"):
        InstructPix2PixConfig(scheduler="fast")


def test_a_hub_id_not_in_the_local_cache_is_not_downloaded(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    editor = InstructPix2PixEditor("someone/no-such-ip2p", InstructPix2PixConfig(num_inference_steps=1))
    with pytest.raises(FileNotFoundError, match="someone/no-such-ip2p.*could not be loaded from local files"):
        editor.edit(photo(), "make it blue", None, 0)


def test_idc_augment_with_an_ip2p_folder_takes_its_settings_reports_each_image_and_which_editor_ran(
    checkpoint, shapes_dir, tmp_path, capsys
):
    from idc_engine.cli import main
    from idc_engine.data.manifest import read_manifest, write_manifest

    shapes = [p for p in read_manifest(shapes_dir / "manifest.jsonl") if p.split == "train"][:2]
    photos = []
    for index in range(2):
        path = tmp_path / f"photo{index}.png"
        photo(48, 36, seed=index).save(path)
        photos.append(IDCPair(f"photo{index}", path, path, ["x"], "train", "global", {"instruction": "make it night"}))
    manifest = tmp_path / "m.jsonl"
    write_manifest(shapes + photos, manifest)
    out = tmp_path / "syned"
    args = ["augment", "--manifest", str(manifest), "--out", str(out), "--editor", str(checkpoint)]
    args += ["--variations", "2", "--ip2p-num-inference-steps", "2", "--ip2p-resolution", "32"]
    args += ["--ip2p-guidance-scales", "7.5", "5", "--ip2p-batch-size", "1", "--quality-min-changed-share", "0"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "note: --editor" in captured.out and "4 by shapes-scene" in captured.out
    assert "re-rendered by the shapes-scene editor" in captured.out
    lines = [line for line in captured.err.splitlines() if line.startswith("edit: image")]
    assert len(lines) == 8 and lines[-1].startswith("edit: image 8/8") and "s per image" in lines[0]
    report = json.loads((out / "report.json").read_text())
    assert report["editors_used"] == {"instruct-pix2pix": 4, "shapes-scene": 4}
    assert report["report"]["editors"] == {"instruct-pix2pix": 4, "shapes-scene": 4}
    assert report["editor_settings"]["num_inference_steps"] == 2 and report["editor_settings"]["resolution"] == 32
    items = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    made = [i["editor"] for i in items if i["editor"]["editor"] == "instruct-pix2pix"]
    assert {m["guidance_scale"] for m in made} == {7.5, 5.0} and {m["num_inference_steps"] for m in made} == {2}
