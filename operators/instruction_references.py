import fiftyone.operators as foo
import fiftyone.operators.types as types

from .common import cancelled, check_existing_path, check_grouped_dataset, check_positive, done, progress


class AddInstructionReferences(foo.Operator):
    @property
    def config(self):
        return foo.OperatorConfig(
            name="add_instruction_references",
            label="IDC: test references from an LLM (the instruction and 4 variations)",
            dynamic=True,
            allow_immediate_execution=True,
            allow_delegated_execution=True,
            default_choice_to_delegated=True,
        )

    def resolve_input(self, ctx):
        from idc_engine.data.pair import SPLITS
        from idc_engine.synth.references import ReferenceConfig

        inputs = types.Object()
        if not check_grouped_dataset(ctx, inputs, "not_idc"):
            return types.Property(inputs)
        defaults = ReferenceConfig()
        inputs.str(
            "model_path",
            required=True,
            label="LLM folder",
            description="a local causal-LM checkpoint (the paper: Llama-2-7b-chat); loaded offline",
        )
        inputs.int("variations", default=defaults.variations, min=1, label="Variations per instruction")
        split = types.Dropdown()
        for name in SPLITS:
            split.add_choice(name, label=name)
        inputs.enum("split", split.values(), default=defaults.split, view=split, label="Split")
        inputs.int("seed", default=defaults.seed, min=0, label="Seed", description="the same seed, the same references")
        inputs.str("device", default="auto", label="Device", description="auto, cpu, cuda, cuda:N or mps")
        check_existing_path(ctx, inputs, "model_path", directory=True)
        check_positive(ctx, inputs, "variations")
        return types.Property(inputs, view=types.View(label="Test references from an LLM"))

    def execute(self, ctx):
        from fiftyone_plugin.instruction_references import add_references_to_samples
        from idc_engine.synth.references import ReferenceConfig

        params = ctx.params
        defaults = ReferenceConfig()
        config = ReferenceConfig(
            variations=params.get("variations", defaults.variations),
            split=params.get("split", defaults.split),
            seed=params.get("seed", defaults.seed),
        )
        result = add_references_to_samples(
            ctx.target_view(),
            params["model_path"],
            config,
            llm={"device": params.get("device") or "auto"},
            progress=progress(ctx),
            cancelled=cancelled(ctx),
        )
        return done(ctx, result)

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.int("written", label="Pairs given references")
        outputs.int("variations_kept", label="Variations kept")
        outputs.int("short", label="Pairs with fewer variations than asked")
        outputs.obj("rejected", label="Lines rejected by the guardrails, by reason")
        outputs.int("generate_calls", label="LLM calls")
        return types.Property(outputs, view=types.View(label="Test references"))
