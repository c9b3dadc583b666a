"""`make demo` end to end at a small size: the embedded checkpoint adapted, scored, read back, and
turned into the FiftyOne dataset a newcomer opens."""

import json

import pytest

from idc_engine.demo import DemoConfig, run_demo


def test_demo_writes_predictions_a_report_and_the_fiftyone_dataset(tmp_path, capsys):
    config = DemoConfig(
        train_pairs=48, validation_pairs=8, test_pairs=30, hard_test_pairs=12, steps=4, batch_size=8, examples=3
    )
    summary = run_demo(config, tmp_path)

    predictions = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 30 and all(p["confidence"] <= 0.0 for p in predictions)
    saved = json.loads((tmp_path / "report.json").read_text())["report"]
    systems = saved["systems"]
    assert set(systems) == {"model", "mean_sentence", "nearest_neighbour", "before_adaptation"}
    assert all(systems[name]["change_reading"] for name in systems)
    model = systems["model"]["change_reading"]["all"]
    assert model["count"] == 30 and model["unread"] < 0.5  # the embedded model speaks in the benchmark's words
    # The embedded checkpoint already reads the images: it beats the one-sentence baseline.
    assert summary["cider_vs_mean_sentence"]["all"] > 1.5
    # Every system is also scored change by change, in the report and on the console.
    for name in systems:
        level = systems[name]["change_level"]
        assert level["reader"] == "shapes-change" and level["pairs"] == 30
        assert {"false_change_rate", "true_negative_rate", "f1", "hallucination_rate"} <= set(level)
    assert summary["training"]["steps"] == 4 and summary["model_change_level"] == systems["model"]["change_level"]
    hard = json.loads((tmp_path / "report.json").read_text())["hard_report"]["systems"]
    assert hard["model"]["change_level"]["pairs"] == 12
    printed = capsys.readouterr().out
    assert "right change (exact / type)" in printed and "harder test pairs" in printed
    header = next(line for line in printed.splitlines() if line.startswith("system"))
    assert all(column in header for column in ("CIDEr-D", "exact", "false change", "change F1"))
    assert printed.count("change by change") == 2
    assert "PTBTokenizer" not in printed

    import fiftyone as fo

    from fiftyone_plugin.demo import build_demo_dataset

    dataset, results, maps = build_demo_dataset(tmp_path, name="idc-demo-test")
    try:
        test = dataset.match_tags("test")
        assert results.metrics["count"] == 30 and maps["pairs"] == 30
        # Written by the one caption writer, which records the model that wrote the field.
        assert dataset.info["idc_caption_sources"]["idc_caption"]["model"] == str(tmp_path / "run" / "model")
        for slice_name in ("reference", "modified"):
            on_slice = test.select_group_slices(slice_name)
            assert all(isinstance(c, str) for c in on_slice.values("idc_caption"))
            assert all(c <= 0.0 for c in on_slice.values("idc_caption_confidence"))
            assert all(isinstance(h, fo.Heatmap) for h in on_slice.values("idc_attention"))
        regions = test.select_group_slices("modified").values("idc_regions")
        assert all(isinstance(r, fo.Detections) for r in regions) and maps["regions"] > 0
    finally:
        dataset.delete()


def test_the_demo_fine_tunes_the_tiny_model_fully_and_other_models_with_lora():
    tiny = DemoConfig()
    assert (tiny.training_mode, tiny.peak_learning_rate) == ("full", 3e-4)  # measured best on the demo's task
    assert DemoConfig(model="tiny-photo").training_mode == "full"  # every embedded preset, by name
    adapter = DemoConfig(model="runs/my-adapter")  # an adapter or a full-size BLIP-2: LoRA, at LoRA's rate
    assert (adapter.training_mode, adapter.peak_learning_rate) == ("lora", 1e-3)
    assert DemoConfig(finetune="lora").peak_learning_rate == 1e-3  # never LoRA at the full-tuning rate
    assert DemoConfig(finetune="lora", learning_rate=5e-4).peak_learning_rate == 5e-4
    with pytest.raises(ValueError, match="finetune"):
        DemoConfig(finetune="half")
