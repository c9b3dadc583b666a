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
        from idc_engine.train.config import EVAL_METRICS, FINETUNE_MODES, TrainConfig

        defaults = TrainConfig()
        inputs.enum("finetune", list(FINETUNE_MODES), default=defaults.finetune, label="Fine-tuning")
        inputs.int("lora_rank", default=defaults.lora.rank, min=1, label="LoRA rank")
        inputs.float(
            "lora_alpha",
            default=defaults.lora.alpha,
            label="LoRA alpha",
            description="the update is scaled by alpha / rank",
        )
        inputs.float("learning_rate", default=defaults.learning_rate, label="Learning rate")
        inputs.int("batch_size", default=defaults.batch_size, min=1, label="Batch size")
        inputs.int(
            "max_steps",
            default=defaults.max_steps,
            required=False,
            min=1,
            label="Steps",
            description=f"empty: {defaults.epochs:g} pass(es) over the training pairs",
        )
        inputs.int("warmup_steps", default=defaults.warmup_steps, min=0, label="Warm-up steps")
        inputs.enum(
            "eval_metric",
            list(EVAL_METRICS),
            default=defaults.eval_metric,
            label="Keep the best step by",
            description="validation CIDEr-D (needs Java) or validation loss, every "
            f"{defaults.eval_every} steps on the pairs tagged 'validation'",
        )
        inputs.str("run_key", default="blip2idc_training", label="Run key", description="records the run")
        inputs.bool("resume", default=False, label="Resume the run in the output folder")
        inputs.bool("overwrite", default=False, label="Replace an earlier run in the output folder")
        check_identifier(ctx, inputs, "run_key")
        for name in ("learning_rate", "max_steps", "batch_size", "lora_rank", "lora_alpha"):
            check_positive(ctx, inputs, name)
        if not len(ctx.target_view().match_tags("train")):
            invalid(inputs, "out_dir", "the chosen samples hold no pairs tagged 'train'")
        else:
            check_out_dir(ctx, inputs)
        return types.Property(inputs, view=types.View(label="Train BLIP2IDC"))

    def execute(self, ctx):
        from fiftyone_plugin.runs import train_on_samples

        params = ctx.params
        result = train_on_samples(
            ctx.target_view(),
            params["out_dir"],
            params.get("model", "tiny"),
            train_config(params),
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


def train_config(params: dict):
    """The form's values as a ``TrainConfig``: what the form leaves out keeps the dataclass's default."""
    from idc_engine.model.config import LoraSettings
    from idc_engine.train.config import TrainConfig

    chosen = {
        name: params[name]
        for name in ("finetune", "learning_rate", "batch_size", "max_steps", "warmup_steps", "eval_metric")
        if params.get(name) is not None
    }
    lora = {k: params[f"lora_{k}"] for k in ("rank", "alpha") if params.get(f"lora_{k}") is not None}
    return TrainConfig(**chosen, lora=LoraSettings(**lora))
