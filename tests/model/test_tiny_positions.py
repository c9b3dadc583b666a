"""Where a patch is, as the tiny ViT first sees it: sine-cosine position codes for photo pretraining."""

import pytest
import torch

from idc_engine.model.tiny import TinyPresetConfig, build_tiny, sincos_positions
from idc_engine.pretrain import PhotoPretrainConfig


def test_every_patch_has_its_own_code_and_neighbours_are_closer_than_far_patches():
    codes = sincos_positions(8, 128)
    assert codes.shape == (64, 128)
    assert torch.cdist(codes, codes).add(torch.eye(64) * 1e3).min() > 0.1  # no two patches alike
    unit = codes / codes.norm(dim=1, keepdim=True)
    similarity = unit @ unit.T
    top_left, right_neighbour, below, far_corner = 0, 1, 8, 63
    assert similarity[top_left, right_neighbour] > similarity[top_left, far_corner] + 0.5
    assert similarity[top_left, below] > similarity[top_left, far_corner] + 0.5
    # Rows and columns are coded alike: the patch right of a patch is as close as the one below it.
    assert similarity[top_left, right_neighbour] == pytest.approx(float(similarity[top_left, below]), abs=1e-6)


def test_the_photo_preset_starts_from_the_codes_and_the_shapes_preset_from_blip2s_initialisation():
    photo = build_tiny(PhotoPretrainConfig().preset())
    embedding = photo.base.vision_model.embeddings.position_embedding.detach()[0]
    assert torch.equal(embedding[0], torch.zeros(128))  # the class token has no place
    assert torch.allclose(embedding[1:], sincos_positions(8, 128))
    assert photo.base.vision_model.embeddings.position_embedding.requires_grad  # learned from there on
    shapes = build_tiny(TinyPresetConfig()).base.vision_model.embeddings.position_embedding.detach()[0, 1:]
    assert not torch.allclose(shapes[:, :128], sincos_positions(6, 128), atol=0.1)


def test_an_unknown_position_init_is_named():
    with pytest.raises(ValueError, match="position_init must be 'random' or 'sincos', got 'learned'"):
        TinyPresetConfig(position_init="learned")
    with pytest.raises(ValueError, match="width must be a multiple of 4"):
        sincos_positions(8, 130)
