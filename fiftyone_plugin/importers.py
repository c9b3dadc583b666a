"""Import IDC data into grouped FiftyOne datasets, and export them back to JSONL manifests."""

from __future__ import annotations

from pathlib import Path

from fiftyone_plugin.dataset import add_pairs, dataset_to_pairs, new_dataset
from idc_engine.data.formats import FORMATS, ImportResult, read_format
from idc_engine.data.manifest import read_manifest, write_manifest

IMPORT_FORMATS = ("manifest", "shapes-change", *FORMATS)


def read_pairs(format: str, source=None, images_dir=None, **options) -> ImportResult:
    """Pairs of ``source`` in ``format``; pairs whose images are missing are left out and counted.

    For ``image-folders``, ``source`` is the folder of originals and ``images_dir`` the folder of
    edited images (or pass ``reference_dir=`` and ``modified_dir=``); the pairs have no captions.
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


def import_idc_dataset(
    format: str, source=None, images_dir=None, name=None, persistent=False, overwrite=False, progress=None, **options
):
    """Build a grouped IDC dataset from ``source``; return ``(dataset, ImportResult)``.

    ``import_idc_dataset("image-folders", reference_dir=originals, modified_dir=edited)`` pairs two
    folders of images by relative file name (see :mod:`idc_engine.data.formats.image_folders`).

    The source is read completely before the dataset is created, so a bad source leaves no half-made
    dataset; with ``overwrite=False`` an existing dataset of that name is refused, untouched.
    """
    import fiftyone as fo

    if name and fo.dataset_exists(name) and not overwrite:
        raise ValueError(f"name: dataset {name!r} already exists; choose another name or overwrite it")
    result = read_pairs(format, source, images_dir, **options)
    if format == "image-folders":  # the two folders, whichever way they were given
        source, images_dir = options.get("reference_dir") or source, options.get("modified_dir") or images_dir
    if not result.pairs:
        raise ValueError(f"source {str(source)!r}: no usable pairs ({result.summary()})")
    dataset = new_dataset(name, persistent=persistent, overwrite=overwrite)
    add_pairs(dataset, result.pairs, progress=progress)
    dataset.info["idc_import"] = {"format": format, "source": str(source), "summary": result.summary()}
    if images_dir is not None:
        dataset.info["idc_import"]["images_dir"] = str(images_dir)
    dataset.save()
    return dataset, result


def export_manifest(samples, path) -> Path:
    """Write the pairs of a grouped dataset or view as a JSONL manifest (lossless for idc's fields)."""
    return write_manifest(dataset_to_pairs(samples), path)
