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
        editor_inputs(ctx, inputs)
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
            editor_settings=editor_settings(params),
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
        outputs.obj("editors", label="Variants by the editor that made them")
        outputs.str("out_dir", label="Written to")
        return types.Property(outputs, view=types.View(label="Syned"))


def syned_inputs(ctx, inputs, out_dir_description: str):
    """The form of a Syned run, shared by the one-worker and the sharded operator."""
    inputs.str("out_dir", required=True, label="Output folder", description=out_dir_description)
    from idc_engine.synth.augment import SynedConfig

    defaults = SynedConfig()
    inputs.int("variations", default=defaults.variations, min=1, label="Variants per original")
    inputs.int("captions", default=defaults.captions, min=1, label="Captions per variant")
    inputs.int("seed", default=defaults.seed, min=0, label="Seed", description="the same seed gives the same variants")
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

    # What the form leaves out keeps the dataclass's default.
    return SynedConfig(**{k: params[k] for k in ("variations", "captions", "seed") if params.get(k) is not None})


def editor_inputs(ctx, inputs):
    """The InstructPix2Pix settings (used when the editor is a checkpoint folder), defaults from its dataclass."""
    from idc_engine.synth.ip2p import SCHEDULERS, InstructPix2PixConfig

    defaults = InstructPix2PixConfig()
    inputs.int(
        "ip2p_resolution",
        default=defaults.resolution,
        min=0,
        label="InstructPix2Pix working size",
        description="longer side in pixels (0: the input's own); smaller is much faster on a CPU",
    )
    inputs.int("ip2p_steps", default=defaults.num_inference_steps, min=1, label="Denoising steps")
    inputs.str(
        "ip2p_guidance_scales",
        default=", ".join(str(g) for g in defaults.guidance_scales),
        label="Text guidance (comma-separated: a sweep over the variants)",
    )
    inputs.str(
        "ip2p_image_guidance_scales",
        default=", ".join(str(g) for g in defaults.image_guidance_scales),
        label="Image guidance (comma-separated: a sweep over the variants)",
    )
    schedulers = types.Dropdown()
    schedulers.add_choice("", label="the checkpoint's own")
    for name in SCHEDULERS:
        schedulers.add_choice(name, label=name)
    inputs.enum("ip2p_scheduler", schedulers.values(), default="", view=schedulers, label="Scheduler")
    for name in ("ip2p_guidance_scales", "ip2p_image_guidance_scales"):
        try:
            _scales(ctx.params.get(name) or "1")
        except ValueError as error:
            from .common import invalid

            invalid(inputs, name, str(error))


def editor_settings(params) -> dict:
    """``InstructPix2PixConfig`` fields from the form (its own errors name a bad value)."""
    from idc_engine.synth.ip2p import InstructPix2PixConfig

    defaults = InstructPix2PixConfig()
    settings = {
        "resolution": params.get("ip2p_resolution", defaults.resolution),
        "num_inference_steps": params.get("ip2p_steps", defaults.num_inference_steps),
        "scheduler": params.get("ip2p_scheduler") or None,
    }
    for name in ("guidance_scales", "image_guidance_scales"):
        if params.get(f"ip2p_{name}"):
            settings[name] = _scales(params[f"ip2p_{name}"])
    return settings


def _scales(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in str(text).split(",") if part.strip())
    except ValueError:
        raise ValueError(f"guidance scales must be numbers separated by commas, got {text!r}") from None
