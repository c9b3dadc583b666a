import fiftyone.operators as foo
import fiftyone.operators.types as types

from .common import cancelled, check_grouped_dataset, check_positive, done, progress


class AugmentSyned(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="augment_syned",
            label="IDC: Syned augmentation (edited variants with captions)",
            dynamic=True,
            allow_immediate_execution=True,
            allow_delegated_execution=True,
            default_choice_to_delegated=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        if not check_grouped_dataset(ctx, inputs, "not_idc"):
            return types.Property(inputs)
        ctx.target_view()
        syned_inputs(ctx, inputs, "images, manifests and the report")
        return types.Property(inputs, view=types.View(label="Syned augmentation"))

    def execute(self, ctx):
        from fiftyone_plugin.syned import augment_samples

        params = ctx.params
        result = augment_samples(
            ctx.target_view(),
            params["out_dir"],
            syned_config(params),
            editor=params.get("editor", "procedural"),
            variator=params.get("variator", "template"),
            progress=progress(ctx),
            cancelled=cancelled(ctx),
        )
        return done(ctx, result)

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.int("added", label="Synthetic pairs added (tagged 'synthetic')")
        outputs.int("variants", label="Variants made")
        outputs.obj("rejected", label="Edits rejected, by reason")
        outputs.obj("caption_rejections", label="Captions rejected, by reason")
        outputs.int("skipped", label="Originals skipped")
        outputs.str("out_dir", label="Written to")
        return types.Property(outputs, view=types.View(label="Syned"))


def syned_inputs(ctx, inputs, out_dir_description: str):
    """The form of a Syned run, shared by the one-worker and the sharded operator."""
    inputs.str("out_dir", required=True, label="Output folder", description=out_dir_description)
    inputs.int("variations", default=8, min=1, label="Variants per original")
    inputs.int("captions", default=5, min=1, label="Captions per variant")
    inputs.int("seed", default=0, min=0, label="Seed", description="the same seed gives the same variants")
    inputs.str(
        "editor",
        default="procedural",
        label="Editor",
        description="'procedural' (offline) or a local InstructPix2Pix checkpoint folder",
    )
    inputs.str(
        "variator",
        default="template",
        label="Captions from",
        description="'template' (offline rewrites) or a local causal-LM folder (e.g. Llama-2-7b-chat)",
    )
    for name in ("variations", "captions"):
        check_positive(ctx, inputs, name)


def syned_config(params):
    from idc_engine.synth.augment import SynedConfig

    return SynedConfig(
        variations=params.get("variations", 8), captions=params.get("captions", 5), seed=params.get("seed", 0)
    )
