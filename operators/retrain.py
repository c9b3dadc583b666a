import fiftyone.operators as foo
import fiftyone.operators.types as types

from .common import (
    cancelled,
    check_grouped_dataset,
    check_identifier,
    check_positive,
    done,
    field_input,
    invalid,
    progress,
)

REPLAY_TRAIN_SPLIT = "(the dataset's train split)"


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
        from fiftyone_plugin.retrain import RetrainConfig, free_field_name, plan_retraining

        defaults = RetrainConfig()
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
        inputs.str(
            "new_field",
            default=free_field_name(ctx.dataset, f"{field or 'idc_caption'}_retrained"),
            label="New captions field",
            description="the compared pairs' captions after (and '<field>_before'); an earlier run's is never reused",
        )
        check_identifier(ctx, inputs, "new_field")
        chosen = ctx.params.get("new_field")
        if chosen and free_field_name(ctx.dataset, chosen) != chosen:
            invalid(inputs, "new_field", f"new_field: an earlier retraining stored {chosen!r}; choose another name")
        inputs.float("holdout", default=defaults.holdout, label="Held-out share", description="kept for the comparison")
        inputs.float(
            "validation",
            default=defaults.validation,
            label="Validation share",
            description="of the other reviewed pairs: picks the best step",
        )
        inputs.float(
            "replay_ratio",
            default=defaults.replay_ratio,
            label="Replay ratio",
            description="pairs of the data the model learnt from, per reviewed training pair (0: none)",
        )
        views = types.Dropdown()
        names = [REPLAY_TRAIN_SPLIT] + ctx.dataset.list_saved_views()
        for name in names:
            views.add_choice(name, label=name)
        inputs.enum("replay_view", names, default=REPLAY_TRAIN_SPLIT, label="Replay from", view=views)
        inputs.bool(
            "include_test",
            default=defaults.include_test,
            label="Train on reviewed pairs of the test split too",
            description="off: they are compared instead, never trained on",
        )
        inputs.int("test_pairs", default=defaults.test_pairs, min=0, label="Test pairs compared before / after")
        inputs.int("max_steps", default=defaults.max_steps, min=1, label="Steps")
        inputs.int("batch_size", default=defaults.batch_size, min=1, label="Batch size")
        inputs.float("learning_rate", default=defaults.learning_rate, label="Learning rate")
        for name in ("max_steps", "batch_size", "learning_rate"):
            check_positive(ctx, inputs, name)
        try:
            retrain = _retrain_config(ctx.params)
            plan = plan_retraining(target, field or "idc_caption", retrain, _replay(ctx))
        except ValueError as exc:
            invalid(inputs, "holdout", str(exc))
        else:
            inputs.view(
                "plan",
                types.Notice(
                    label=f"{len(plan['training'])} reviewed pairs train, {len(plan['validation'])} validate, "
                    f"{len(plan['replay'])} replayed; compared: {len(plan['held_edited'])} edited and "
                    f"{len(plan['held_accepted'])} accepted held out, {len(plan['tests'])} test pairs; "
                    f"{plan['test_left_out']} reviewed test-split pairs left out of training"
                ),
            )
        return types.Property(inputs, view=types.View(label="Retrain on reviewed captions"))

    def execute(self, ctx):
        from fiftyone_plugin.retrain import retrain_on_reviewed, retraining_train_config

        params = ctx.params
        retrain = _retrain_config(params)
        result = retrain_on_reviewed(
            ctx.target_view(),
            params.get("caption_field", "idc_caption"),
            params["out_dir"],
            retraining_train_config(retrain),
            retrain,
            new_field=params.get("new_field") or None,
            model=params.get("model") or None,
            replay_samples=_replay(ctx),
            progress=progress(ctx),
            cancelled=cancelled(ctx),
        )
        comparisons = result.pop("comparisons")
        for name, found in comparisons.items():
            rows = [{"category": c, **values} for c, values in (found.get("table") or {}).items()]
            result[name] = {k: v for k, v in found.items() if k != "table"} | {"rows": rows}
        return done(ctx, result)

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.str("model_dir", label="New model")
        outputs.int("trained_on", label="Reviewed pairs trained on")
        outputs.int("validation", label="Reviewed pairs that validated")
        outputs.int("replayed", label="Replayed pairs")
        outputs.obj("best", label="Best step (kept)")
        outputs.obj(
            "no_change_decision",
            label="'No change' decision: recalibrated on the reviewed validation pairs, or kept from the start model",
        )
        outputs.int("test_split_left_out_of_training", label="Reviewed test-split pairs never trained on")
        outputs.str("new_field", label="New captions of the compared pairs")
        outputs.str("before_field", label="The starting model's captions of the same pairs, decoded alike")
        outputs.obj("held_out_edited", label="Held-out edited pairs (where the old model was wrong)")
        outputs.obj("held_out_accepted", label="Held-out accepted pairs (favour the old model by construction)")
        outputs.obj("test_references", label="The dataset's test references (what retraining forgot)")
        return types.Property(outputs, view=types.View(label="Retrained"))


def _retrain_config(params):
    from fiftyone_plugin.retrain import RetrainConfig

    defaults = RetrainConfig()
    return RetrainConfig(
        holdout=params.get("holdout", defaults.holdout),
        validation=params.get("validation", defaults.validation),
        replay_ratio=params.get("replay_ratio", defaults.replay_ratio),
        include_test=params.get("include_test", defaults.include_test),
        test_pairs=params.get("test_pairs", defaults.test_pairs),
        max_steps=params.get("max_steps", defaults.max_steps),
        batch_size=params.get("batch_size", defaults.batch_size),
        learning_rate=params.get("learning_rate", defaults.learning_rate),
    )


def _replay(ctx):
    name = ctx.params.get("replay_view")
    if not name or name == REPLAY_TRAIN_SPLIT:
        return None
    return ctx.dataset.load_saved_view(name)
