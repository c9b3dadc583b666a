import os

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types

from .common import check_existing_path, invalid, progress

# Two folders paired by relative file name; the pairs have no captions yet.
IMAGE_FOLDERS = "image-folders"


class ImportIDCDataset(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="import_idc_dataset",
            label="IDC: import a difference-captioning dataset",
            allow_immediate_execution=True,
            allow_delegated_execution=True,
            view_target=False,
            dynamic=True,  # the folder fields depend on the format
        )

    def resolve_input(self, ctx):
        from fiftyone_plugin.importers import IMPORT_FORMATS

        inputs = types.Object()
        inputs.enum("format", list(IMPORT_FORMATS), required=True, label="Format", view=types.Dropdown())
        if ctx.params.get("format") == IMAGE_FOLDERS:
            _image_folder_inputs(ctx, inputs)
        else:
            inputs.str("source", required=True, label="Annotations", description="manifest, annotation file or folder")
            inputs.str("images_dir", label="Images folder", description="where the dataset's images are")
            check_existing_path(ctx, inputs, "images_dir", directory=True)
            if ctx.params.get("format") not in (None, "shapes-change"):
                check_existing_path(ctx, inputs, "source")
        inputs.str("name", required=True, label="Dataset name")
        inputs.bool("overwrite", default=False, label="Overwrite an existing dataset of that name")
        inputs.bool("persistent", default=True, label="Persistent")
        name = ctx.params.get("name")
        if name and fo.dataset_exists(name) and not ctx.params.get("overwrite", False):
            invalid(inputs, "name", f"dataset {name!r} already exists; choose another name or tick overwrite")
        return types.Property(inputs, view=types.View(label="Import an IDC dataset"))

    def execute(self, ctx):
        from fiftyone_plugin.importers import import_idc_dataset

        params = ctx.params
        options = dict(params.get("options") or {})
        if params["format"] == IMAGE_FOLDERS:
            options.setdefault("match_extension", params.get("match_extension", False))
            options.setdefault("split", params.get("split", "unlabeled"))
        dataset, result = import_idc_dataset(
            params["format"],
            params["source"],
            images_dir=params.get("images_dir"),
            name=params["name"],
            persistent=params.get("persistent", True),
            overwrite=params.get("overwrite", False),
            progress=lambda done, total: progress(ctx)(done / total, f"{done}/{total} pairs"),
            **options,
        )
        return {
            "dataset": dataset.name,
            "pairs": len(result.pairs),
            "missing": len(result.missing),
            "skipped": len(result.skipped),
            "summary": result.summary(),
        }


def _image_folder_inputs(ctx, inputs):
    """Originals and edited versions under the same relative names, in two folders."""
    inputs.str(
        "source", required=True, label="Originals folder", description="the original images (subfolders included)"
    )
    inputs.str(
        "images_dir",
        required=True,
        label="Edited folder",
        description="the edited images, under the same relative names as their originals",
    )
    inputs.bool(
        "match_extension",
        default=False,
        label="Match extensions too",
        description="pair a.jpg only with a.jpg; by default an original a.jpg pairs with an edited a.png",
    )
    inputs.enum(
        "split",
        ["unlabeled", "test", "validation", "train"],
        default="unlabeled",
        label="Split",
        description="the pairs have no captions yet: 'unlabeled' keeps them apart from test pairs; reviewed, "
        "they can be trained on",
        view=types.Dropdown(),
    )
    for name in ("source", "images_dir"):
        check_existing_path(ctx, inputs, name, directory=True)
    source, edited = ctx.params.get("source"), ctx.params.get("images_dir")
    if source and edited and os.path.isdir(source) and os.path.realpath(source) == os.path.realpath(edited):
        invalid(inputs, "images_dir", "the edited folder must differ from the originals folder")
