"""The `idc` command line, run as users run it (in-process through its main)."""

import json
import subprocess
import sys

import pytest

from idc_engine.cli import main

COMMANDS = [
    "make-benchmark",
    "import",
    "train",
    "caption",
    "evaluate",
    "augment",
    "references",
    "calibrate-no-change",
    "demo",
    "pretrain-tiny",
    "pretrain-tiny-photo",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: idc " + command in capsys.readouterr().out


def test_console_script_is_installed():
    result = subprocess.run([sys.executable, "-m", "idc_engine.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "make-benchmark" in result.stdout


def test_make_benchmark_train_caption_evaluate(tmp_path, tiny_dir, capsys):
    data = tmp_path / "data"
    assert (
        main(
            [
                "make-benchmark",
                "shapes-change",
                "--out",
                str(data),
                "--train",
                "24",
                "--test",
                "10",
                "--validation",
                "6",
                "--seed",
                "5",
            ]
        )
        == 0
    )
    manifest = data / "manifest.jsonl"
    records = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert len(records) == 40 and {r["split"] for r in records} == {"train", "validation", "test"}

    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--manifest",
                str(manifest),
                "--out",
                str(run),
                "--model",
                str(tiny_dir),
                "--max-steps",
                "3",
                "--batch-size",
                "4",
                "--eval-every",
                "2",
                "--eval-metric",
                "loss",
                "--lora-rank",
                "4",
                "--lora-targets",
                "llm",
                "qformer",
                "--checkpoint-every",
                "2",
            ]
        )
        == 0
    )
    adapter = run / "model"
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["r"] == 4 and config["base_model_name_or_path"] == str(tiny_dir)
    training = json.loads((adapter / "training.json").read_text())
    assert training["config"]["lora"]["targets"] == ["llm", "qformer"]

    predictions = tmp_path / "predictions.jsonl"
    assert (
        main(
            [
                "caption",
                "--manifest",
                str(manifest),
                "--model",
                str(adapter),
                "--out",
                str(predictions),
                "--max-new-tokens",
                "6",
            ]
        )
        == 0
    )
    lines = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert [r["id"] for r in lines] == [r["id"] for r in records if r["split"] == "test"]
    assert all(r["confidence"] <= 0.0 for r in lines)
    # A pair without a prediction is left out of the scores and reported, not fatal.
    predictions.write_text("".join(json.dumps(r) + "\n" for r in lines[:-1]))

    capsys.readouterr()
    report = tmp_path / "report.json"
    assert (
        main(
            [
                "evaluate",
                "--manifest",
                str(manifest),
                "--predictions",
                str(predictions),
                "--out",
                str(report),
                "--no-baselines",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "CIDEr-D" in printed and "model" in printed and "right change (exact / type)" in printed
    assert f"left out: 1 pairs without a prediction (first: {lines[-1]['id']!r})" in printed
    assert json.loads(report.read_text())["left_out"]["count"] == 1
    saved = json.loads(report.read_text())["systems"]["model"]
    assert saved["table"]["all"]["count"] == 9
    assert set(saved["table"]["all"]) >= {"BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D"}
    assert 0.0 <= saved["change_reading"]["all"]["exact"] <= saved["change_reading"]["all"]["type"] <= 1.0
    # Change by change, on the console and in the report.
    assert "false change" in printed and "change F1" in printed and "change by change" in printed
    assert saved["change_level"]["reader"] == "shapes-change" and saved["change_level"]["pairs"] == 9
    assert set(saved["change_flags"]) == set(saved["predictions"])


def test_calibrate_no_change_saves_the_decision_in_the_models_folder(tmp_path, shapes_dir, capsys):
    import shutil

    from idc_engine.model.base_reference import TINY_CHECKPOINT
    from idc_engine.model.config import BLIP2IDCConfig

    folder = tmp_path / "tiny"
    shutil.copytree(TINY_CHECKPOINT, folder)
    config = BLIP2IDCConfig.load(folder)
    config.no_change_threshold, config.no_change_weights = None, ()
    config.save(folder)
    # A trained model's record, as training wrote it: it must not go on describing the old decision.
    (folder / "training.json").write_text(json.dumps({"steps": 4, "idc_config": dict(config.__dict__)}))
    manifest = str(shapes_dir / "manifest.jsonl")
    assert main(["calibrate-no-change", "--model", str(folder), "--manifest", manifest, "--split", "train"]) == 0
    saved = BLIP2IDCConfig.load(folder)
    assert saved.no_change_threshold is not None and 0 < saved.no_change_threshold <= 1
    record = json.loads((folder / "training.json").read_text())
    assert record["steps"] == 4 and record["idc_config"]["no_change_threshold"] == saved.no_change_threshold
    assert [r["split"] for r in record["recalibrations"]] == ["train"]
    assert '"true_negative_rate"' in capsys.readouterr().out
    assert main(["calibrate-no-change", "--model", "tiny", "--manifest", manifest]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_make_benchmark_photo_edits_holds_out_whole_photographs(tmp_path, capsys):
    args = ["make-benchmark", "photo-edits", "--out", str(tmp_path), "--train", "6", "--test", "3"]
    assert main([*args, "--validation", "2", "--photo-seed", "4", "--photo-image-size", "64", "--workers", "2"]) == 0
    assert "wrote 6 train, 2 validation and 3 test pairs" in capsys.readouterr().out
    records = [json.loads(line) for line in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    photos = {split: {r["metadata"]["photo"] for r in records if r["split"] == split} for split in ("train", "test")}
    assert len(records) == 11 and not photos["train"] & photos["test"]
    assert main([*args, "--photo-unchanged-share", "1.5"]) == 2
    assert "unchanged_share must be in [0, 1), got 1.5" in capsys.readouterr().err


def test_cli_errors_are_one_clear_line(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "reference": "x.png", "modified": "y.png", "captions": "oops", "split": "train"}\n')
    code = main(["train", "--manifest", str(bad), "--out", str(tmp_path / "r"), "--model", "tiny-scratch"])
    assert code == 2
    assert "bad.jsonl:1: field 'captions': must be a non-empty list" in capsys.readouterr().err


def test_captioning_a_split_the_manifest_lacks_says_which_splits_it_has(tmp_path, tiny_dir, capsys):
    """Two imported folders give 'unlabeled' pairs; captioning the default split ('test') named none of them."""
    from PIL import Image

    for folder in ("originals", "edited"):
        (tmp_path / folder).mkdir()
        Image.new("RGB", (32, 32), "gray").save(tmp_path / folder / "a.png")
    manifest = tmp_path / "pairs.jsonl"
    args = ["import", "image-folders", str(tmp_path / "originals"), "--images-dir", str(tmp_path / "edited")]
    assert main([*args, "--out", str(manifest)]) == 0
    out = tmp_path / "captions.jsonl"
    assert main(["caption", "--manifest", str(manifest), "--model", str(tiny_dir), "--out", str(out)]) == 2
    assert "--split 'test': no pairs of that split in" in capsys.readouterr().err
    assert not out.exists()
    assert (
        main(
            [
                "caption",
                "--manifest",
                str(manifest),
                "--model",
                str(tiny_dir),
                "--split",
                "unlabeled",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert len(out.read_text().splitlines()) == 1


def test_augment_writes_variants_that_train_reads(shapes_dir, tmp_path, capsys):
    out = tmp_path / "syned"
    args = ["augment", "--manifest", str(shapes_dir / "manifest.jsonl"), "--out", str(out), "--variations", "2"]
    assert main(args + ["--seed", "3"]) == 0
    printed = capsys.readouterr().out
    assert "variants of 64 pairs kept" in printed
    synthetic = [json.loads(line) for line in (out / "synthetic.jsonl").read_text().splitlines()]
    assert synthetic and all(r["split"] == "train" and r["metadata"]["synthetic"] for r in synthetic)
    assert len((out / "manifest.jsonl").read_text().splitlines()) == 104 + len(synthetic)
    assert main(args + ["--seed", "3"]) == 0  # a re-run finds everything done
    assert f"resumed {len(synthetic)};" in capsys.readouterr().out
