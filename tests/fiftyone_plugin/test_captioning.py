"""Caption files read back for the one caption writer."""

import json

import pytest

from fiftyone_plugin.captioning import read_caption_file


def test_a_caption_file_reads_back_caption_and_confidence_by_pair(tmp_path):
    path = tmp_path / "predictions.jsonl"
    lines = [
        {"id": "a", "caption": "a red circle was added", "confidence": -0.25},
        {"id": "b", "caption": "x", "confidence": -1.5},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    result = read_caption_file(path)
    assert result.captions == {"a": "a red circle was added", "b": "x"}
    assert result.confidences == {"a": -0.25, "b": -1.5}


def test_a_caption_without_confidence_is_named_with_its_line(tmp_path):
    path = tmp_path / "predictions.jsonl"
    path.write_text('{"id": "a", "caption": "x", "confidence": 0.1}\n{"id": "b", "caption": "y"}\n')
    with pytest.raises(ValueError, match=r"line 2 \(pair 'b'\): no 'confidence'"):
        read_caption_file(path)
