"""Tests that load the embedded ``tiny-photo`` checkpoint need it on disk.

The repository carries it (``idc_engine/assets/tiny-blip2-photo``, made by ``make pretrain-tiny-photo``); a
checkout without it skips these tests with the reason and the command, instead of failing on a missing file.
The error a user gets without it is tested on its own (tests/model/test_tiny_photo.py).
"""

import pytest

from idc_engine.model.base_reference import TINY_PHOTO_CHECKPOINT

requires_tiny_photo = pytest.mark.skipif(
    not (TINY_PHOTO_CHECKPOINT / "model.safetensors").is_file(),
    reason=f"the embedded tiny-photo checkpoint is not at {TINY_PHOTO_CHECKPOINT}: run `make pretrain-tiny-photo`",
)
