"""Long jobs split into shards for several `fiftyone delegated launch` workers (fiftyone_plugin.shards)."""

import fiftyone.operators as foo
import fiftyone.operators.types as types

from .apply import caption_inputs, caption_settings
from .common import cancelled, check_grouped_dataset, check_positive, progress, shard_config, shard_inputs
from .heatmaps import heatmap_inputs, heatmap_settings
from .syned import syned_config, syned_inputs


def _queued_output():
    outputs = types.Object()
    outputs.str("job", label="Job")
    outputs.int("pairs", label="Pairs")
    outputs.int("shards", label="Shards queued")
    outputs.list("operations", types.String(), label="Delegated operations")
    return types.Property(outputs, view=types.View(label="Shards queued: run `fiftyone delegated launch` workers"))


class CaptionIDCShards(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="caption_idc_shards",
            label="IDC: caption the differences with several workers (shards)",
            dynamic=True,
            allow_immediate_execution=True,
            allow_delegated_execution=False,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        if not check_grouped_dataset(ctx, inputs, "not_idc"):
            return types.Property(inputs)
        ctx.target_view()
        caption_inputs(ctx, inputs)
        shard_inputs(ctx, inputs)
        return types.Property(inputs, view=types.View(label="Caption with BLIP2IDC, in shards"))

    def execute(self, ctx):
        from fiftyone_plugin.shards import queue_shards

        return queue_shards(ctx.target_view(), "caption", caption_settings(ctx.params), shard_config(ctx.params))

    def resolve_output(self, ctx):
        return _queued_output()


class ComputeIDCHeatmapsShards(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="compute_idc_heatmaps_shards",
            label="IDC: attention heatmaps with several workers (shards)",
            dynamic=True,
            allow_immediate_execution=True,
            allow_delegated_execution=False,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        if not check_grouped_dataset(ctx, inputs, "not_idc"):
            return types.Property(inputs)
        ctx.target_view()
        heatmap_inputs(ctx, inputs)
        shard_inputs(ctx, inputs)
        return types.Property(inputs, view=types.View(label="Attention heatmaps, in shards"))

    def execute(self, ctx):
        from fiftyone_plugin.shards import queue_shards

        return queue_shards(ctx.target_view(), "heatmaps", heatmap_settings(ctx.params), shard_config(ctx.params))

    def resolve_output(self, ctx):
        return _queued_output()


class AugmentSynedShards(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="augment_syned_shards",
            label="IDC: Syned augmentation with several workers (shards)",
            dynamic=True,
            allow_immediate_execution=True,
            allow_delegated_execution=False,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        if not check_grouped_dataset(ctx, inputs, "not_idc"):
            return types.Property(inputs)
        ctx.target_view()
        syned_inputs(ctx, inputs, "a folder every worker reaches (shared storage): the variants' images stay there")
        shard_inputs(ctx, inputs)
        return types.Property(inputs, view=types.View(label="Syned augmentation, in shards"))

    def execute(self, ctx):
        from dataclasses import asdict

        from fiftyone_plugin.shards import queue_shards

        params = ctx.params
        settings = {
            "out_dir": params["out_dir"],
            "editor": params.get("editor", "procedural"),
            "variator": params.get("variator", "template"),
            "config": asdict(syned_config(params)),
        }
        return queue_shards(ctx.target_view(), "augment", settings, shard_config(params))

    def resolve_output(self, ctx):
        return _queued_output()


class RunIDCShard(foo.Operator):
    """One shard of a job queued by the operators above; workers run it, users need not."""

    @property
    def config(self):
        return foo.OperatorConfig(
            name="run_idc_shard",
            label="IDC: one shard of a sharded job",
            unlisted=True,
            allow_immediate_execution=True,
            allow_delegated_execution=True,
            default_choice_to_delegated=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        inputs.str("job", required=True, label="Job")
        inputs.int("shard", required=True, min=0, label="Shard")
        return types.Property(inputs)

    def execute(self, ctx):
        from fiftyone_plugin.shards import run_shard

        return run_shard(
            ctx.dataset,
            ctx.params["job"],
            int(ctx.params["shard"]),
            operation_id=ctx.request_params.get("run_doc") if ctx.delegated else None,
            progress=progress(ctx),
            cancelled=cancelled(ctx),
        )

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.str("status", label="Status")
        outputs.int("pairs", label="Pairs done by this run")
        outputs.int("written", label="Samples written")
        return types.Property(outputs, view=types.View(label="Shard"))


class ReapIDCShards(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="reap_idc_shards",
            label="IDC: re-queue the shards of dead workers",
            dynamic=True,
            allow_immediate_execution=True,
            allow_delegated_execution=False,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        inputs.float(
            "stale_after",
            label="Seconds without a heartbeat (empty: each job's own)",
            description="a shard whose worker has been silent this long is re-queued for another worker",
        )
        check_positive(ctx, inputs, "stale_after")
        return types.Property(inputs, view=types.View(label="Re-queue stale shards"))

    def execute(self, ctx):
        from fiftyone_plugin.shards import reap, status

        actions = reap(ctx.params.get("stale_after"))
        rows = status()
        return {
            "requeued": sum(a["action"] == "requeued" for a in actions),
            "actions": [f"{a['shard']}: {a['action']}" for a in actions],
            "unfinished": [
                f"{r['shard_id']}: {r['state']}, {r['done']}/{r['total']} pairs"
                for r in rows
                if r["state"] != "completed"
            ],
        }

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.int("requeued", label="Shards re-queued")
        outputs.list("actions", types.String(), label="What was done")
        outputs.list("unfinished", types.String(), label="Unfinished shards")
        return types.Property(outputs, view=types.View(label="Shards"))
