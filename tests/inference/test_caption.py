"""Captioning from disk: each pair's own prompt, a confidence per caption, and per-pair skipping."""

import shutil
from contextlib import nullcontext

import numpy as np
import pytest
import torch

from idc_engine.data.loading import load_pairs
from idc_engine.data.pair import IDCPair
from idc_engine.data.shapes_change import TEMPLATES
from idc_engine.errors import ImageLoadError
from idc_engine.inference.caption import GenerationConfig, caption_idc_pairs, caption_pairs
from idc_engine.model.loading import load_model
from idc_engine.model.tiny import DESCRIBE_PROMPT
from idc_engine.train.config import TrainConfig
from idc_engine.train.loop import validate


def _with_prompt(pair, prompt):
    return IDCPair(pair.id, pair.reference, pair.modified, pair.captions, pair.split, pair.category, {"prompt": prompt})


@pytest.fixture(scope="module")
def tiny():
    return load_model("tiny")  # pretrained on two prompts: it answers each in its own words


def test_a_pairs_own_prompt_reaches_captioning_and_validation(tiny, shapes_pairs):
    pairs = [p for p in shapes_pairs if p.split == "validation"][:4]
    described = [_with_prompt(p, DESCRIBE_PROMPT) for p in pairs[:2]] + pairs[2:]
    result = caption_idc_pairs(tiny, described, GenerationConfig(batch_size=4))
    # Asked to describe, the preset names both scenes; asked the difference, it says what changed.
    assert all(result.captions[p.id].startswith("top:") for p in described[:2])
    assert not any(result.captions[p.id].startswith("top:") for p in described[2:])
    _, images, _ = load_pairs(described)
    alone = caption_pairs(tiny, images[:1], prompts=[DESCRIBE_PROMPT])
    assert alone[0] == result.captions[described[0].id]  # left padding does not change a row's caption

    config = TrainConfig(batch_size=4, eval_metric="loss")
    with_prompts = validate(tiny, described, images, config, nullcontext())["val_loss"]
    pixel_values = tiny.pixel_values(images)
    captions = [p.captions[0] for p in described]
    with torch.no_grad():
        expected = tiny.loss(pixel_values, captions, [DESCRIBE_PROMPT] * 2 + [None] * 2).item()
        ignoring = tiny.loss(pixel_values, captions).item()
    assert with_prompts == pytest.approx(expected) and expected != pytest.approx(ignoring)


def test_confidence_is_the_log_probability_per_root_token_and_the_decision_adds_its_own(tiny, shapes_pairs):
    pairs = [p for p in shapes_pairs if p.split == "test"][:6]
    decision = tiny.config.no_change_threshold
    tiny.config.no_change_threshold = None  # the model's own confidence first
    try:
        result = caption_idc_pairs(tiny, pairs, GenerationConfig(batch_size=6))
    finally:
        tiny.config.no_change_threshold = decision
    _, images, _ = load_pairs(pairs)
    pixel_values = tiny.pixel_values(images)
    own = {}
    for pair, values in zip(pairs, pixel_values):
        caption = result.captions[pair.id]
        batch = tiny.text_batch([caption])
        tokens = int((batch["labels"][0, 1:] != -100).sum())  # the caption's tokens and its EOS
        with torch.no_grad():
            # loss = mean negative log-probability of the caption's tokens and its EOS
            log_probability = -tiny.loss(values[None], [caption]).item() * tokens
        own[pair.id] = log_probability / tokens**0.5
        assert result.confidences[pair.id] == pytest.approx(own[pair.id], abs=1e-4)
    if decision is None:
        return
    # The embedded preset decides "no change": a change caption's confidence also holds the probability
    # that something changed; a no-change caption's is the probability that nothing did.
    decided = caption_idc_pairs(tiny, pairs, GenerationConfig(batch_size=6))
    for pair in pairs:
        p = decided.no_change_probabilities[pair.id]
        if decided.captions[pair.id] in TEMPLATES["none"]:
            assert decided.confidences[pair.id] == pytest.approx(np.log(p), abs=1e-5)
        else:
            assert decided.captions[pair.id] == result.captions[pair.id]
            assert decided.confidences[pair.id] == pytest.approx(own[pair.id] + np.log(1 - p), abs=1e-4)


def test_an_unreadable_pair_is_skipped_and_named_the_rest_of_its_batch_is_captioned(tiny, shapes_pairs, tmp_path):
    pairs = []
    for pair in [p for p in shapes_pairs if p.split == "test"][:4]:
        modified = tmp_path / f"{pair.id}.png"
        shutil.copy(pair.modified, modified)
        pairs.append(IDCPair(pair.id, pair.reference, modified, pair.captions, pair.split, pair.category))
    pairs[2].modified.write_bytes(b"\x89PNG broken")
    result = caption_idc_pairs(tiny, pairs, GenerationConfig(batch_size=4))
    assert set(result.captions) == {pairs[0].id, pairs[1].id, pairs[3].id}
    assert result.report.skipped_count == 1 and pairs[2].id in result.report.skipped[0][1]
    with pytest.raises(ImageLoadError, match=pairs[2].id):
        caption_idc_pairs(tiny, pairs, GenerationConfig(batch_size=4), skip_bad=False)
