import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types

from .common import check_existing_path, invalid, progress


class ImportIDCDataset(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="import_idc_dataset",
            label="IDC: import a difference-captioning dataset",
            allow_immediate_execution=True,
            allow_delegated_execution=True,
            view_target=False,
        )

    def resolve_input(self, ctx):
        from fiftyone_plugin.importers import IMPORT_FORMATS

        inputs = types.Object()
        inputs.enum("format", list(IMPORT_FORMATS), required=True, label="Format", view=types.Dropdown())
        inputs.str("source", required=True, label="Annotations", description="manifest, annotation file or folder")
        inputs.str("images_dir", label="Images folder", description="where the dataset's images are")
        inputs.str("name", required=True, label="Dataset name")
        inputs.bool("overwrite", default=False, label="Overwrite an existing dataset of that name")
        inputs.bool("persistent", default=True, label="Persistent")
        check_existing_path(ctx, inputs, "images_dir", directory=True)
        if ctx.params.get("format") not in (None, "shapes-change"):
            check_existing_path(ctx, inputs, "source")
        name = ctx.params.get("name")
        if name and fo.dataset_exists(name) and not ctx.params.get("overwrite", False):
            invalid(inputs, "name", f"dataset {name!r} already exists; choose another name or tick overwrite")
        return types.Property(inputs, view=types.View(label="Import an IDC dataset"))

    def execute(self, ctx):
        from fiftyone_plugin.importers import import_idc_dataset

        params = ctx.params
        dataset, result = import_idc_dataset(
            params["format"],
            params["source"],
            images_dir=params.get("images_dir"),
            name=params["name"],
            persistent=params.get("persistent", True),
            overwrite=params.get("overwrite", False),
            progress=lambda done, total: progress(ctx)(done / total, f"{done}/{total} pairs"),
            **params.get("options", {}),
        )
        return {
            "dataset": dataset.name,
            "pairs": len(result.pairs),
            "missing": len(result.missing),
            "skipped": len(result.skipped),
            "summary": result.summary(),
        }
