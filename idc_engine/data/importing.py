"""Read any source idc imports — a manifest, shapes-change, or a public format — into pairs.

One path for `idc import` (which writes a manifest) and the FiftyOne importer (which builds a grouped
dataset): the same formats, the same options and the same errors. Pairs whose images are missing are
left out and counted in the returned :class:`ImportResult`, never half-imported.
"""

from __future__ import annotations

from pathlib import Path

from idc_engine.data.formats import FORMATS, ImportResult, read_format
from idc_engine.data.manifest import read_manifest

IMPORT_FORMATS = ("manifest", "shapes-change", *FORMATS)


def read_pairs(format: str, source=None, images_dir=None, **options) -> ImportResult:
    """Pairs of ``source`` in ``format``; pairs whose images are missing are left out and counted.

    For ``image-folders``, ``source`` is the folder of originals and ``images_dir`` the folder of
    edited images (or pass ``reference_dir=`` and ``modified_dir=``); the pairs have no captions.
    For ``shapes-change``, ``source`` is the folder the benchmark is written to; ``train``,
    ``validation`` and ``test`` set its sizes and the other options are ShapesChangeConfig fields.
    """
    if format not in IMPORT_FORMATS:
        raise ValueError(f"format must be one of {', '.join(IMPORT_FORMATS)}, got {format!r}")
    if format == "image-folders":
        return read_format(format, source, images_dir, **options)
    if source is None:
        raise ValueError(f"source: format {format!r} needs its manifest, annotation file or folder")
    if format in FORMATS:
        if images_dir is None:
            raise ValueError(f"images_dir: format {format!r} needs the folder that holds its images")
        return read_format(format, source, images_dir, **options)
    if format == "shapes-change":
        from idc_engine.data.shapes_change import ShapesChangeConfig, generate

        sizes = {k: int(options.pop(k, default)) for k, default in (("train", 200), ("validation", 50), ("test", 100))}
        source = generate(source, sizes["train"], sizes["test"], sizes["validation"], ShapesChangeConfig(**options))
    elif options:
        raise ValueError(f"options: format 'manifest' takes none, got {sorted(options)}")
    result = ImportResult()
    for pair in read_manifest(source):
        absent = [p for p in (pair.reference, pair.modified) if not Path(p).is_file()]
        if absent:
            result.missing.append((pair.id, f"image {absent[0]} does not exist"))
        else:
            result.pairs.append(pair)
    return result
