import fiftyone.operators as foo
import fiftyone.operators.types as types

from .common import (
    cancelled,
    check_grouped_dataset,
    check_identifier,
    check_positive,
    done,
    field_input,
    model_input,
    progress,
)


class ComputeIDCHeatmaps(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="compute_idc_heatmaps",
            label="IDC: attention heatmaps and difference regions",
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
        heatmap_inputs(ctx, inputs)
        return types.Property(inputs, view=types.View(label="Attention heatmaps"))

    def execute(self, ctx):
        from fiftyone_plugin.heatmaps import compute_heatmaps
        from idc_engine.model.loading import load_model

        settings = heatmap_settings(ctx.params)
        result = compute_heatmaps(
            ctx.target_view(),
            load_model(settings.pop("model")),
            **settings,
            progress=progress(ctx),
            cancelled=cancelled(ctx),
        )
        return done(ctx, result)

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.int("pairs", label="Pairs with heatmaps")
        outputs.int("skipped", label="Pairs skipped (unreadable image)")
        outputs.int("regions", label="Difference regions")
        return types.Property(outputs, view=types.View(label="Heatmaps written"))


def heatmap_inputs(ctx, inputs):
    """The form of a heatmaps run, shared by the one-worker and the sharded operator."""
    from idc_engine.attention.maps import MAP_KINDS, AttentionConfig
    from idc_engine.attention.regions import REGION_SOURCES, RegionConfig

    model_input(ctx, inputs)
    inputs.enum("kind", list(MAP_KINDS), default="qformer", label="Map")
    inputs.str("heatmap_field", default="idc_attention", label="Heatmap field")
    inputs.str("regions_field", default="idc_regions", label="Regions field")
    inputs.enum(
        "region_source",
        list(REGION_SOURCES),
        default=RegionConfig.source,
        label="Regions from",
        description="auto: the pixel difference for tiny-photo and other models that read the difference image "
        "(their attention points at the change less well), the attention map otherwise",
    )
    field_input(
        ctx,
        inputs,
        "caption_field",
        "Caption field (names the regions)",
        default="idc_caption",
        must_exist=False,
        required=False,
    )
    inputs.int("batch_size", default=AttentionConfig().batch_size, min=1, label="Batch size")
    for name in ("heatmap_field", "regions_field"):
        check_identifier(ctx, inputs, name)
    check_positive(ctx, inputs, "batch_size")


def heatmap_settings(params) -> dict:
    """The run's settings, named as ``compute_heatmaps`` takes them (and the model to load)."""
    from idc_engine.attention.maps import AttentionConfig
    from idc_engine.attention.regions import RegionConfig

    return {
        "model": params.get("model", "tiny"),
        "kind": params.get("kind", "qformer"),
        "heatmap_field": params.get("heatmap_field", "idc_attention"),
        "regions_field": params.get("regions_field", "idc_regions"),
        "region_source": params.get("region_source", RegionConfig.source),
        "caption_field": params.get("caption_field", "idc_caption"),
        "batch_size": params.get("batch_size", AttentionConfig().batch_size),
    }
