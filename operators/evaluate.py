import fiftyone.operators as foo
import fiftyone.operators.types as types

from .common import check_grouped_dataset, check_identifier, invalid, progress


class EvaluateIDCCaptions(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="evaluate_idc_captions",
            label="IDC: evaluate captions (BLEU, METEOR, ROUGE-L, CIDEr-D)",
            allow_immediate_execution=True,
            allow_delegated_execution=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        if not check_grouped_dataset(ctx, inputs, "not_idc"):
            return types.Property(inputs)
        inputs.str("pred_field", default="idc_caption", required=True, label="Caption field")
        inputs.str("eval_key", default="idc_eval", required=True, label="Evaluation key")
        inputs.bool("baselines", default=True, label="Score the mean-sentence and nearest-neighbour baselines")
        check_identifier(ctx, inputs, "eval_key")
        field = ctx.params.get("pred_field")
        if field and not ctx.dataset.select_group_slices("modified").has_field(field):
            invalid(inputs, "pred_field", f"pred_field: the modified slice has no field {field!r}")
        return types.Property(inputs, view=types.View(label="Evaluate IDC captions"))

    def execute(self, ctx):
        from fiftyone_plugin.evaluation import evaluate_idc_captions

        params = ctx.params
        results = evaluate_idc_captions(
            ctx.view,
            params.get("pred_field", "idc_caption"),
            params.get("eval_key", "idc_eval"),
            baselines=params.get("baselines", True),
            progress=progress(ctx),
        )
        return {"eval_key": results.key, "metrics": results.metrics, "left_out": results.left_out["count"]}
