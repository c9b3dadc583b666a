"""The "IDC Review" panel: review captions next to the two images (modal), steer the review (grid).

Thin: every figure and view comes from ``fiftyone_plugin.review_view`` and every write from
``fiftyone_plugin.review``. The chosen caption field and evaluation run are kept in the dataset's
own execution store, so they survive an App reload and never leak into another dataset's panel.
"""

import fiftyone.operators as foo
import fiftyone.operators.types as types

STORE = "idc_review"


class IDCReviewPanel(foo.Panel):
    @property
    def config(self):
        return foo.PanelConfig(
            name="idc_review",
            label="IDC Review",
            surfaces="grid modal",
            help_markdown="Review BLIP2IDC's captions: accept, edit or flag each pair; retrain on what you reviewed.",
        )

    # ----------------------------------------------------------------------------- settings
    def _settings(self, ctx) -> dict:
        from fiftyone_plugin.review_view import caption_fields

        saved = ctx.store(STORE).get("settings") or {}
        fields = caption_fields(ctx.dataset)
        field = saved.get("caption_field")
        if field not in fields:
            field = "idc_caption" if "idc_caption" in fields else (fields[0] if fields else None)
        runs = ctx.dataset.list_evaluations()
        eval_key = saved.get("eval_key") if saved.get("eval_key") in runs else (runs[-1] if runs else None)
        return {"caption_field": field, "eval_key": eval_key, "fields": fields, "runs": runs}

    def _save_setting(self, ctx, name, value):
        saved = dict(ctx.store(STORE).get("settings") or {})
        saved[name] = value
        ctx.store(STORE).set("settings", saved)
        self._load(ctx)

    # ----------------------------------------------------------------------------- events
    def on_load(self, ctx):
        self._load(ctx)

    def on_change_current_sample(self, ctx):
        self._load(ctx)

    def on_change_dataset(self, ctx):
        self._load(ctx)

    def _load(self, ctx):
        from fiftyone_plugin.review_view import category_chart, pair_summary, progress_markdown, summary_markdown

        settings = self._settings(ctx)
        ctx.panel.state.settings = {k: settings[k] for k in ("caption_field", "eval_key")}
        if ctx.current_sample:
            summary = pair_summary(ctx.dataset, ctx.current_sample, settings["eval_key"])
            ctx.panel.state.pair_id = summary["pair_id"]
            ctx.panel.state.images = summary["images"]
            ctx.panel.state.summary = summary_markdown(summary, settings["eval_key"])
            if summary["review"]["status"] in ("accepted", "edited"):
                ctx.panel.state.edit_text = summary["review"]["caption"]
            elif settings["caption_field"] in summary["captions"]:
                ctx.panel.state.edit_text = summary["captions"][settings["caption_field"]]["caption"]
        else:
            ctx.panel.state.progress = progress_markdown(ctx.dataset)
            ctx.panel.data.chart = category_chart(ctx.dataset, settings["eval_key"]) if settings["eval_key"] else []

    # ----------------------------------------------------------------------------- modal actions
    def _act(self, ctx, action):
        try:
            action()
        except ValueError as exc:
            ctx.ops.notify(str(exc), variant="error")
        self._load(ctx)

    def on_accept(self, ctx):
        from fiftyone_plugin.review import accept

        field = self._settings(ctx)["caption_field"]
        self._act(ctx, lambda: accept(ctx.dataset, ctx.panel.state.pair_id, field))

    def on_save_edit(self, ctx):
        from fiftyone_plugin.review import edit

        field = self._settings(ctx)["caption_field"]
        self._act(ctx, lambda: edit(ctx.dataset, ctx.panel.state.pair_id, ctx.panel.state.edit_text, field))

    def on_flag(self, ctx):
        from fiftyone_plugin.review import flag

        field = self._settings(ctx)["caption_field"]
        self._act(ctx, lambda: flag(ctx.dataset, ctx.panel.state.pair_id, ctx.panel.state.flag_reason, field))

    def on_undo(self, ctx):
        from fiftyone_plugin.review import undo

        self._act(ctx, lambda: undo(ctx.dataset, ctx.panel.state.pair_id))

    def on_next(self, ctx):
        from fiftyone_plugin.review import next_in_queue, queue_view

        field = self._settings(ctx)["caption_field"]
        if field is None:
            ctx.ops.notify("No caption field yet: caption the pairs first", variant="warning")
            return
        following = next_in_queue(ctx.dataset, field, after_pair=ctx.panel.state.pair_id)
        if following is None:
            ctx.ops.notify("The review queue is empty", variant="success")
            return
        modified = queue_view(ctx.dataset, field).select_group_slices("modified")
        sample_id = modified.match({"pair_id": following}).values("id")[0]
        ctx.ops.open_sample(id=sample_id)  # the id, not only the group: the panel then gets the sample

    def on_typing(self, ctx):
        """The text inputs keep their value in the panel's state; nothing to do per keystroke."""

    # ----------------------------------------------------------------------------- grid actions
    def on_caption_field(self, ctx):
        self._save_setting(ctx, "caption_field", ctx.params.get("value"))

    def on_eval_key(self, ctx):
        self._save_setting(ctx, "eval_key", ctx.params.get("value"))

    def on_bar_click(self, ctx):
        from fiftyone_plugin.review_view import category_view

        category = ctx.params.get("x")
        if category is not None:
            view = category_view(ctx.dataset, category)
            ctx.ops.set_view(view)
            ctx.panel.state.showing = f"showing category **{category}**: {len(view)} pairs"

    def on_worst(self, ctx):
        from fiftyone_plugin.review_view import worst_pairs_view

        eval_key = self._settings(ctx)["eval_key"]
        if eval_key is None:
            ctx.ops.notify("No evaluation run yet: run *IDC: evaluate captions* first", variant="warning")
            return
        view = worst_pairs_view(ctx.dataset, eval_key)
        ctx.ops.set_view(view)
        ctx.panel.state.showing = f"showing the **{len(view)} worst pairs** of {eval_key}, worst first"

    def on_queue(self, ctx):
        from fiftyone_plugin.review import queue_view

        field = self._settings(ctx)["caption_field"]
        if field is None:
            ctx.ops.notify("No caption field yet: caption the pairs first", variant="warning")
            return
        view = queue_view(ctx.dataset, field)
        ctx.ops.set_view(view)
        ctx.panel.state.showing = f"showing the **review queue**: {len(view)} unreviewed pairs, least confident first"

    def on_clear(self, ctx):
        ctx.ops.clear_view()
        ctx.panel.state.showing = None

    def on_retrain(self, ctx):
        field = self._settings(ctx)["caption_field"]
        ctx.prompt("@idc/idc/retrain_blip2idc_on_reviewed", params={"caption_field": field})

    # ----------------------------------------------------------------------------- layout
    def render(self, ctx):
        panel = types.Object()
        if ctx.current_sample:
            self._render_pair(panel)
        else:
            self._render_grid(ctx, panel)
        return types.Property(panel, view=types.GridView(orientation="vertical", gap=2, px=2, py=2))

    def _render_pair(self, panel):
        images = panel.h_stack("images", gap=2)
        images.img("reference", width="360px", alt_text="reference image")
        images.img("modified", width="360px", alt_text="modified image")
        panel.str("summary", view=types.MarkdownView())
        panel.str(
            "edit_text",
            label="Caption",
            on_change=self.on_typing,
            view=types.TextFieldView(label="Caption", placeholder="the corrected caption"),
        )
        actions = panel.h_stack("actions", gap=1)
        actions.btn("accept", label="Accept", on_click=self.on_accept, variant="contained")
        actions.btn("save_edit", label="Save edit", on_click=self.on_save_edit)
        actions.btn("undo", label="Undo", on_click=self.on_undo)
        actions.btn("next", label="Next in queue", on_click=self.on_next)
        panel.str(
            "flag_reason",
            label="Flag reason",
            on_change=self.on_typing,
            view=types.TextFieldView(label="Flag reason", placeholder="why this pair needs attention"),
        )
        panel.btn("flag", label="Flag", on_click=self.on_flag)

    def _render_grid(self, ctx, panel):
        settings = ctx.panel.state.settings or {}
        fields = self._settings(ctx)
        choices = types.DropdownView()
        for field in fields["fields"]:
            choices.add_choice(field, label=field)
        panel.enum(
            "caption_field",
            fields["fields"],
            default=settings.get("caption_field"),
            label="Caption field",
            view=choices,
            on_change=self.on_caption_field,
        )
        runs = types.DropdownView()
        for key in fields["runs"]:
            runs.add_choice(key, label=key)
        panel.enum(
            "eval_key",
            fields["runs"],
            default=settings.get("eval_key"),
            label="Evaluation run",
            view=runs,
            on_change=self.on_eval_key,
        )
        panel.md(ctx.panel.state.progress or "", name="progress")
        if settings.get("eval_key"):
            panel.md("**CIDEr-D x100 by category** (click a bar to see its pairs)", name="chart_title")
            panel.plot(
                "chart",
                on_click=self.on_bar_click,
                layout={"barmode": "group", "height": 320, "showlegend": True, "xaxis": {"type": "category"}},
                height=45,
            )
        if ctx.panel.state.showing:
            panel.md(ctx.panel.state.showing, name="showing")
        buttons = panel.h_stack("grid_actions", gap=1)
        buttons.btn("queue", label="Open review queue", on_click=self.on_queue, variant="contained")
        buttons.btn("worst", label="Worst pairs", on_click=self.on_worst)
        buttons.btn("clear", label="Show all", on_click=self.on_clear)
        buttons.btn("retrain", label="Retrain on reviewed", on_click=self.on_retrain)
