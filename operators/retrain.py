import fiftyone.operators as foo
import fiftyone.operators.types as types

from .common import cancelled, check_grouped_dataset, check_positive, done, field_input, progress


class RetrainOnReviewed(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="retrain_blip2idc_on_reviewed",
            label="IDC: retrain on reviewed captions, then compare",
            dynamic=True,
            allow_immediate_execution=True,
            allow_delegated_execution=True,
            default_choice_to_delegated=True,
        )

    def resolve_input(self, ctx):
        from fiftyone_plugin.captioning import caption_source
        from fiftyone_plugin.review import reviewed_pairs

        inputs = types.Object()
        if not check_grouped_dataset(ctx, inputs, "not_idc"):
            return types.Property(inputs)
        target = ctx.target_view()
        field = field_input(ctx, inputs, "caption_field", "Captions that were reviewed", default="idc_caption")
        source = caption_source(ctx.dataset, field) if field else None
        inputs.str(
            "model",
            default=source,
            required=source is None,
            label="Start from",
            description="the model that wrote the captions" if source else "nothing records who wrote this field",
        )
        inputs.str("out_dir", required=True, label="Output folder", description="checkpoints and the new adapter")
        inputs.float("holdout", default=0.2, label="Held-out share", description="reviewed pairs kept for evaluation")
        inputs.int("max_steps", default=300, min=1, label="Steps")
        inputs.int("batch_size", default=16, min=1, label="Batch size")
        inputs.float("learning_rate", default=2e-4, label="Learning rate")
        for name in ("max_steps", "batch_size", "learning_rate"):
            check_positive(ctx, inputs, name)
        reviewed = len(reviewed_pairs(target))
        inputs.view(
            "reviewed_count",
            types.Notice(label=f"{reviewed} accepted or edited pairs in the chosen samples"),
        )
        return types.Property(inputs, view=types.View(label="Retrain on reviewed captions"))

    def execute(self, ctx):
        from fiftyone_plugin.retrain import retrain_on_reviewed
        from idc_engine.train.config import TrainConfig

        params = ctx.params
        steps = params.get("max_steps", 300)
        config = TrainConfig(
            learning_rate=params.get("learning_rate", 2e-4),
            batch_size=params.get("batch_size", 16),
            max_steps=steps,
            warmup_steps=min(50, steps // 10),
            eval_every=0,
        )
        report = progress(ctx)
        stop = cancelled(ctx)

        def on_progress(fraction, label):
            if stop():
                raise RuntimeError("retraining cancelled")
            report(fraction, label)

        result = retrain_on_reviewed(
            ctx.target_view(),
            params.get("caption_field", "idc_caption"),
            params["out_dir"],
            config,
            holdout=params.get("holdout", 0.2),
            model=params.get("model") or None,
            progress=on_progress,
        )
        rows = [{"category": name, **values} for name, values in result.pop("comparison").items()]
        return done(ctx, {**result, "comparison": rows})

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.str("model_dir", label="New model")
        outputs.int("trained_on", label="Reviewed pairs trained on")
        outputs.int("held_out", label="Reviewed pairs held out")
        outputs.str("new_field", label="New captions of the held-out pairs")
        outputs.list("comparison", types.Object(), label="CIDEr-D before / after, held-out pairs")
        return types.Property(outputs, view=types.View(label="Retrained"))
