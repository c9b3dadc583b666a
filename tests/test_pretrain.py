"""Pretraining of the photo preset from random weights: the checkpoint, its record, resuming."""

import json

import pytest

from idc_engine.data.photo_edits import PHOTO_SPLITS, TEMPLATES, caption_corpus
from idc_engine.inference.caption import GenerationConfig, caption_pairs
from idc_engine.model.loading import load_model
from idc_engine.model.tiny import build_tiny, photo_tokenizer_corpus
from idc_engine.pretrain import PRETRAIN_RECORD, PhotoPretrainConfig, pretrain_tiny_photo


def _config(**overrides):
    values = dict(pairs=100, validation_pairs=4, steps=2, batch_size=4, image_size=64, loader_workers=0)
    return PhotoPretrainConfig(**{**values, **overrides})


def test_photo_pretraining_writes_a_loadable_checkpoint_with_its_record_and_resumes(tmp_path, image_pairs):
    work = tmp_path / "work"
    out = pretrain_tiny_photo(_config(), tmp_path / "preset", work_dir=work)
    record = json.loads((out / PRETRAIN_RECORD).read_text())
    assert record["steps"] == 2 and record["config"]["pairs"] == 100
    assert record["photographs"] == {s: list(PHOTO_SPLITS[s]) for s in ("train", "validation")}
    assert "test" not in record["photographs"]  # the test photographs are never pretrained on
    model = load_model(str(out))
    assert len(caption_pairs(model, image_pairs[:2], GenerationConfig(max_new_tokens=5))) == 2
    # Taught the benchmark's five no-change sentences, so that training's end can calibrate the decision.
    assert model.config.no_change_captions == TEMPLATES["none"]
    assert model.config.encoding == record["config"]["encoding"] == "difference"  # what it was pretrained on

    manifest = work / "data" / "manifest.jsonl"
    made = manifest.stat().st_mtime_ns
    resumed = pretrain_tiny_photo(_config(steps=4), tmp_path / "preset", work_dir=work, resume=True)
    assert json.loads((resumed / PRETRAIN_RECORD).read_text())["steps"] == 4
    assert manifest.stat().st_mtime_ns == made  # the same pairs, not generated again
    assert (work / "run" / "checkpoints" / "checkpoint-4").is_dir()

    # A run that started from another model (or from one nobody recorded) is not resumed under this one's name.
    start = work / "preset.json"
    assert json.loads(start.read_text()) == record["preset"]
    start.write_text(json.dumps({**record["preset"], "position_init": "random"}))
    with pytest.raises(ValueError, match="started from another model \\(position_init 'random', now 'sincos'\\)"):
        pretrain_tiny_photo(_config(steps=6), tmp_path / "preset", work_dir=work, resume=True)
    start.unlink()
    with pytest.raises(ValueError, match="has no preset.json, so the model its run started from is not known"):
        pretrain_tiny_photo(_config(steps=6), tmp_path / "preset", work_dir=work, resume=True)
    assert json.loads((resumed / PRETRAIN_RECORD).read_text())["steps"] == 4  # the checkpoint is left as it was


def test_resume_needs_the_work_folder_and_settings_are_checked(tmp_path):
    with pytest.raises(ValueError, match="resume: needs the work_dir"):
        pretrain_tiny_photo(_config(), tmp_path / "preset", resume=True)
    with pytest.raises(ValueError, match=r"description_share must be in \[0, 1\), got 1.0"):
        _config(description_share=1.0)
    with pytest.raises(ValueError, match=r"unchanged_share must be in \[0, 1\), got -0.1"):
        _config(unchanged_share=-0.1)
    with pytest.raises(ValueError, match="encoding must be 'concat' or 'difference', got 'two-stream'"):
        _config(encoding="two-stream")


def test_the_photo_tokenizer_spends_one_token_per_word_of_every_caption():
    preset = PhotoPretrainConfig().preset()
    model = build_tiny(preset, corpus=photo_tokenizer_corpus("Describe the differences between the two images:"))
    tokenizer = model.tokenizer
    for caption in caption_corpus()[::37]:
        words = caption.replace(",", " ,").replace(".", " .").replace(":", " :").split()
        assert len(tokenizer.tokenize(caption)) <= len(words) + 1, caption


def test_other_ranks_wait_for_the_pairs_rank_0_writes(tmp_path):
    import threading
    import time

    from idc_engine.pretrain import _wait_for_photo_data

    config = _config()
    with pytest.raises(TimeoutError, match="rank 0 wrote no pairs under"):
        _wait_for_photo_data(config, tmp_path, timeout_s=0.1, poll_s=0.05)
    stamp = tmp_path / "data.json"
    stamp.write_text(json.dumps({"pairs": 99, "validation": 4}))  # another run's pairs: keep waiting

    def write_later():
        time.sleep(1)
        stamp.write_text(json.dumps({"pairs": 100, "validation": 4, "photo_edits": {}}))

    threading.Thread(target=write_later).start()
    assert _wait_for_photo_data(config, tmp_path, timeout_s=30, poll_s=0.1) == tmp_path / "manifest.jsonl"
