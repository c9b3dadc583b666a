"""Long jobs split into shards for several `fiftyone delegated launch` workers (fiftyone_plugin.shards)."""

import fiftyone.operators as foo
import fiftyone.operators.types as types

from .apply import caption_inputs, caption_settings
from .common import cancelled, check_grouped_dataset, check_positive, progress, shard_config, shard_inputs
from .heatmaps import heatmap_inputs, heatmap_settings
from .syned import syned_config, syned_inputs


class _QueueShards(foo.Operator):
    """Queue a job's shards for delegated workers: the job's own form, the shard settings, one queue call.

    A subclass names the operator (``operator_name``, ``operator_label``, ``title``), the job
    (``job``), and adds its form (``job_inputs``) and the settings its workers receive (``settings``).
    """

    operator_name = operator_label = title = job = ""

    @property
    def config(self):
        return foo.OperatorConfig(
            name=self.operator_name,
            label=self.operator_label,
            dynamic=True,
            allow_immediate_execution=True,
            allow_delegated_execution=False,
        )

    def job_inputs(self, ctx, inputs):
        raise NotImplementedError

    def settings(self, params) -> dict:
        raise NotImplementedError

    def resolve_input(self, ctx):
        inputs = types.Object()
        if not check_grouped_dataset(ctx, inputs, "not_idc"):
            return types.Property(inputs)
        ctx.target_view()
        self.job_inputs(ctx, inputs)
        shard_inputs(ctx, inputs)
        return types.Property(inputs, view=types.View(label=self.title))

    def execute(self, ctx):
        from fiftyone_plugin.shards import queue_shards

        return queue_shards(ctx.target_view(), self.job, self.settings(ctx.params), shard_config(ctx.params))

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.str("job", label="Job")
        outputs.int("pairs", label="Pairs")
        outputs.int("shards", label="Shards queued")
        outputs.list("operations", types.String(), label="Delegated operations")
        return types.Property(outputs, view=types.View(label="Shards queued: run `fiftyone delegated launch` workers"))


class CaptionIDCShards(_QueueShards):
    operator_name = "caption_idc_shards"
    operator_label = "IDC: caption the differences with several workers (shards)"
    title = "Caption with BLIP2IDC, in shards"
    job = "caption"

    def job_inputs(self, ctx, inputs):
        caption_inputs(ctx, inputs)

    def settings(self, params):
        return caption_settings(params)


class ComputeIDCHeatmapsShards(_QueueShards):
    operator_name = "compute_idc_heatmaps_shards"
    operator_label = "IDC: attention heatmaps with several workers (shards)"
    title = "Attention heatmaps, in shards"
    job = "heatmaps"

    def job_inputs(self, ctx, inputs):
        heatmap_inputs(ctx, inputs)

    def settings(self, params):
        return heatmap_settings(params)


class AugmentSynedShards(_QueueShards):
    operator_name = "augment_syned_shards"
    operator_label = "IDC: Syned augmentation with several workers (shards)"
    title = "Syned augmentation, in shards"
    job = "augment"

    def job_inputs(self, ctx, inputs):
        syned_inputs(ctx, inputs, "a folder every worker reaches (shared storage): the variants' images stay there")

    def settings(self, params):
        from dataclasses import asdict

        return {
            "out_dir": params["out_dir"],
            "editor": params.get("editor", "procedural"),
            "variator": params.get("variator", "template"),
            "config": asdict(syned_config(params)),
        }


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
