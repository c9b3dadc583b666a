import fiftyone.operators as foo
import fiftyone.operators.types as types

from .common import cancelled, check_grouped_dataset, check_positive, done, field_input, model_input, progress


class ApplyBLIP2IDC(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="apply_blip2idc",
            label="IDC: caption the differences with BLIP2IDC",
            dynamic=True,
            allow_immediate_execution=True,
            allow_delegated_execution=True,
            default_choice_to_delegated=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        if not check_grouped_dataset(ctx, inputs, "not_idc"):
            return types.Property(inputs)
        ctx.target_view()  # offers: the whole dataset, the current view or the selected samples
        caption_inputs(ctx, inputs)
        return types.Property(inputs, view=types.View(label="Caption with BLIP2IDC"))

    def execute(self, ctx):
        from fiftyone_plugin.captioning import caption_samples
        from idc_engine.inference.caption import GenerationConfig
        from idc_engine.model.loading import load_model

        settings = caption_settings(ctx.params)
        generation = GenerationConfig(batch_size=settings["batch_size"], num_beams=settings["num_beams"])
        result = caption_samples(
            ctx.target_view(),
            load_model(settings["model"]),
            settings["label_field"],
            generation,
            progress=progress(ctx),
            cancelled=cancelled(ctx),
        )
        return done(ctx, result)

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.int("captioned", label="Pairs captioned")
        outputs.int("skipped", label="Pairs skipped (unreadable image)")
        outputs.list("skipped_examples", types.String(), label="Why")
        outputs.str("label_field", label="Written to (with <field>_confidence)")
        return types.Property(outputs, view=types.View(label="Captioned"))


def caption_inputs(ctx, inputs):
    """The form of a captioning run, shared by the one-worker and the sharded operator."""
    model_input(ctx, inputs)
    field_input(ctx, inputs, "label_field", "Caption field", default="idc_caption", must_exist=False)
    from idc_engine.inference.caption import GenerationConfig

    defaults = GenerationConfig()
    inputs.int("batch_size", default=defaults.batch_size, min=1, label="Batch size")
    inputs.int("num_beams", default=defaults.num_beams, min=1, label="Beams")
    check_positive(ctx, inputs, "batch_size")
    check_positive(ctx, inputs, "num_beams")


def caption_settings(params) -> dict:
    from idc_engine.inference.caption import GenerationConfig

    defaults = GenerationConfig()
    return {
        "model": params.get("model", "tiny"),
        "label_field": params.get("label_field", "idc_caption"),
        "batch_size": params.get("batch_size", defaults.batch_size),
        "num_beams": params.get("num_beams", defaults.num_beams),
    }
