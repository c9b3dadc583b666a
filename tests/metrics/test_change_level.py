import pytest

from idc_engine.data.pair import IDCPair
from idc_engine.metrics.change_level import (
    SHAPES_READER,
    ChangeLevel,
    choose_reader,
    format_change_level,
    register_reader,
    registered_readers,
    score_changes,
)
from idc_engine.metrics.change_reading import ChangeReading


def _objects(*kinds):
    return [{"color": c, "shape": s, "x": 0.5, "y": 0.5, "r": 0.1} for c, s in kinds]


def _pair(pair_id, category, captions, before=(), after=None):
    metadata = {
        "objects_reference": _objects(*before),
        "objects_modified": _objects(*(before if after is None else after)),
    }
    return IDCPair(pair_id, "r.png", "m.png", captions, category=category, split="test", metadata=metadata)


UNCHANGED = _pair("same", "none", ["there is no change", "nothing has changed"], before=[("red", "circle")])
TWO = _pair(
    "two",
    "two_changes",
    ["the red circle moved and a blue square was added", "a blue square has been added and the red circle was moved"],
    before=[("red", "circle")],
    after=[("red", "circle"), ("blue", "square")],
)


def test_an_invented_change_on_an_unchanged_pair_is_a_false_change_and_a_hallucination():
    level = score_changes({"same": "the purple triangle moved"}, [UNCHANGED], SHAPES_READER)
    summary = level.summary
    assert summary["unchanged_pairs"] == 1 and summary["false_changes"] == 1
    assert summary["false_change_rate"] == 1.0 and summary["true_negative_rate"] == 0.0
    assert summary["hallucinated"] == 1 and summary["hallucination_rate"] == 1.0  # no triangle in either image
    assert summary["false_positives"] == 1 and summary["true_positives"] == 0 and summary["precision"] == 0.0
    assert summary["recall"] is None  # the pair holds no change to find
    assert level.per_sample["same"] == {"false_change": True, "hallucinated": True, "exact": False}


def test_an_invented_change_of_an_object_that_is_there_is_a_false_change_but_no_hallucination():
    level = score_changes({"same": "the red circle moved"}, [UNCHANGED], SHAPES_READER)
    assert level.per_sample["same"] == {"false_change": True, "hallucinated": False, "exact": False}


def test_saying_nothing_changed_is_a_true_negative_and_names_nothing():
    level = score_changes({"same": "The scene is unchanged."}, [UNCHANGED], SHAPES_READER)
    assert level.summary["true_negative_rate"] == 1.0 and level.summary["false_change_rate"] == 0.0
    assert level.per_sample["same"] == {"false_change": False, "hallucinated": False, "exact": True}
    assert level.summary["precision"] is None and level.summary["f1"] is None  # nothing stated, nothing to find


def test_a_two_change_pair_half_described_has_full_precision_and_half_recall():
    level = score_changes({"two": "the red circle has been moved"}, [TWO], SHAPES_READER)
    summary = level.summary
    assert (summary["true_positives"], summary["false_positives"], summary["false_negatives"]) == (1, 0, 1)
    assert summary["precision"] == 1.0 and summary["recall"] == 0.5 and summary["f1"] == pytest.approx(2 / 3)
    assert level.per_sample["two"] == {"false_change": None, "hallucinated": False, "exact": False}
    both = score_changes(
        {"two": "a new blue square appeared and the red circle is in a different place"}, [TWO], SHAPES_READER
    )
    assert both.summary["f1"] == 1.0 and both.per_sample["two"]["exact"]


def test_the_new_colour_of_a_recolouring_may_be_in_the_modified_image_only():
    pair = _pair("c", "color", ["the red circle turned blue"], before=[("red", "circle")], after=[("blue", "circle")])
    right = score_changes({"c": "the red circle became blue"}, [pair], SHAPES_READER)
    assert right.per_sample["c"] == {"false_change": None, "hallucinated": False, "exact": True}
    wrong = score_changes({"c": "the red circle turned green"}, [pair], SHAPES_READER)
    assert wrong.per_sample["c"]["hallucinated"]  # no green circle anywhere
    assert (wrong.summary["true_positives"], wrong.summary["false_positives"], wrong.summary["false_negatives"]) == (
        0,
        1,
        1,
    )


def test_pooled_over_pairs_and_counted_by_category():
    pairs = [UNCHANGED, TWO, _pair("d", "drop", ["the red circle was removed"], before=[("red", "circle")], after=[])]
    predictions = {"same": "there is no change", "two": "the red circle moved", "d": "a red circle was added"}
    level = score_changes(predictions, pairs, SHAPES_READER)
    summary = level.summary
    # two: 1 tp, 1 fn; d: 1 fp, 1 fn
    assert (summary["true_positives"], summary["false_positives"], summary["false_negatives"]) == (1, 1, 2)
    assert summary["precision"] == 0.5 and summary["recall"] == pytest.approx(1 / 3) and summary["f1"] == 0.4
    assert summary["exact"] == pytest.approx(1 / 3) and summary["exact_changed"] == 0.0
    assert set(level.by_category) == {"drop", "none", "two_changes"}
    assert level.by_category["none"]["true_negative_rate"] == 1.0
    assert level.by_category["two_changes"]["recall"] == 0.5
    assert "false change" in format_change_level({"model": level, "free": None})


def test_an_unreadable_caption_is_neither_a_true_negative_nor_a_false_change():
    level = score_changes({"same": "a cat sat on the mat", "two": "hmm"}, [UNCHANGED, TWO], SHAPES_READER)
    summary = level.summary
    assert summary["unread"] == 2 and summary["true_negatives"] == 0 and summary["false_changes"] == 0
    assert summary["false_negatives"] == 2 and summary["false_positives"] == 0
    assert summary["hallucination_checked"] == 0 and summary["hallucination_rate"] is None
    assert level.per_sample["same"]["false_change"] is None


def test_contradictions_do_not_read_and_without_metadata_hallucinations_are_not_measured():
    assert SHAPES_READER.read("there is no change and the red circle moved") is None
    bare = IDCPair("b", "r.png", "m.png", ["the red circle moved"], category="move")
    level = score_changes({"b": "the green square moved"}, [bare], SHAPES_READER)
    assert level.per_sample["b"]["hallucinated"] is None and level.summary["hallucination_rate"] is None


def test_free_text_pairs_get_no_reader_and_a_caption_missing_is_named():
    free = IDCPair("f", "r.png", "m.png", ["the man put on a hat"])
    assert choose_reader([free]) is None and choose_reader([UNCHANGED, free]) is None
    assert choose_reader([UNCHANGED, TWO]) is SHAPES_READER
    with pytest.raises(ValueError, match="no caption for pair 'two'"):
        score_changes({"same": "there is no change"}, [UNCHANGED, TWO], SHAPES_READER)


class EditReader:
    """A reader for captions naming (edit, colour, place), as a photo-edits benchmark might write them."""

    name = "test-edits"

    def read(self, caption):
        words = (caption or "").split()
        if words == ["unchanged"]:
            return frozenset()
        return frozenset([tuple(words)]) if len(words) == 3 else None

    def truth(self, pair):
        return self.read(pair.captions[0])

    def present(self, pair):
        return None

    def named(self, change):
        return frozenset()


def test_another_reader_plugs_in_and_is_chosen_where_it_reads_every_pair():
    reader = EditReader()
    register_reader(reader)
    try:
        pairs = [IDCPair("p", "r.png", "m.png", ["paint red left"]), IDCPair("q", "r.png", "m.png", ["unchanged"])]
        assert choose_reader(pairs) is reader
        level = score_changes({"p": "paint red left", "q": "paint blue right"}, pairs, reader)
        assert isinstance(level, ChangeLevel) and level.reader == "test-edits"
        assert level.summary["false_change_rate"] == 1.0 and level.summary["precision"] == 0.5
        with pytest.raises(ValueError, match="already registered"):
            register_reader(EditReader())
    finally:
        registered_readers()  # a copy: the registry itself is not changed by it
        from idc_engine.metrics import change_level

        change_level._READERS.remove(reader)
    with pytest.raises(TypeError, match="lacks a name"):
        register_reader(object())


def test_readings_are_sets_of_changes():
    assert SHAPES_READER.read("the red circle moved and a blue square was added") == {
        ChangeReading("move", "red", "circle"),
        ChangeReading("add", "blue", "square"),
    }


def test_reports_say_in_words_when_free_text_cannot_be_scored_change_by_change():
    from idc_engine.metrics.report import evaluate, format_report

    free = [IDCPair(f"f{i}", "r.png", "m.png", ["a man put on a hat", "someone wears a hat"]) for i in range(3)]
    report = evaluate(free, {p.id: "a man wears a hat" for p in free})
    assert report.systems["model"].change_level is None
    text = format_report(report)
    assert "change by change: not measured" in text and "false change" not in text.split("\n")[0]
    assert report.to_dict()["systems"]["model"]["change_level"] is None

    shapes = [UNCHANGED, TWO]
    report = evaluate(shapes, {"same": "the purple triangle moved", "two": "the red circle moved"})
    header = format_report(report).split("\n")[0]
    assert "exact" in header and "false change" in header and "change F1" in header
    assert report.to_dict()["systems"]["model"]["change_level"]["false_change_rate"] == 1.0


def test_a_captioner_that_never_states_a_change_has_change_f1_zero_not_unmeasured():
    # "there is no change" everywhere (a collapsed model, or a constant baseline) finds none of the two
    # changes: recall 0, precision undefined (nothing stated). Its F1 is 0, not "-" (not measured).
    pairs = [UNCHANGED, TWO]
    level = score_changes({"same": "there is no change", "two": "there is no change"}, pairs, SHAPES_READER)
    summary = level.summary
    assert summary["true_positives"] == 0 and summary["false_negatives"] == 2 and summary["recall"] == 0.0
    assert summary["precision"] is None and summary["f1"] == 0.0
    # Unreadable captions find nothing either.
    assert score_changes({"two": "zzz"}, [TWO], SHAPES_READER).summary["f1"] == 0.0
    # Only where there is nothing to find and nothing was stated is F1 undefined.
    assert score_changes({"same": "there is no change"}, [UNCHANGED], SHAPES_READER).summary["f1"] is None


def test_photo_edits_pairs_are_scored_change_by_change_not_called_free_text():
    """Photo-edits references are templates that idc reads back (metrics.photo_reading); reports said
    "free text that no change reader understands" and measured no false change on their unchanged pairs."""
    from idc_engine.data.photo_edits import captions_for
    from idc_engine.metrics.report import evaluate, format_report

    edits = {
        "same": {"kind": "none", "color": None, "place": None, "effect": None},
        "added": {"kind": "add", "color": "orange", "place": "top left", "effect": None, "shape": "star"},
        "blue": {"kind": "color", "color": "blue", "place": "right", "effect": None},
    }
    pairs = [
        IDCPair(i, "r.png", "m.png", captions_for(e), category=e["kind"], split="test", metadata={"edit": e})
        for i, e in edits.items()
    ]
    invented = captions_for(edits["added"])[0]
    predictions = {"same": invented, "added": invented, "blue": captions_for(edits["same"])[0]}
    reader = choose_reader(pairs)
    assert reader is not None and reader.name == "photo-edits"
    summary = score_changes(predictions, pairs, reader).summary
    assert summary["unchanged_pairs"] == 1 and summary["false_change_rate"] == 1.0
    assert summary["true_positives"] == 1 and summary["false_positives"] == 1 and summary["false_negatives"] == 1
    assert summary["hallucination_rate"] is None  # what is in a photograph is not known
    text = format_report(evaluate(pairs, predictions))
    assert "not measured" not in text and "photo-edits reader" in text
