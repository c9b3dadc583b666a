"""The no-change decision: the model's probability of no change, the difference prior, calibration,
and one path for every caller of captioning."""

import json
from dataclasses import asdict

import numpy as np
import pytest
import torch

from idc_engine.data.loading import load_pairs
from idc_engine.data.manifest import read_manifest
from idc_engine.data.pair import IDCPair
from idc_engine.data.shapes_change import NONE_NOISY, TEMPLATES, ShapesChangeConfig, generate
from idc_engine.inference.caption import GenerationConfig, caption_idc_pairs, caption_pairs
from idc_engine.inference.no_change import (
    calibrate_no_change,
    choose_threshold,
    decision_probability,
    difference_area,
    fit_logistic,
    no_change_probability,
    sentences_log_probs,
)
from idc_engine.model.config import BLIP2IDCConfig
from idc_engine.model.loading import load_model
from idc_engine.model.tiny import DESCRIBE_PROMPT

NONE = TEMPLATES["none"]


@pytest.fixture
def tiny():
    model = load_model("tiny")
    model.config.no_change_threshold, model.config.no_change_weights = None, ()
    model.config.no_change_captions = NONE
    return model


def test_sentence_log_probabilities_are_those_of_teacher_forcing(tiny, shapes_pairs):
    _, images, _ = load_pairs(shapes_pairs[:3])
    pixel_values = tiny.pixel_values(images)
    scored = sentences_log_probs(tiny, pixel_values, NONE[:2])
    for k, sentence in enumerate(NONE[:2]):
        batch = tiny.text_batch([sentence] * 3)
        with torch.no_grad():
            for row in range(3):
                mean = -tiny(pixel_values[row : row + 1], **{n: v[row : row + 1] for n, v in batch.items()}).loss
                tokens = int((batch["labels"][row, 1:] != -100).sum())
                assert scored[row, k] == pytest.approx(mean.item() * tokens, abs=1e-3)
    total = no_change_probability(tiny, pixel_values)
    assert np.allclose(total, np.exp(sentences_log_probs(tiny, pixel_values, NONE)).sum(1))


def test_the_difference_prior_ignores_noise_and_sees_changes(tmp_path, shapes_pairs):
    _, images, _ = load_pairs(shapes_pairs)
    areas = {p.id: difference_area(*pair) for p, pair in zip(shapes_pairs, images)}
    assert all(areas[p.id] == 0.0 for p in shapes_pairs if p.category == "none")
    changed = [areas[p.id] for p in shapes_pairs if p.category != "none"]
    assert sum(a > 0 for a in changed) >= 0.9 * len(changed)
    # A camera shift of up to two pixels with heavy JPEG or sensor noise is not a change either.
    config = ShapesChangeConfig(none_share=1.0, strong_noise_share=1.0, seed=3)
    noisy = read_manifest(generate(tmp_path, train=20, test=0, config=config))
    _, noisy_images, _ = load_pairs(noisy)
    assert all(p.category == NONE_NOISY for p in noisy)
    assert sum(difference_area(*pair) == 0.0 for pair in noisy_images) >= 17


def test_decision_turns_change_captions_into_no_change_on_every_captioning_path(tiny, shapes_pairs):
    pairs = [p for p in shapes_pairs if p.split == "test"][:8]
    plain = caption_idc_pairs(tiny, pairs, GenerationConfig(batch_size=4))
    assert plain.no_change_probabilities == {}  # no threshold: not asked, captions as generated
    tiny.config.no_change_threshold = 1e-6  # any belief in "no change" at all
    decided = caption_idc_pairs(tiny, pairs, GenerationConfig(batch_size=4))
    assert set(decided.captions.values()) == {NONE[0]} or all(
        decided.captions[p.id] in NONE for p in pairs
    )  # greedy "no change" wordings stay as they were
    assert set(decided.no_change_probabilities) == {p.id for p in pairs}
    for pair in pairs:
        p = decided.no_change_probabilities[pair.id]
        if decided.captions[pair.id] in NONE:
            assert decided.confidences[pair.id] == pytest.approx(np.log(p))
        else:
            assert decided.confidences[pair.id] == pytest.approx(plain.confidences[pair.id] + np.log(1 - p))
    # A pair asked another task (its own prompt) is left as generated.
    described = [
        IDCPair(p.id, p.reference, p.modified, p.captions, p.split, p.category, {"prompt": DESCRIBE_PROMPT})
        for p in pairs[:2]
    ]
    result = caption_idc_pairs(tiny, described, GenerationConfig(batch_size=2))
    assert all(result.captions[p.id].startswith("top:") for p in described)
    assert result.no_change_probabilities == {}
    # The same path for decoded images (training's validation uses it).
    _, images, _ = load_pairs(pairs[:2])
    assert caption_pairs(tiny, images) == [decided.captions[p.id] for p in pairs[:2]]


def test_the_decision_and_its_weights_travel_with_the_saved_config(tmp_path):
    config = BLIP2IDCConfig(no_change_captions=NONE, no_change_threshold=0.4, no_change_weights=(1.0, -2.0, -9.0))
    config.save(tmp_path)
    loaded = BLIP2IDCConfig.load(tmp_path)
    assert loaded.no_change_captions == NONE and loaded.no_change_threshold == 0.4
    assert loaded.no_change_weights == (1.0, -2.0, -9.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"no_change_threshold": 0.5}, "no_change_threshold needs no_change_captions"),
        ({"no_change_captions": NONE, "no_change_threshold": 1.5}, "no_change_threshold must be in \\(0, 1\\]"),
        ({"no_change_captions": ("",)}, "no_change_captions must be non-empty strings"),
        ({"no_change_weights": (1.0,)}, "no_change_weights must be empty"),
    ],
)
def test_bad_decision_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BLIP2IDCConfig(**kwargs)


def test_the_prior_combines_with_the_model_by_logistic_weights():
    model_says = np.array([0.9, 0.2, 0.2, 0.01])
    areas = np.array([0.0, 0.0, 0.05, 0.05])
    alone = decision_probability(model_says, None, ())
    assert np.allclose(alone, model_says)
    combined = decision_probability(model_says, areas, (1.0, -2.0, -10.0))
    # No difference lifts the model's 0.2 above the same 0.2 with a difference.
    assert combined[1] > combined[2] and combined[0] > combined[1] > combined[3]
    with pytest.raises(ValueError, match="expected 3 values"):
        decision_probability(model_says, areas, (1.0, 0.0))


def test_logistic_fit_and_threshold_separate_what_can_be_separated():
    rng = np.random.default_rng(0)
    unchanged = np.arange(200) < 60
    x = np.where(unchanged, 1.0, -1.0)[:, None] + rng.normal(0, 0.3, size=(200, 1))
    weights = fit_logistic(x, unchanged)
    assert weights[0] > 0
    probabilities = decision_probability(1 / (1 + np.exp(-x[:, 0])), None, ())
    greedy_none = np.zeros(200, bool)
    threshold, before, after = choose_threshold(probabilities, unchanged, greedy_none)
    assert before == {"true_negative_rate": 0.0, "changed_still_a_change": 1.0}
    assert after == {"true_negative_rate": 1.0, "changed_still_a_change": 1.0}
    lowest_unchanged = probabilities[unchanged].min()
    highest_changed = probabilities[~unchanged].max()
    assert highest_changed < threshold <= lowest_unchanged
    # Where deciding cannot help (the model already says it), no threshold is set.
    assert choose_threshold(probabilities, unchanged, unchanged.copy())[0] is None


def test_a_model_that_misreads_every_change_is_not_pushed_to_call_everything_unchanged():
    # 10 unchanged pairs the model believes unchanged at 0.6-0.9; 30 changed ones at 0.1-0.7. Calling
    # all 40 unchanged would make every changed caption "no change": never the best balanced choice.
    unchanged = np.arange(40) < 10
    probabilities = np.where(unchanged, np.linspace(0.6, 0.9, 40), np.linspace(0.1, 0.7, 40))
    threshold, _, after = choose_threshold(probabilities, unchanged, np.zeros(40, bool))
    assert threshold > probabilities[~unchanged].min() and after["changed_still_a_change"] > 0.5


def test_calibration_sets_the_config_from_validation_pairs(tiny, shapes_pairs):
    pairs = [p for p in shapes_pairs if p.split in ("validation", "train")][:40]
    _, images, _ = load_pairs(pairs)
    calibration = calibrate_no_change(tiny, pairs, images, difference_prior=True)
    assert calibration.unchanged == sum(p.category == "none" for p in pairs) and calibration.pairs == 40
    assert tiny.config.no_change_threshold == calibration.threshold
    assert tiny.config.no_change_weights == calibration.weights
    if calibration.threshold is not None:
        assert len(calibration.weights) == 3
        assert calibration.after["true_negative_rate"] >= calibration.before["true_negative_rate"]
    with pytest.raises(ValueError, match="calibrating needs at least 5 unchanged and 5 changed pairs"):
        changed = [p for p in pairs if p.category != "none"]
        calibrate_no_change(tiny, changed, [images[pairs.index(p)] for p in changed])


def test_two_stream_models_score_sentences_as_their_forward_does(shapes_pairs):
    from idc_engine.model.tiny import build_tiny

    model = build_tiny(config=BLIP2IDCConfig(encoding="two-stream")).eval()
    _, images, _ = load_pairs(shapes_pairs[:2])
    pixel_values = model.pixel_values(images)
    scored = sentences_log_probs(model, pixel_values, NONE[:1])
    batch = model.text_batch([NONE[0]] * 2)
    tokens = int((batch["labels"][0, 1:] != -100).sum())
    with torch.no_grad():
        for row in range(2):
            loss = model(pixel_values[row : row + 1], **{n: v[row : row + 1] for n, v in batch.items()}).loss
            assert scored[row, 0] == pytest.approx(-loss.item() * tokens, abs=1e-3)


def test_the_stored_threshold_decides_the_calibration_pairs_as_the_reported_figures_say():
    # The logistic with the prior saturates: unchanged pairs at 1 - 1e-7, one changed pair at 1 - 1e-6.
    # The best threshold lies between them; rounded to 6 decimals it fell below the changed pair,
    # which the stored decision then called unchanged while `after` reported every changed pair kept.
    unchanged = np.arange(12) < 6
    probabilities = np.array([1 - 1e-7, 1 - 5e-8, 1 - 8e-8, 1 - 7e-8, 1 - 6e-8, 1 - 4e-8])
    probabilities = np.concatenate([probabilities, [1 - 1e-6, 0.2, 0.3, 0.1, 0.05, 0.4]])
    threshold, _, after = choose_threshold(probabilities, unchanged, np.zeros(12, bool))
    assert after == {"true_negative_rate": 1.0, "changed_still_a_change": 1.0}
    decided = probabilities >= threshold
    assert decided[unchanged].mean() == after["true_negative_rate"]
    assert (~decided)[~unchanged].mean() == after["changed_still_a_change"]
    # The threshold survives the config's JSON round trip unchanged.
    config = BLIP2IDCConfig(no_change_captions=NONE, no_change_threshold=threshold)
    assert json.loads(json.dumps(asdict(config)))["no_change_threshold"] == threshold


def test_pairs_asked_another_task_take_no_part_in_calibration(tiny, shapes_pairs):
    """The decision never captions a pair with a prompt of its own (another task), so calibration must
    not count it either: `idc calibrate-no-change` read every pair of the split, training's step did not."""
    from idc_engine.model.tiny import DESCRIBE_PROMPT

    pairs = [p for p in shapes_pairs if p.split in ("validation", "train")][:40]
    asked = [
        IDCPair(
            f"{p.id}-describe",
            p.reference,
            p.modified,
            ["a red circle and a blue square"],
            p.split,
            "describe",
            {"prompt": DESCRIBE_PROMPT},
        )
        for p in pairs[:20]
    ]
    _, images, _ = load_pairs(pairs)
    _, asked_images, _ = load_pairs(asked)
    alone = calibrate_no_change(tiny, pairs, images, difference_prior=False)
    mixed = calibrate_no_change(tiny, pairs + asked, list(images) + list(asked_images), difference_prior=False)
    assert mixed.pairs == alone.pairs == 40 and mixed.unchanged == alone.unchanged
    assert mixed.to_dict() == alone.to_dict()


def test_a_calibration_that_fails_midway_keeps_the_decision_the_model_had(tiny, shapes_pairs, monkeypatch):
    """Training's last step recalibrates and, on a ValueError, keeps the decision the model had (its record
    says so): the failed attempt had already cleared it, and the model was saved without one."""
    import idc_engine.inference.no_change as no_change
    from idc_engine.inference.no_change import calibrate_after_training

    tiny.config.no_change_threshold, tiny.config.no_change_weights = 0.6, (1.0, -2.0, -9.0)
    pairs = [p for p in shapes_pairs if p.split in ("validation", "train")][:40]
    _, images, _ = load_pairs(pairs)

    def unreadable(reference, modified):
        raise ValueError("difference_area: the pair's images cannot be compared")

    monkeypatch.setattr(no_change, "difference_area", unreadable)
    record = calibrate_after_training(tiny, pairs, list(images))
    assert "skipped" in record and record["kept"] == {"threshold": 0.6}
    # Without validation pairs too, the record says the starting model's decision is kept.
    assert calibrate_after_training(tiny, [], []) == {
        "skipped": "no validation pairs (or eval_every is 0)",
        "kept": {"threshold": 0.6},
    }
    assert tiny.config.no_change_threshold == 0.6 and tiny.config.no_change_weights == (1.0, -2.0, -9.0)
