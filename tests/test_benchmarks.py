"""The benchmarks that CI can run: the full-size one, narrowed to toy widths on the CPU."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_full_size_benchmark_runs_narrowed_and_writes_its_figures(tmp_path):
    out = tmp_path / "full_size.json"
    command = [sys.executable, str(REPO / "benchmarks" / "full_size.py"), "--narrow", "--ranks", "8", "16"]
    command += ["--steps", "1", "--caption-pairs", "2", "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(out.read_text())
    assert results["narrowed"] is True
    assert set(results["lora_batch1"]) == {"8", "16"}
    low, high = results["lora_batch1"]["8"], results["lora_batch1"]["16"]
    assert 0 < low["trainable_parameters"] < high["trainable_parameters"]  # twice the rank, twice the adapter
    # The step's peak is measured apart from the load's, with the built and cast model resident.
    for row in (low, high):
        assert row["load_peak_gb"] > 0 and row["step_peak_gb"] >= row["weights_gb"] > 0
    assert "peak_gb" not in low
    assert results["train_pairs_per_s_rank16"] > 0 and results["captioning_pairs_per_s"]["batched"] > 0
