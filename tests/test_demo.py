"""`idc demo` end to end at a small size: the embedded checkpoint, adapted, scored and read back."""

import json

from idc_engine.demo import DemoConfig, run_demo


def test_demo_writes_predictions_and_a_report_with_baselines_and_readings(tmp_path, capsys):
    config = DemoConfig(train_pairs=48, validation_pairs=8, test_pairs=30, minutes=0.05, batch_size=8, examples=3)
    summary = run_demo(config, tmp_path)

    predictions = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 30
    saved = json.loads((tmp_path / "report.json").read_text())
    assert set(saved["report"]) == {"model", "mean_sentence", "nearest_neighbour", "before_adaptation"}
    assert all(saved["report"][name]["change_reading"] for name in saved["report"])
    model = saved["report"]["model"]["change_reading"]["all"]
    assert model["count"] == 30 and model["unread"] < 0.5  # the embedded model speaks in the benchmark's words
    # The embedded checkpoint already reads the images: it beats the one-sentence baseline.
    assert summary["cider_vs_mean_sentence"]["all"] > 1.5
    assert "right change (exact / type)" in capsys.readouterr().out
