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
    with pytest.raises(ValueError, match="width must be a multiple of 4"):
        sincos_positions(8, 0)  # no channel to hold a code


def test_a_vision_width_the_codes_cannot_fill_is_refused_by_the_preset_not_after_the_model_is_built():
    with pytest.raises(ValueError, match=r"vision_hidden \(130\) must be a multiple of 4"):
        TinyPresetConfig(position_init="sincos", vision_hidden=130, vision_heads=2)
    TinyPresetConfig(vision_hidden=130, vision_heads=2)  # BLIP-2's random init has no such constraint


@pytest.mark.parametrize("grid, width", [(8, 4), (8, 8), (6, 12), (1, 4), (3, 128)])
def test_every_patch_has_its_own_code_at_any_width(grid, width):
    # With one frequency per axis (width 4) the highest (a quarter turn per patch) repeated every four
    # patches: rows 0 and 4 of a grid of 8 had the same code.
    codes = sincos_positions(grid, width)
    assert codes.shape == (grid * grid, width)
    if grid > 1:
        assert torch.cdist(codes, codes).add(torch.eye(grid * grid) * 1e3).min() > 1e-3
