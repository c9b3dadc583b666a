"""Importers for public IDC datasets: annotation files on disk -> :class:`IDCPair` objects.

Pure Python on purpose (no FiftyOne, no ``datasets``): the offline engine must read a downloaded
release on a machine that has neither. Every reader takes ``(annotations, images_dir, **options)``
and returns an :class:`ImportResult`; it never stops at a bad record or a missing image, and raises
only when an annotation file as a whole is absent or unreadable.

``read_format(name, annotations, images_dir, **options)`` picks the reader by name; each module's
docstring documents its file layout, image naming and the quirks of the real release.
``image-folders`` has no annotation file: ``annotations`` is the folder of originals and
``images_dir`` the folder of edited images, paired by relative file name, without captions.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable

from idc_engine.data.formats.clevr_change import read_clevr_change
from idc_engine.data.formats.clevr_dc import read_clevr_dc
from idc_engine.data.formats.ier import read_ier
from idc_engine.data.formats.image_folders import read_image_folders
from idc_engine.data.formats.magicbrush import read_magicbrush
from idc_engine.data.formats.result import AnnotationError, ImportResult
from idc_engine.data.formats.spot_the_diff import read_spot_the_diff
from idc_engine.data.formats.syned import read_syned

FORMATS: dict[str, Callable[..., ImportResult]] = {
    "spot-the-diff": read_spot_the_diff,
    "ier": read_ier,
    "clevr-change": read_clevr_change,
    "clevr-dc": read_clevr_dc,
    "syned": read_syned,
    "magicbrush": read_magicbrush,
    "image-folders": read_image_folders,
}

__all__ = ["FORMATS", "AnnotationError", "ImportResult", "format_options", "read_format"]


def format_options(name: str) -> list[str]:
    """The keyword options the reader of format ``name`` accepts."""
    reader = _reader(name)
    return [p.name for p in inspect.signature(reader).parameters.values() if p.kind is p.KEYWORD_ONLY]


def read_format(name: str, annotations: str | os.PathLike, images_dir: str | os.PathLike, **options) -> ImportResult:
    """Import dataset ``name`` from ``annotations`` with images under ``images_dir``.

    An unknown ``name`` or option raises ``ValueError`` naming the bad value and the valid ones.
    """
    reader = _reader(name)
    valid = format_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"options for format {name!r} must be among {', '.join(valid)}; got unknown {unknown[0]!r}")
    return reader(annotations, images_dir, **options)


def _reader(name: str) -> Callable[..., ImportResult]:
    key = str(name).strip().lower().replace("_", "-")
    if key not in FORMATS:
        raise ValueError(f"format name must be one of {', '.join(FORMATS)}, got {name!r}")
    return FORMATS[key]
