from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from idc_engine.data.formats import read_format
from idc_engine.data.pair import IDCPair
from idc_engine.metrics import report as report_module
from idc_engine.metrics.baselines import (
    BaselineConfig,
    ConstantCider,
    choose_mean_sentence,
    frequent_captions,
    mean_sentence,
    nearest_neighbour,
)
from idc_engine.metrics.captions import tokenize
from idc_engine.metrics.report import evaluate
from tests.data.formats import FIXTURES, requires_fixtures


def _splits(name: str, folder: str, **options) -> dict[str, list[list[str]]]:
    result = read_format(name, FIXTURES / folder, FIXTURES / folder, check_images=False, **options)
    return {s: [p.captions for p in result.pairs if p.split == s] for s in ("train", "validation", "test")}


def test_mean_sentence_is_the_consensus_caption():
    train = [["a dog appeared", "a dog was added"]] * 5 + [["the cat left"]] * 2 + [["the dog was added"]]
    assert mean_sentence(train, config=BaselineConfig()) in ("a dog was added", "a dog appeared")


def test_mean_sentence_is_chosen_on_the_validation_split_when_given():
    train = [["a dog was added"]] * 6 + [["the cat left"]] * 2
    validation = [["the cat left", "a cat went away"]] * 4 + [["a dog was added"]]
    assert mean_sentence(train) == "a dog was added"
    chosen = choose_mean_sentence(train, validation)
    assert (chosen.sentence, chosen.split, chosen.candidates, chosen.pairs) == ("the cat left", "validation", 2, 5)
    assert mean_sentence(train, validation) == "the cat left"
    with pytest.raises(TypeError, match="config="):
        mean_sentence(train, BaselineConfig())


def test_evaluate_chooses_the_mean_sentence_on_validation_pairs(monkeypatch):
    # Scoring is not under test here (it runs Java twice per system): keep what evaluate hands it.
    monkeypatch.setattr(
        report_module, "score_system", lambda name, predictions, pairs, note="": SimpleNamespace(note=note)
    )

    def pairs(split, captions):
        return [IDCPair(f"{split}{i}", Path("r.png"), Path("m.png"), c, split) for i, c in enumerate(captions)]

    train = pairs("train", [["a dog was added"]] * 6 + [["the cat left"]] * 2)
    validation = pairs("validation", [["the cat left", "a cat went away"]] * 4 + [["a dog was added"]])
    test = pairs("test", [["the cat left", "the cat is gone"]] * 3)
    predictions = {p.id: "the cat left" for p in test}
    report = evaluate(test, predictions, train, nearest=False, validation_pairs=validation)
    note = report.systems["mean_sentence"].note
    assert note == "always: 'the cat left' (chosen on validation among 2 training captions)"
    report = evaluate(test, predictions, train, nearest=False, validation_pairs=[])
    assert (
        report.systems["mean_sentence"].note == "always: 'a dog was added' (chosen on train among 2 training captions)"
    )


def test_frequent_captions_count_spellings_together():
    captions = [["Brighten the image ", "zoom in"], ["brighten  the image"], ["Brighten the image"], ["zoom in"], ["x"]]
    assert frequent_captions(captions, 2) == ["Brighten the image", "zoom in"]


@requires_fixtures
def test_constant_cider_equals_a_fresh_corpus_cider_call():
    from pycocoevalcap.cider.cider import Cider

    splits = _splits("ier", "ier")
    references = splits["validation"][:150]
    candidates = frequent_captions(splits["train"], 6) + ["make the sky blue and remove the man on the left"]
    tokens = tokenize({**{f"r{i}": refs for i, refs in enumerate(references)}, "c": candidates})
    gts = {i: tokens[f"r{i}"] for i in range(len(references))}
    scorer = ConstantCider(list(gts.values()))
    for candidate in tokens["c"]:
        score, items = Cider().compute_score(gts, {i: [candidate] for i in gts})
        assert scorer.score(candidate) == score
        assert np.array_equal(scorer.item_scores(candidate), items)


@requires_fixtures
def test_spot_the_diff_constant_is_as_strong_on_test_as_any_frequent_training_caption():
    # The old rule (60 candidates scored on 600 training pairs) chose "the person on the stairs is
    # no longer there": test CIDEr-D 12.8, while "there is a car in the parking lot" scores 29.7.
    splits = _splits("spot-the-diff", "spot_the_diff", merge_repeats=True)
    chosen = choose_mean_sentence(splits["train"], splits["validation"])
    assert (chosen.split, chosen.candidates) == ("validation", 300)
    sample = frequent_captions(splits["train"], 100)
    tokens = tokenize({**{f"r{i}": refs for i, refs in enumerate(splits["test"])}, "c": sample, "x": [chosen.sentence]})
    test = ConstantCider([tokens[f"r{i}"] for i in range(len(splits["test"]))])
    best_of_sample = max(test.score(c) for c in tokens["c"] if c.strip())
    assert test.score(tokens["x"][0]) >= best_of_sample > 0.25


def test_nearest_neighbour_returns_the_closest_pairs_caption():
    red, blue, green = (Image.new("RGB", (8, 8), c) for c in ("red", "blue", "green"))
    train = [(red, blue), (red, red), (green, green)]
    captions = [["turned blue"], ["no change"], ["all green"]]
    queries = [(red, blue), (green, green), (red, red)]
    assert nearest_neighbour(train, captions, queries) == ["turned blue", "all green", "no change"]


def test_evaluate_leaves_out_pairs_without_references_and_counts_them_apart(monkeypatch):
    scored = {}

    def score_system(name, predictions, pairs, note=""):
        scored[name] = [p.id for p in pairs]
        return SimpleNamespace(
            note=note, table={}, reading=None, change_level=None, scores=SimpleNamespace(per_sample={}), predictions={}
        )

    monkeypatch.setattr(report_module, "score_system", score_system)

    def pair(pair_id, split, captions):
        return IDCPair(pair_id, Path("r.png"), Path("m.png"), captions, split)

    test = [pair("t0", "test", ["the cat left"]), pair("t1", "test", ["a dog was added"])]
    test += [pair("t2", "test", ["the cat left"]), pair("new0", "test", []), pair("new1", "test", [])]
    predictions = {"t0": "the cat left", "t1": "the cat left", "new0": "a cat"}  # no caption for t2, new1
    # Captionless training and validation pairs must not reach the baselines either.
    train = [pair("a", "train", ["the cat left"]), pair("b", "train", [])]
    validation = [pair("v", "validation", [])]
    report = evaluate(test, predictions, train, nearest=False, validation_pairs=validation)
    assert report.unreferenced == ["new0", "new1"] and report.left_out == ["t2"]
    assert scored == {"model": ["t0", "t1"], "mean_sentence": ["t0", "t1"]}
    assert report.systems["mean_sentence"].note.endswith("(chosen on train among 1 training captions)")
    assert report.to_dict()["unreferenced"] == {"count": 2, "pairs": ["new0", "new1"]}
    assert report.to_dict()["left_out"] == {"count": 1, "pairs": ["t2"]}
    assert "mean_sentence" not in evaluate(test, predictions, train[1:], nearest=False).systems
    with pytest.raises(ValueError, match="pairs: none of the 2 pairs has reference captions to score against"):
        evaluate(test[3:], predictions)


def test_format_report_names_both_kinds_of_left_out_pairs():
    row = {**{m: 0.5 for m in report_module.MAIN_METRICS}, "count": 2}
    system = report_module.SystemResult("model", {}, None, {"all": row})
    text = report_module.format_report(report_module.EvalReport({"model": system}, ["t2"], ["new0", "new1"]))
    assert "left out: 1 pairs without a prediction (first: 't2')" in text
    assert "left out: 2 pairs without reference captions (first: 'new0')" in text
