"""benchmarks/syned.py: its headline follows the paired interval, and a resumed run keeps only runs of its settings."""

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def syned():
    spec = importlib.util.spec_from_file_location("syned_benchmark", REPO / "benchmarks" / "syned.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_headline_says_no_measurable_gain_when_the_interval_holds_zero(syned):
    even = syned.paired([226.6, 213.1, 220.0], [214.6, 213.6, 219.8])  # seeds disagree: +12.0, -0.5, +0.2
    assert even["verdict"] == "no measurable gain" and even["ci95"][0] < 0 < even["ci95"][1]
    steady = syned.paired([225.0, 226.0, 227.5], [214.0, 215.5, 216.0])  # +11.0, +10.5, +11.5
    assert steady["verdict"] == "Syned helps" and steady["ci95"][0] > 0
    worse = syned.paired([200.0, 201.0, 199.0], [214.0, 215.5, 216.0])
    assert worse["verdict"] == "Syned hurts" and worse["ci95"][1] < 0


def test_a_summary_is_the_mean_and_the_sample_standard_deviation(syned):
    figures = syned.summary([1.0, 2.0, 3.0])
    assert figures == {"mean": 2.0, "std": 1.0, "values": [1.0, 2.0, 3.0]}


def _saved(tmp_path, settings):
    out = tmp_path / "syned.json"
    run = {"seed": 0, "test": {}}
    partial = {"command": "first", "settings": settings, "runs": {"real only": [run], "real + Syned": []}}
    out.with_suffix(".partial.json").write_text(json.dumps({**partial, "partial": True}))
    return out


def test_resume_keeps_the_saved_runs_and_records_the_resumption(syned, tmp_path):
    settings = {"steps": 150, "seeds": 3}
    out = _saved(tmp_path, {**settings, "out": "x"})
    args = type("Args", (), {"out": str(out)})()
    fresh = {"command": "again --resume", "settings": {**settings, "out": "x"}, "load_at_start": {"load_average": [1]}}
    results, runs = syned._resumed(args, fresh)
    assert runs == {"real only": [{"seed": 0, "test": {}}], "real + Syned": []}
    assert results["command"] == "first" and "partial" not in results
    assert results["resumed"] == [
        {
            "command": "again --resume",
            "load_at_resume": {"load_average": [1]},
            "runs_kept": {"real only": [0], "real + Syned": []},
        }
    ]


def test_resume_refuses_partial_results_of_other_settings_or_none(syned, tmp_path):
    out = _saved(tmp_path, {"steps": 150, "seeds": 3})
    args = type("Args", (), {"out": str(out)})()
    with pytest.raises(SystemExit, match="settings"):
        syned._resumed(args, {"command": "", "settings": {"steps": 900, "seeds": 3}, "load_at_start": {}})
    args.out = str(tmp_path / "other.json")
    with pytest.raises(SystemExit, match="no partial results"):
        syned._resumed(args, {"command": "", "settings": {}, "load_at_start": {}})
