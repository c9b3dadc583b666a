import os

import fiftyone.operators as foo
import fiftyone.operators.types as types

from .common import (
    cancelled,
    check_grouped_dataset,
    check_identifier,
    check_positive,
    done,
    invalid,
    model_input,
    progress,
)


def check_out_dir(ctx, inputs):
    """The engine refuses a folder that holds an earlier run; say so in the form, before queuing."""
    out_dir = ctx.params.get("out_dir")
    if not out_dir or ctx.params.get("resume") or ctx.params.get("overwrite"):
        return
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        invalid(inputs, "out_dir", f"{out_dir!r} is not empty: tick resume or overwrite, or choose a new folder")


class TrainBLIP2IDC(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="train_blip2idc",
            label="IDC: train BLIP2IDC (LoRA)",
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
        model_input(ctx, inputs, label="Start from")
        inputs.str("out_dir", required=True, label="Output folder", description="checkpoints and the adapter")
        inputs.enum("finetune", ["lora", "full"], default="lora", label="Fine-tuning")
        inputs.int("lora_rank", default=16, min=1, label="LoRA rank")
        inputs.float("learning_rate", default=2e-4, label="Learning rate")
        inputs.int("batch_size", default=16, min=1, label="Batch size")
        inputs.int("max_steps", default=1000, min=1, label="Steps")
        inputs.str("run_key", default="blip2idc_training", label="Run key", description="records the run")
        inputs.bool("resume", default=False, label="Resume the run in the output folder")
        inputs.bool("overwrite", default=False, label="Replace an earlier run in the output folder")
        check_identifier(ctx, inputs, "run_key")
        for name in ("learning_rate", "max_steps", "batch_size", "lora_rank"):
            check_positive(ctx, inputs, name)
        if not len(ctx.target_view().match_tags("train")):
            invalid(inputs, "out_dir", "the chosen samples hold no pairs tagged 'train'")
        else:
            check_out_dir(ctx, inputs)
        return types.Property(inputs, view=types.View(label="Train BLIP2IDC"))

    def execute(self, ctx):
        from fiftyone_plugin.runs import train_on_samples
        from idc_engine.model.config import LoraSettings
        from idc_engine.train.config import TrainConfig

        params = ctx.params
        rank = params.get("lora_rank", 16)
        config = TrainConfig(
            finetune=params.get("finetune", "lora"),
            lora=LoraSettings(rank=rank, alpha=2 * rank),
            learning_rate=params.get("learning_rate", 2e-4),
            batch_size=params.get("batch_size", 16),
            max_steps=params.get("max_steps", 1000),
            warmup_steps=min(50, params.get("max_steps", 1000) // 10),
            eval_metric="loss",
        )
        result = train_on_samples(
            ctx.target_view(),
            params["out_dir"],
            params.get("model", "tiny"),
            config,
            run_key=params.get("run_key", "blip2idc_training"),
            progress=progress(ctx),
            cancelled=cancelled(ctx),
            resume=params.get("resume", False),
            overwrite=params.get("overwrite", False),
        )
        return done(ctx, result)

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.str("model_dir", label="Model saved to")
        outputs.str("stopped", label="Stopped")
        outputs.int("steps", label="Steps")
        outputs.int("train_pairs", label="Training pairs")
        outputs.int("validation_pairs", label="Validation pairs")
        return types.Property(outputs, view=types.View(label="Training finished"))
