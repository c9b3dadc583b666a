"""The plugin as FiftyOne sees it: its registry, operators run through execute_operator, delegation."""

from pathlib import Path

import fiftyone.operators as foo
import pytest
import yaml
from fiftyone.operators.executor import ExecutionError

from fiftyone_plugin.captioning import Cancelled, caption_samples
from fiftyone_plugin.dataset import MODIFIED, REFERENCE
from fiftyone_plugin.runs import train_on_samples
from idc_engine.model.loading import load_model
from idc_engine.train.config import TrainConfig

PLUGIN = "@idc/idc"
REPO = Path(__file__).resolve().parents[2]


def test_registry_lists_exactly_the_declared_operators():
    declared = yaml.safe_load((REPO / "fiftyone.yml").read_text())
    listed = {op.uri for op in foo.list_operators(builtin=False) if op.uri.startswith(PLUGIN + "/")}
    names = declared["operators"] + declared.get("panels", [])
    assert listed == {f"{PLUGIN}/{name}" for name in names}
    assert not foo.OperatorRegistry().list_errors()


def test_import_apply_evaluate_through_execute_operator(shapes_dir, tiny_dir):
    result = foo.execute_operator(
        f"{PLUGIN}/import_idc_dataset",
        ctx=dict(params={"format": "manifest", "source": str(shapes_dir / "manifest.jsonl"), "name": "idc-ops"}),
    )
    assert result.result["pairs"] == 104 and result.result["missing"] == 0
    import fiftyone as fo

    dataset = fo.load_dataset("idc-ops")
    try:
        test = dataset.match_tags("test")
        applied = foo.execute_operator(
            f"{PLUGIN}/apply_blip2idc",
            ctx=dict(view=test, params={"model": str(tiny_dir), "label_field": "idc_caption", "batch_size": 8}),
        )
        assert applied.result["captioned"] == 24
        assert all(isinstance(c, str) for c in test.select_group_slices(REFERENCE).values("idc_caption"))
        assert set(dataset.match_tags("train").select_group_slices(MODIFIED).values("idc_caption")) == {None}

        evaluated = foo.execute_operator(
            f"{PLUGIN}/evaluate_idc_captions",
            ctx=dict(view=test, params={"pred_field": "idc_caption", "eval_key": "ops_eval", "baselines": False}),
        )
        assert evaluated.result["eval_key"] == "ops_eval" and "CIDEr-D" in evaluated.result["metrics"]
        assert dataset.has_evaluation("ops_eval")
    finally:
        dataset.delete()


def test_bad_input_is_rejected_in_the_form(idc_dataset):
    modified = idc_dataset.select_group_slices(MODIFIED)
    idc_dataset.set_values("idc_caption", dict.fromkeys(modified.values("id"), "x"), key_field="id")
    with pytest.raises(ExecutionError, match="eval_key must be a valid identifier"):
        foo.execute_operator(
            f"{PLUGIN}/evaluate_idc_captions",
            ctx=dict(dataset=idc_dataset, params={"pred_field": "idc_caption", "eval_key": "not valid"}),
        ).raise_exceptions()
    with pytest.raises(ExecutionError, match="the modified slice has no caption field 'nope'"):
        foo.execute_operator(
            f"{PLUGIN}/evaluate_idc_captions",
            ctx=dict(dataset=idc_dataset, params={"pred_field": "nope", "eval_key": "k"}),
        ).raise_exceptions()
    with pytest.raises(ExecutionError, match="does not exist"):
        foo.execute_operator(
            f"{PLUGIN}/import_idc_dataset",
            ctx=dict(params={"format": "ier", "source": "/no/such/file.json", "images_dir": "/", "name": "x"}),
        ).raise_exceptions()


def test_delegated_training_runs_in_the_executor_and_records_the_run(idc_dataset, tiny_dir, tmp_path):
    import fiftyone.operators.delegated as food

    idc_dataset.persistent = True
    queued = foo.execute_operator(
        f"{PLUGIN}/train_blip2idc",
        ctx=dict(
            dataset=idc_dataset,
            params={
                "model": str(tiny_dir),
                "out_dir": str(tmp_path / "run"),
                "max_steps": 4,
                "batch_size": 4,
                "lora_rank": 4,
                "run_key": "first_training",
            },
        ),
        request_delegation=True,
    )
    assert queued.delegated and queued.result["run_state"] == "queued"
    service = food.DelegatedOperationService()
    service.execute_queued_operations(dataset_name=idc_dataset.name)
    done = service.get(queued.result["id"])
    assert done.run_state == "completed", done.result.error if done.result else None
    assert done.result.result["steps"] == 4
    assert (tmp_path / "run" / "model" / "adapter_model.safetensors").is_file()
    assert "first_training" in idc_dataset.list_runs()
    info = idc_dataset.get_run_info("first_training")
    assert info.config.train_config["max_steps"] == 4
    assert idc_dataset.load_run_results("first_training").steps == 4


def test_cancelled_work_leaves_the_dataset_as_it_was(idc_dataset, tiny_dir, tmp_path):
    fields = set(idc_dataset.get_field_schema())
    calls = []

    def cancel_after_first_check():
        calls.append(1)
        return len(calls) > 1

    with pytest.raises(Cancelled):
        caption_samples(
            idc_dataset, load_model(str(tiny_dir)), "never_written", cancelled=cancel_after_first_check, generation=None
        )
    assert set(idc_dataset.get_field_schema()) == fields

    calls.clear()
    config = TrainConfig(max_steps=5, batch_size=4, checkpoint_every=1, eval_every=0)
    with pytest.raises(Cancelled):
        train_on_samples(
            idc_dataset,
            tmp_path / "run",
            str(tiny_dir),
            config,
            run_key="cancelled_run",
            cancelled=cancel_after_first_check,
        )
    assert "cancelled_run" not in idc_dataset.list_runs()
    assert (tmp_path / "run" / "checkpoints" / "latest").is_file()  # resumable


def _form(uri, dataset, params):
    """The form an operator shows for ``params``, as the App asks for it (resolve_input)."""
    from fiftyone.operators.executor import ExecutionContext

    operator = foo.get_operator(uri)
    ctx = ExecutionContext(request_params={"dataset_name": dataset.name, "params": params}, operator_uri=uri)
    return operator.resolve_input(ctx).to_json()


def _property(form, name):
    return form["type"]["properties"][name]


def test_forms_offer_what_exists_and_warn_about_the_demo_model(idc_dataset, tiny_dir):
    import fiftyone as fo

    from fiftyone_plugin.dataset import pairs_to_dataset
    from idc_engine.data.pair import IDCPair

    modified = idc_dataset.select_group_slices(MODIFIED)
    idc_dataset.set_values("idc_caption", dict.fromkeys(modified.values("id"), "x"), key_field="id")
    form = _form(f"{PLUGIN}/evaluate_idc_captions", idc_dataset, {"pred_field": "idc_caption"})
    offered = [c["value"] for c in _property(form, "pred_field")["view"]["choices"]]
    assert offered == ["idc_caption"]  # string fields of the modified slice, not pair_id or filepath

    form = _form(f"{PLUGIN}/apply_blip2idc", idc_dataset, {"model": "tiny"})
    models = {c["value"]: c["description"] for c in _property(form, "model")["view"]["choices"]}
    assert models["tiny"].startswith("shapes demo model")
    assert "model_warning" not in form["type"]["properties"]  # shapes-change pairs: the demo model fits

    photo = IDCPair("photo", tiny_dir / "../x.jpg", tiny_dir / "../y.jpg", ["a hat was added"], "test")
    photos = pairs_to_dataset([photo])
    try:
        form = _form(f"{PLUGIN}/apply_blip2idc", photos, {"model": "tiny"})
        assert "'tiny' is the shapes demo model" in _property(form, "model_warning")["view"]["label"]
    finally:
        photos.delete()
    assert fo.dataset_exists(idc_dataset.name)
