"""Import IDC data into grouped FiftyOne datasets, and export them back to JSONL manifests."""

from __future__ import annotations

from pathlib import Path

from fiftyone_plugin.dataset import add_pairs, dataset_to_pairs, new_dataset
from idc_engine.data.importing import IMPORT_FORMATS, read_pairs
from idc_engine.data.manifest import write_manifest

__all__ = ["IMPORT_FORMATS", "export_manifest", "import_idc_dataset", "read_pairs"]


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
