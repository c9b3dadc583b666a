"""Retraining on the reviewers' corrections, measured on pairs it did not see."""

import pytest

from fiftyone_plugin.captioning import caption_samples
from fiftyone_plugin.dataset import MODIFIED
from fiftyone_plugin.review import edit


@pytest.fixture
def captioned(idc_dataset, tiny_model):
    caption_samples(idc_dataset.match_tags("test"), tiny_model, "idc_caption")
    return idc_dataset


def test_retraining_on_reviewed_pairs_is_compared_on_held_out_pairs(captioned, tiny_dir, tmp_path):
    from fiftyone_plugin.evaluation import compare_runs, evaluate_idc_captions
    from fiftyone_plugin.retrain import held_out, retrain_on_reviewed
    from idc_engine.model.config import LoraSettings
    from idc_engine.train.config import TrainConfig

    test = captioned.match_tags("test")
    pairs = test.select_group_slices(MODIFIED).values(["pair_id", "captions"])
    for pair_id, references in zip(*pairs):
        edit(captioned, pair_id, references[0])  # the reviewer writes the right caption for each
    config = TrainConfig(lora=LoraSettings(rank=4), max_steps=4, batch_size=4, eval_every=0, checkpoint_every=4)
    summary = retrain_on_reviewed(test, "idc_caption", tmp_path / "retrain", config, holdout=0.25)
    held = [p for p in pairs[0] if held_out(p, 0.25)]
    assert summary["held_out"] == len(held) and summary["trained_on"] == len(pairs[0]) - len(held)
    assert summary["started_from"] == str(tiny_dir)  # the model that wrote idc_caption
    retrained = dict(zip(*captioned.select_group_slices(MODIFIED).values(["pair_id", "idc_caption_retrained"])))
    assert {p for p, c in retrained.items() if c is not None} == set(held)
    assert set(summary["comparison"]["all"]) == {"idc_caption_review_before", "idc_caption_review_after", "delta"}

    # A run over other pairs cannot be compared with them.
    evaluate_idc_captions(test, "idc_caption", "everything", baselines=False, references="reviewed")
    with pytest.raises(ValueError, match="scored different pairs"):
        compare_runs(captioned, "everything", "idc_caption_review_after")
