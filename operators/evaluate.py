import fiftyone.operators as foo
import fiftyone.operators.types as types

from .common import check_grouped_dataset, check_identifier, done, field_input, progress


class EvaluateIDCCaptions(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="evaluate_idc_captions",
            label="IDC: evaluate captions (BLEU, METEOR, ROUGE-L, CIDEr-D)",
            dynamic=True,
            allow_immediate_execution=True,
            allow_delegated_execution=True,
        )

    def resolve_input(self, ctx):
        from fiftyone_plugin.evaluation import REFERENCES

        inputs = types.Object()
        if not check_grouped_dataset(ctx, inputs, "not_idc"):
            return types.Property(inputs)
        ctx.target_view()
        field_input(ctx, inputs, "pred_field", "Caption field", default="idc_caption")
        inputs.str("eval_key", default="idc_eval", required=True, label="Evaluation key")
        references = types.RadioGroup()
        references.add_choice("captions", label="the dataset's reference captions")
        references.add_choice("reviewed", label="the reviewers' accepted and edited captions")
        inputs.enum("references", list(REFERENCES), default="captions", label="Score against", view=references)
        inputs.bool("baselines", default=True, label="Score the mean-sentence and nearest-neighbour baselines")
        check_identifier(ctx, inputs, "eval_key")
        return types.Property(inputs, view=types.View(label="Evaluate IDC captions"))

    def execute(self, ctx):
        from fiftyone_plugin.evaluation import evaluate_idc_captions

        params = ctx.params
        results = evaluate_idc_captions(
            ctx.target_view(),
            params.get("pred_field", "idc_caption"),
            params.get("eval_key", "idc_eval"),
            baselines=params.get("baselines", True),
            progress=progress(ctx),
            references=params.get("references", "captions"),
        )
        rows = [{"system": "model", **_row(results.metrics)}]
        rows += [{"system": name, **_row(system["table"]["all"])} for name, system in results.baselines.items()]
        return done(
            ctx,
            {
                "eval_key": results.key,
                "metrics": results.metrics,
                "left_out": results.left_out["count"],
                "scores": rows,
            },
        )

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.str("eval_key", label="Evaluation key")
        outputs.int("left_out", label="Pairs without a caption (not scored)")
        table = types.TableView()
        for column, label in (("system", "system"), ("bleu4", "BLEU-4"), ("meteor", "METEOR"), ("rouge_l", "ROUGE-L")):
            table.add_column(column, label=label)
        table.add_column("cider", label="CIDEr-D")
        outputs.list("scores", types.Object(), label="Scores (x100)", view=table)
        return types.Property(outputs, view=types.View(label="Evaluation"))


def _row(table: dict) -> dict:
    names = {"BLEU-4": "bleu4", "METEOR": "meteor", "ROUGE-L": "rouge_l", "CIDEr-D": "cider"}
    return {short: round(100 * table[metric], 1) for metric, short in names.items() if metric in table}
