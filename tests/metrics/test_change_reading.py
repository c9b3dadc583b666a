import pytest

from idc_engine.data.pair import IDCPair
from idc_engine.data.shapes_change import TEMPLATES
from idc_engine.metrics.change_reading import ChangeReading, format_reading, read_change, readable, reading_accuracy


def test_every_template_reads_back_to_its_change():
    values = {"color": "red", "shape": "triangle", "new_color": "blue"}
    for change, templates in TEMPLATES.items():
        for template in templates:
            reading = read_change(template.format(**values))
            assert reading is not None and reading.change == change, template
            if change != "none":
                assert (reading.color, reading.shape) == ("red", "triangle"), template
            if change == "color":
                assert reading.new_color == "blue"


def test_case_spacing_and_full_stop_do_not_matter_but_other_words_do():
    assert read_change("  The RED circle   was removed. ") == ChangeReading("drop", "red", "circle")
    assert read_change("the red circle was removed and a cat appeared") is None
    assert read_change("the pink circle was removed") is None  # not a colour of the benchmark
    assert read_change("") is None and read_change(None) is None


def _pair(pair_id, category, captions):
    return IDCPair(pair_id, "r.png", "m.png", captions, category=category, split="test")


def test_accuracy_separates_the_right_object_from_the_right_change():
    pairs = [
        _pair("a", "add", ["a red circle was added", "there is a new red circle"]),
        _pair("b", "drop", ["the blue square was removed"]),
        _pair("c", "none", ["there is no change"]),
        _pair("d", "color", ["the green triangle turned red"]),
    ]
    predictions = {
        "a": "the red circle was removed",  # right object, wrong direction
        "b": "the blue square is gone",  # right, in other words
        "c": "the red circle moved",
        "d": "the green triangle changed to blue",  # right change, wrong new colour
    }
    table = reading_accuracy(predictions, pairs)
    assert list(table) == ["all", "add", "color", "drop", "none"]
    assert table["all"] == {"type": 0.5, "exact": 0.25, "unread": 0.0, "count": 4}
    assert table["drop"]["exact"] == 1.0 and table["add"]["type"] == 0.0 and table["color"]["type"] == 1.0
    assert "right change" in format_reading({"model": table})


def test_only_shapes_change_references_are_readable():
    assert readable([_pair("a", "add", ["a cat appeared", "a red circle was added"])])
    assert not readable([_pair("a", "add", ["a red circle was added"]), _pair("b", None, ["a cat appeared"])])
    assert not readable([])


def test_missing_predictions_and_unreadable_references_are_named():
    pairs = [_pair("a", "add", ["a red circle was added"])]
    with pytest.raises(ValueError, match="no caption for pair 'a'"):
        reading_accuracy({}, pairs)
    with pytest.raises(ValueError, match="pair 'x': no reference caption reads"):
        reading_accuracy({"x": "there is no change"}, [_pair("x", "add", ["a cat appeared"])])


def test_auroc_and_the_head_of_the_queue():
    import numpy as np

    from idc_engine.metrics.confidence import auroc, queue_figures

    right = np.array([True, True, False, False])
    assert auroc(np.array([0.9, 0.8, 0.1, 0.2]), right) == 1.0
    assert auroc(np.array([0.1, 0.2, 0.9, 0.8]), right) == 0.0
    assert auroc(np.array([0.5, 0.5, 0.5, 0.5]), right) == 0.5  # ties count half
    assert auroc(np.array([0.9, 0.1, 0.5, 0.05]), right) == 0.75
    confidences = np.linspace(-1.0, 0.0, 20)  # the 2 least confident of 20 are the wrong ones
    right = np.ones(20, dtype=bool)
    right[:2] = False
    figures = queue_figures(confidences, right)
    assert figures["wrong_share_first_10pct_queue"] == 1.0 and figures["wrong_share_first_10pct_random"] == 0.1
