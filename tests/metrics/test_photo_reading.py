import pytest

from idc_engine.data.pair import IDCPair
from idc_engine.data.photo_edits import captions_for
from idc_engine.metrics.photo_reading import EditReading, format_reading, read_edit, readable, reading_accuracy, truth

EDITS = [
    {"kind": "add", "color": "orange", "place": "top left", "effect": None, "shape": "star"},
    {"kind": "text", "color": "white", "place": "bottom", "effect": None},
    {"kind": "color", "color": "blue", "place": "right", "effect": None},
    {"kind": "background", "color": "pink", "place": None, "effect": None},
    {"kind": "style", "color": None, "place": None, "effect": "oil painting"},
    {"kind": "global", "color": None, "place": None, "effect": "foggy"},
    {"kind": "remove", "color": None, "place": "center", "effect": None},
    {"kind": "local", "color": None, "place": "top", "effect": "blurred"},
    {"kind": "none", "color": None, "place": None, "effect": None},
]


def _pair(pair_id, edit):
    return IDCPair(
        pair_id, "r.png", "m.png", captions_for(edit), category=edit["kind"], split="test", metadata={"edit": edit}
    )


@pytest.mark.parametrize("edit", EDITS, ids=[e["kind"] for e in EDITS])
def test_every_reference_reads_back_as_its_edit(edit):
    pair = _pair("p", edit)
    assert len(pair.captions) >= 5
    assert {read_edit(c) for c in pair.captions} == {truth(pair)}


def test_wording_variants_read_alike_but_other_sentences_do_not():
    assert read_edit("An orange star was added in the top left.") == EditReading("add", "orange", "top left", "star")
    assert read_edit("an object was removed from the centre") == EditReading("remove", None, "center", None)
    assert read_edit("an area on the right was painted grey") == EditReading("color", "gray", "right", None)
    assert read_edit("a red circle was added in the top left and a cat appeared") is None
    assert read_edit("a red circle was added in the middle") is None  # not a place of the grid
    assert read_edit("") is None and read_edit(None) is None


def test_accuracy_separates_kind_place_and_detail_and_counts_unchanged_pairs_called_a_change():
    pairs = [_pair(str(i), e) for i, e in enumerate(EDITS)]
    pairs.append(_pair("n2", EDITS[-1]))
    predictions = {
        "0": "an orange circle was added in the top left",  # kind, colour, place right; shape wrong
        "1": "white text was written at the top",  # place wrong
        "2": "an area on the right was painted blue",  # all right
        "3": "the image was made darker",  # kind wrong
        "4": "the photo was turned into a poster",  # kind right, style wrong
        "5": "fog was added to the photo",  # all right, other words
        "6": "a cat sat down",  # unread
        "7": "a region at the top was blurred",  # all right
        "8": "there is no change",
        "n2": "a region at the top was blurred",  # an unchanged pair called a change
    }
    table = reading_accuracy(predictions, pairs)
    assert table["all"]["count"] == 10
    assert table["all"]["type"] == pytest.approx(7 / 10)
    assert table["all"]["exact"] == pytest.approx(6 / 10)  # 0, 2, 4, 5, 7, 8
    assert table["all"]["exact_detail"] == pytest.approx(4 / 10)  # 2, 5, 7, 8
    assert table["all"]["unread"] == pytest.approx(1 / 10)
    assert table["none"]["called_a_change"] == pytest.approx(0.5)
    assert table["all"]["changed_said_no_change"] == 0.0
    # A decision that says "no change" too often shows up here: 2 of the 8 changed pairs.
    hidden = {**predictions, "3": "there is no change", "6": "the photo is unchanged"}
    assert reading_accuracy(hidden, pairs)["all"]["changed_said_no_change"] == pytest.approx(2 / 8)
    assert table["add"] == {"type": 1.0, "exact": 1.0, "exact_detail": 0.0, "unread": 0.0, "count": 1, "place": 1.0}
    # The place is counted whatever kind was read, on the edits that have one (add, text, color, remove, local).
    assert table["all"]["place"] == pytest.approx(3 / 5) and table["text"]["place"] == 0.0
    misread = reading_accuracy({**predictions, "2": "a blue square was added on the right"}, pairs)
    assert misread["color"]["place"] == 1.0 and misread["color"]["type"] == 0.0
    assert "place" not in table["background"] and "place" not in table["none"]
    text = format_reading({"model": table, "hides": reading_accuracy(hidden, pairs)})
    assert "none" in text and " 50% /  50%" in text
    assert "edits placed right (whatever kind was read): model 60%, hides 60%" in text
    assert "unchanged pairs called a change: model 50%, hides 50%" in text
    assert "changed pairs captioned as no change: model 0%, hides 25%" in text


def test_pairs_without_a_photo_edits_truth_are_refused():
    shapes = IDCPair("s", "r.png", "m.png", ["there is no change"], category="none", split="test")
    assert not readable([shapes]) and readable([_pair("p", EDITS[0])])
    with pytest.raises(ValueError, match="pair 's': metadata has no photo-edits 'edit' record"):
        truth(shapes)
    with pytest.raises(ValueError, match="predictions: no caption for pair 'p'"):
        reading_accuracy({}, [_pair("p", EDITS[0])])
