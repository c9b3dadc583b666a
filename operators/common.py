"""Pieces every idc operator shares: cancellation, progress and form validation."""

from __future__ import annotations

import os

import fiftyone.operators.types as types


def cancelled(ctx):
    """A checker for the user's cancellation (marking the delegated operation failed) of this run."""
    op_id = ctx.request_params.get("run_doc") if ctx.delegated else None
    if not op_id:
        return lambda: False
    import fiftyone.operators.delegated as food
    from fiftyone.operators.executor import ExecutionRunState

    service = food.DelegatedOperationService()
    return lambda: service.get(op_id).run_state == ExecutionRunState.FAILED


def progress(ctx):
    def report(fraction, label):
        ctx.set_progress(progress=float(min(max(fraction, 0.0), 1.0)), label=label)

    return report


def invalid(inputs, name, message):
    prop = inputs.get_property(name)
    prop.invalid = True
    prop.error_message = message


def check_identifier(ctx, inputs, name):
    value = ctx.params.get(name)
    if value is not None and not str(value).isidentifier():
        invalid(inputs, name, f"{name} must be a valid identifier (letters, digits, underscores), got {value!r}")


def check_existing_path(ctx, inputs, name, directory=None):
    value = ctx.params.get(name)
    if not value:
        return
    exists = os.path.isdir(value) if directory else os.path.exists(value)
    if not exists:
        invalid(inputs, name, f"{name}: {value!r} does not exist")


def check_positive(ctx, inputs, name):
    value = ctx.params.get(name)
    if value is not None and not value > 0:
        invalid(inputs, name, f"{name} must be positive, got {value!r}")


def check_grouped_dataset(ctx, inputs, name):
    dataset = ctx.dataset
    if dataset is None or dataset.media_type != "group" or not {"reference", "modified"} <= set(dataset.group_slices):
        inputs.view(name, _notice("This operator needs an IDC dataset: groups with 'reference' and 'modified' slices."))
        return False
    return True


def _notice(text):
    return types.Error(label=text)


def model_roots(ctx) -> list:
    """Where trained models are looked for: ./runs and the folders of the dataset's training runs."""
    roots = [os.path.join(os.getcwd(), "runs")]
    dataset = ctx.dataset
    if dataset is not None:
        for key in dataset.list_runs():
            try:
                model_dir = getattr(dataset.load_run_results(key), "model_dir", None)
            except Exception:  # a run of another plugin whose results this one cannot load
                continue
            if model_dir:
                roots.append(os.path.dirname(model_dir))
    return roots


def model_input(ctx, inputs, name="model", label="Model", default=None):
    """A model picker offering what is on this machine, each with what it is for; a path may be typed."""
    from idc_engine.model.discovery import local_models

    found = local_models(model_roots(ctx), shapes=ctx.dataset is not None and looks_like_shapes(ctx.dataset))
    choices = types.AutocompleteView()
    for model in found:
        choices.add_choice(model.spec, label=model.spec, description=model.description)
    inputs.str(
        name,
        default=default or found[0].spec,
        required=True,
        label=label,
        description="a trained adapter, a BLIP-2 checkpoint (folder or cached hub id), 'tiny-photo' (edits of "
        "photographs: kind, colour and place; no object names) or 'tiny' (shapes demo)",
        view=choices,
    )
    warn_if_tiny_on_other_images(ctx, inputs, ctx.params.get(name) or default or found[0].spec, name)


def looks_like_shapes(dataset) -> bool:
    """Whether the dataset's pairs are shapes-change scenes (the only images 'tiny' was trained on)."""
    from fiftyone_plugin.dataset import METADATA, MODIFIED

    modified = dataset.select_group_slices(MODIFIED)
    if not modified.has_field(METADATA):
        return False
    metadata = modified.limit(20).values(METADATA)
    return bool(metadata) and all(isinstance(m, dict) and "objects_reference" in m for m in metadata)


def warn_if_tiny_on_other_images(ctx, inputs, spec, name):
    if spec == "tiny" and ctx.dataset is not None and not looks_like_shapes(ctx.dataset):
        inputs.view(
            f"{name}_warning",
            types.Warning(
                label="'tiny' is the shapes demo model",
                description="It has only seen 64-pixel scenes of coloured shapes; on other images (photographs) it "
                "describes shapes that are not there. For edited photographs use a trained adapter or a BLIP-2 "
                "checkpoint, or 'tiny-photo', trained on edits of photographs: on photographs it never saw it names "
                "the kind of edit on 78 % of pairs (kind, colour and place on 66 %); its captions are drafts to "
                "review.",
            ),
        )


def field_input(ctx, inputs, name, label, default=None, must_exist=True, description=None, required=True):
    """A caption field picker: the string fields of the modified slice, or a new name when writing."""
    from fiftyone_plugin.dataset import CAPTIONS, CATEGORY, MODIFIED, PAIR_ID

    modified = ctx.dataset.select_group_slices(MODIFIED)
    schema = modified.get_field_schema(flat=True)
    fields = [
        f
        for f, kind in schema.items()
        if type(kind).__name__ == "StringField"
        and "." not in f
        and f not in (PAIR_ID, "filepath", CAPTIONS, CATEGORY)
        and not f.endswith("_confidence")
    ]
    choices = types.AutocompleteView(allow_user_input=not must_exist)
    for field in sorted(fields):
        choices.add_choice(field, label=field)
    inputs.str(name, default=default, required=required, label=label, description=description, view=choices)
    value = ctx.params.get(name, default)
    if value is not None and not str(value).isidentifier():
        invalid(inputs, name, f"{name} must be a valid identifier (letters, digits, underscores), got {value!r}")
    elif must_exist and value and value not in fields:
        invalid(inputs, name, f"{name}: the modified slice has no caption field {value!r}")
    return value


def eval_key_input(ctx, inputs, name="eval_key", label="Evaluation run", required=True):
    choices = types.Dropdown()
    for key in ctx.dataset.list_evaluations():
        choices.add_choice(key, label=key)
    keys = ctx.dataset.list_evaluations()
    inputs.enum(name, keys, default=keys[-1] if keys else None, required=required, label=label, view=choices)
    return ctx.params.get(name)


def done(ctx, result: dict) -> dict:
    """After an operator wrote to the dataset: the App shows the new fields (not in a delegated run)."""
    if not ctx.delegated:
        ctx.ops.reload_dataset()
    return result


def shard_inputs(ctx, inputs):
    """How a job is split among workers (``fiftyone_plugin.shards.ShardConfig``), validated in the form."""
    from fiftyone_plugin.shards import ShardConfig

    default = ShardConfig()
    inputs.int("shards", default=default.shards, min=1, label="Shards (one delegated operation each)")
    inputs.int("chunk_size", default=default.chunk_size, min=1, label="Pairs per chunk (written, then a heartbeat)")
    inputs.float(
        "stale_after",
        default=default.stale_after,
        label="Re-queue a shard after this many seconds without a heartbeat",
        description="longer than one chunk takes; a dead worker's shard then goes to another worker",
    )
    inputs.float(
        "stall_after",
        default=default.stall_after,
        label="Re-queue a shard after this many seconds without a finished chunk",
        description="a live worker that is stuck; longer than the slowest chunk takes",
    )
    inputs.float(
        "chunk_delay_s", default=default.chunk_delay_s, label="Pause after each chunk (s): for tests and throttling"
    )
    for name in ("shards", "chunk_size", "stale_after", "stall_after"):
        check_positive(ctx, inputs, name)
    value = ctx.params.get("chunk_delay_s")
    if value is not None and value < 0:
        invalid(inputs, "chunk_delay_s", f"chunk_delay_s must be zero or positive, got {value!r}")


def shard_config(params):
    from fiftyone_plugin.shards import ShardConfig

    default = ShardConfig()
    return ShardConfig(
        shards=params.get("shards", default.shards),
        chunk_size=params.get("chunk_size", default.chunk_size),
        stale_after=float(params.get("stale_after", default.stale_after)),
        stall_after=float(params.get("stall_after", default.stall_after)),
        chunk_delay_s=float(params.get("chunk_delay_s", default.chunk_delay_s)),
    )
