import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

from idc_engine.metrics.captions import category_table, score_captions

REFERENCES = {
    "a": ["the red circle turned blue", "the red circle became blue", "the red circle is now blue"],
    "b": ["a green square was added", "a new green square appeared", "there is a new green square"],
    "c": ["there is no change", "nothing has changed", "no change was made"],
    "d": ["the yellow triangle was removed", "the yellow triangle is gone", "the yellow triangle disappeared"],
}
PREDICTIONS = {
    "a": "The red circle turned blue.",
    "b": "a green circle was added",
    "c": "nothing has changed",
    "d": "the blue square moved",
}


def _reference_scores():
    """pycocoevalcap used directly, the way its own COCOEvalCap does."""
    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize({k: [{"caption": c} for c in v] for k, v in REFERENCES.items()})
    res = tokenizer.tokenize({k: [{"caption": v}] for k, v in PREDICTIONS.items()})
    bleu, bleu_items = Bleu(4).compute_score(gts, res, verbose=0)
    meteor, _ = Meteor().compute_score(gts, res)
    rouge, _ = Rouge().compute_score(gts, res)
    cider, cider_items = Cider().compute_score(gts, res)
    return bleu, bleu_items, meteor, rouge, cider, cider_items


def test_scores_equal_pycocoevalcap():
    ours = score_captions(PREDICTIONS, REFERENCES)
    bleu, bleu_items, meteor, rouge, cider, cider_items = _reference_scores()
    for n in range(4):
        assert ours.corpus[f"BLEU-{n + 1}"] == pytest.approx(bleu[n])
    assert ours.corpus["METEOR"] == pytest.approx(meteor)
    assert ours.corpus["ROUGE-L"] == pytest.approx(rouge)
    assert ours.corpus["CIDEr-D"] == pytest.approx(cider)
    for i, key in enumerate(REFERENCES):
        assert ours.per_sample[key]["CIDEr-D"] == pytest.approx(cider_items[i])
        assert ours.per_sample[key]["BLEU-4"] == pytest.approx(bleu_items[3][i])


def test_hand_checked_values():
    ours = score_captions(PREDICTIONS, REFERENCES)
    # "a" matches a reference exactly after PTB tokenization (case and final period removed).
    assert ours.per_sample["a"]["BLEU-4"] == pytest.approx(1.0, abs=1e-6)
    assert ours.per_sample["a"]["ROUGE-L"] == pytest.approx(1.0)
    # "d" shares only "the" with its references: no bigram, so BLEU-2..4 and ROUGE-L are ~0 / low.
    assert ours.per_sample["d"]["BLEU-4"] < 1e-6
    # ROUGE-L of "b": LCS with "a green square was added" is 4 of 5 words both ways (beta=1.2) -> 0.8.
    assert ours.per_sample["b"]["ROUGE-L"] == pytest.approx(0.8)
    assert ours.per_sample["a"]["CIDEr-D"] > ours.per_sample["b"]["CIDEr-D"] > ours.per_sample["d"]["CIDEr-D"]


def test_empty_prediction_scores_zero_and_is_not_replaced():
    predictions = dict(PREDICTIONS, c="")
    scores = score_captions(predictions, REFERENCES)
    assert scores.per_sample["c"]["CIDEr-D"] == 0.0 and scores.per_sample["c"]["METEOR"] == 0.0


def test_missing_references_are_reported():
    with pytest.raises(ValueError, match=r"references: no references for prediction id 'zz'"):
        score_captions({"zz": "a caption"}, REFERENCES)


def test_category_table_uses_whole_split_cider():
    ours = score_captions(PREDICTIONS, REFERENCES)
    categories = {"a": "color", "b": "add", "c": "none", "d": "drop"}
    table = category_table(ours, PREDICTIONS, REFERENCES, categories)
    assert set(table) == {"all", "color", "add", "none", "drop"}
    assert table["none"]["CIDEr-D"] == pytest.approx(ours.per_sample["c"]["CIDEr-D"])
    assert table["none"]["CIDEr-D"] > 0  # a subset of identical references would have weighed it zero
    assert table["all"]["count"] == 4 and table["color"]["count"] == 1


def test_tokenize_matches_pycocoevalcap_and_keeps_the_console_quiet(capfd):
    from idc_engine.metrics.captions import tokenize

    texts = {
        "x": ["The red circle (left) turned BLUE!", "It's gone -- isn't it?", "café, naïve; ok...", "..."],
        "y": ["two\nlines", "a  spaced   caption"],
    }
    expected = PTBTokenizer().tokenize({k: [{"caption": c} for c in v] for k, v in texts.items()})
    capfd.readouterr()
    assert tokenize(texts) == expected
    captured = capfd.readouterr()
    assert "PTBTokenizer" not in captured.err + captured.out
