"""Shared helpers for the importer tests: where the real fixtures live and tiny placeholder images."""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

import pytest
from PIL import Image

FIXTURES = (Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures" / "idc_formats").resolve()

requires_fixtures = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"real IDC annotation fixtures not found at {FIXTURES}"
)


def png_bytes(color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """An 8x8 PNG: enough for a path check, cheap to write thousands of times."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buffer, format="PNG")
    return buffer.getvalue()


def write_images(paths: Iterable[Path]) -> int:
    """Write a placeholder PNG at every path (creating folders); returns how many were written."""
    data, count = png_bytes(), 0
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        count += 1
    return count
