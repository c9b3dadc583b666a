"""Pieces every idc operator shares: cancellation, progress and form validation."""

from __future__ import annotations

import os


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
    import fiftyone.operators.types as types

    return types.Error(label=text)
