"""The "IDC Review" panel: review captions next to the two images (modal), steer the review (grid).

Thin: every figure and view comes from ``fiftyone_plugin.review_view``, every write from
``fiftyone_plugin.review`` and every queue from ``fiftyone_plugin.review_queue``.

What the reviewer saw is what is stored: each pair's caption box and flag reason live under the
pair's own key in the panel's state (``caption_<key>``, ``reason_<key>``), so text typed for one pair
can never be read for another; every button carries the pair id, the record's version and the caption
it showed (its ``params``), and the action is refused when the pair changed since. Moving to another
pair opens its sample *and its group* in the modal, so the sidebar follows the panel.

The chosen caption field, evaluation run and queue are kept in the dataset's own execution store, so
they survive an App reload and never leak into another dataset's panel.
"""

import time

import fiftyone.operators as foo
import fiftyone.operators.types as types

STORE = "idc_review"
HEARTBEAT_S = 60  # the browser renews the reviewer's lease this often while the pair is on screen
SHORTCUTS = "keys: Alt+A accept · Alt+E save edit · Alt+F flag · Alt+S skip · Alt+Z undo · Alt+N next"
QUEUE_LABELS = {"review": "unreviewed pairs", "flagged": "flagged pairs", "resolve": "blind reviews to resolve"}


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
        from fiftyone_plugin.review_view import caption_fields, idc_evaluations

        saved = ctx.store(STORE).get("settings") or {}
        fields = caption_fields(ctx.dataset)
        field = saved.get("caption_field")
        if field not in fields:
            field = "idc_caption" if "idc_caption" in fields else (fields[0] if fields else None)
        runs = idc_evaluations(ctx.dataset)
        eval_key = saved.get("eval_key") if saved.get("eval_key") in runs else (runs[-1] if runs else None)
        queue = saved.get("queue") if saved.get("queue") in QUEUE_LABELS else "review"
        return {"caption_field": field, "eval_key": eval_key, "fields": fields, "runs": runs, "queue": queue}

    def _save_setting(self, ctx, name, value):
        saved = dict(ctx.store(STORE).get("settings") or {})
        saved[name] = value
        ctx.store(STORE).set("settings", saved)
        self._load(ctx)

    def _reviewer(self, ctx):
        """FiftyOne's user where the deployment has one, else the name typed in the panel."""
        user = getattr(ctx, "user", None)
        if user is not None:
            return getattr(user, "email", None) or getattr(user, "name", None) or str(user.id)
        name = (ctx.panel.state.reviewer or "").strip()
        return name or None

    def _idc(self, ctx) -> bool:
        from fiftyone_plugin.review_view import NOT_IDC, is_idc_dataset

        if is_idc_dataset(ctx.dataset):
            ctx.panel.state.not_idc = None
            return True
        ctx.panel.state.not_idc = NOT_IDC
        return False

    # ----------------------------------------------------------------------------- events
    def on_load(self, ctx):
        self._load(ctx)

    def on_change_current_sample(self, ctx):
        self._load(ctx)

    def on_change_dataset(self, ctx):
        self._load(ctx)

    def on_change_view(self, ctx):
        """The grid's figures and the queue follow the current view (a category, a split, a tag)."""
        if not ctx.current_sample:
            self._load(ctx)

    def _load(self, ctx, reset_inputs=False):
        if not self._idc(ctx):
            return
        settings = self._settings(ctx)
        ctx.panel.state.settings = {k: settings[k] for k in ("caption_field", "eval_key", "queue")}
        if ctx.current_sample:
            self._load_pair(ctx, settings, reset_inputs)
        else:
            self._load_grid(ctx, settings)

    def _load_pair(self, ctx, settings, reset_inputs):
        """Show the pair of the modal's sample. Its inputs start afresh when the pair is new (or the
        pair changed under the reviewer); a reload of the same pair keeps what is being typed."""
        from fiftyone_plugin.review_queue import renew
        from fiftyone_plugin.review_view import pair_summary, panel_inputs, shown_pair, summary_markdown

        reviewer = self._reviewer(ctx)
        summary = pair_summary(ctx.dataset, ctx.current_sample, settings["eval_key"], reviewer)
        shown = shown_pair(summary, settings["caption_field"])
        before = ctx.panel.state.pair or {}
        inputs = panel_inputs(summary, settings["caption_field"])
        patch = {
            "pair": shown,
            "images": self._images(ctx, summary),
            "summary": summary_markdown(summary, settings["eval_key"], reviewer),
            "overlay_available": bool(summary["heatmaps"] or summary["regions"]),
        }
        if reset_inputs or before.get("key") != shown["key"]:
            patch.update({f"caption_{shown['key']}": inputs["caption"], f"reason_{shown['key']}": inputs["reason"]})
        else:
            shown["shown_at"] = before.get("shown_at", shown["shown_at"])  # the same pair: its clock runs on
        if before.get("key") and before["key"] != shown["key"]:
            patch.update({f"caption_{before['key']}": None, f"reason_{before['key']}": None})
        ctx.panel.state.set(patch)
        lease = summary["review"]["lease"]
        if reviewer and lease and lease["reviewer"] == reviewer:
            renew(ctx.dataset, shown["pair_id"], reviewer=reviewer)

    def _images(self, ctx, summary):
        from fiftyone_plugin.review_view import overlay_images

        if ctx.panel.state.overlay and (summary["heatmaps"] or summary["regions"]):
            heatmap = summary["heatmaps"][0] if summary["heatmaps"] else None
            regions = summary["regions"][0] if summary["regions"] else None
            return overlay_images(ctx.dataset, summary, heatmap, regions)
        return summary["images"]

    def _load_grid(self, ctx, settings):
        from fiftyone_plugin.review import time_per_pair
        from fiftyone_plugin.review_overlap import agreement_report, overlap_settings
        from fiftyone_plugin.review_view import (
            agreement_markdown,
            category_chart,
            change_chart,
            change_markdown,
            progress_markdown,
        )

        eval_key = settings["eval_key"]
        overlap = overlap_settings(ctx.dataset)
        ctx.panel.state.set(
            {
                "progress": progress_markdown(ctx.view),
                "agreement": agreement_markdown(agreement_report(ctx.view), time_per_pair(ctx.view), overlap),
                "change": change_markdown(ctx.dataset, eval_key) if eval_key else None,
                "overlap_percent": round(100 * overlap["share"], 1),
                "overlap_reviewers": overlap["reviewers"],
            }
        )
        ctx.panel.data.chart = category_chart(ctx.dataset, eval_key) if eval_key else []
        ctx.panel.data.change_chart = change_chart(ctx.dataset, eval_key) if eval_key else []

    # ----------------------------------------------------------------------------- modal actions
    def _pair(self, ctx):
        """The pair an action is for: the one its button was drawn for (its params), not whatever the
        panel shows by the time the click arrives."""
        params = ctx.params or {}
        shown = ctx.panel.state.pair or {}
        if params.get("pair_id") and params.get("pair_id") != shown.get("pair_id"):
            return None
        if not shown.get("pair_id"):
            return None
        # The version the clicked button was drawn with is the one the reviewer saw; the panel's state
        # may have been refreshed since (another event, a reload), and must not vouch for them.
        return {**shown, "version": params["version"]} if params.get("version") is not None else shown

    def _act(self, ctx, action, advance=False):
        from fiftyone_plugin.review import ReviewConflict

        reviewer = self._reviewer(ctx)
        if reviewer is None:
            ctx.ops.notify("Type your reviewer name first (top of the panel): every action records who made it")
            return
        pair = self._pair(ctx)
        if pair is None:
            ctx.ops.notify("The panel moved to another pair before your click arrived: nothing was stored")
            self._load(ctx)
            return
        seconds = round(time.time() - pair.get("shown_at", time.time()), 2)
        try:
            done = action(reviewer, pair, seconds)
        except ReviewConflict as conflict:
            ctx.ops.notify(str(conflict), variant="error")
            # Show the pair as it is now, and keep what the reviewer typed: they decide again with it.
            self._load(ctx)
            return
        except ValueError as exc:
            ctx.ops.notify(str(exc), variant="error")
            return
        ctx.panel.state.last_done = {"pair_id": pair["pair_id"], "action": done}
        if advance and self._move(ctx, reviewer, leave=pair["pair_id"]):
            ctx.panel.state.previous_pair = pair["pair_id"]
            return
        self._load(ctx, reset_inputs=done == "undo")  # after an undo the inputs show the restored record

    def on_accept(self, ctx):
        from fiftyone_plugin.review import accept

        def action(reviewer, pair, seconds):
            typed = (ctx.panel.state.get(f"caption_{pair['key']}") or "").strip()
            shown = pair.get("shown_caption")
            if shown is None:
                raise ValueError(f"pair {pair['pair_id']!r}: no caption in {pair['caption_field']!r} to accept")
            if typed and typed != shown.strip():
                raise ValueError("You changed the caption: *Save edit* stores your words; Accept stores the model's")
            accept(
                ctx.dataset,
                pair["pair_id"],
                pair["caption_field"],
                shown,
                reviewer=reviewer,
                expected_version=pair["version"],
                seconds=seconds,
            )
            return "accept"

        self._act(ctx, action, advance=True)

    def on_save_edit(self, ctx):
        from fiftyone_plugin.review import edit

        def action(reviewer, pair, seconds):
            typed = ctx.panel.state.get(f"caption_{pair['key']}")
            edit(
                ctx.dataset,
                pair["pair_id"],
                typed,
                pair["caption_field"],
                reviewer=reviewer,
                expected_version=pair["version"],
                seconds=seconds,
            )
            return "edit"

        self._act(ctx, action)

    def on_flag(self, ctx):
        from fiftyone_plugin.review import flag

        def action(reviewer, pair, seconds):
            reason = ctx.panel.state.get(f"reason_{pair['key']}")
            flag(
                ctx.dataset,
                pair["pair_id"],
                reason,
                pair["caption_field"],
                reviewer=reviewer,
                expected_version=pair["version"],
                seconds=seconds,
            )
            return "flag"

        self._act(ctx, action)

    def on_undo(self, ctx):
        from fiftyone_plugin.review import review_record, undo

        def action(reviewer, pair, seconds):
            record = review_record(ctx.dataset, pair["pair_id"])
            last = record["last_action"]
            # A blind vote of theirs here need not be the last action (others vote after it): it is
            # still theirs to take back on this pair, before any pair they accepted earlier.
            voted_here = record["overlap"] and record["status"] == "unreviewed"
            voted_here = voted_here and any(v["reviewer"] == reviewer for v in record["votes"])
            previous = ctx.panel.state.previous_pair
            if not voted_here and (last is None or last["reviewer"] != reviewer) and previous:
                # Accept moved on: Undo goes back to the pair just accepted and undoes it there.
                undo(ctx.dataset, previous, reviewer=reviewer)
                ctx.panel.state.previous_pair = None
                self._open(ctx, previous)
                return "undo"
            undo(ctx.dataset, pair["pair_id"], reviewer=reviewer, expected_version=pair["version"])
            return "undo"

        self._act(ctx, action)

    def on_skip(self, ctx):
        self._leave(ctx, skip_it=True)

    def on_next(self, ctx):
        self._leave(ctx, skip_it=None)

    def _leave(self, ctx, skip_it):
        """Skip, or Next: the reviewer's next pair. Next on a pair left undecided is a skip, so that it
        is not offered again before the rest of the queue."""
        from fiftyone_plugin.review import review_record
        from fiftyone_plugin.review_queue import skip

        reviewer = self._reviewer(ctx)
        if reviewer is None:
            ctx.ops.notify("Type your reviewer name first (top of the panel): the queue leases pairs by name")
            return
        pair = self._pair(ctx) or {}
        current = pair.get("pair_id")
        if current is not None:
            if skip_it is None:
                skip_it = review_record(ctx.dataset, current)["status"] == "unreviewed"
            if skip_it:
                skip(ctx.dataset, current, reviewer=reviewer)
        ctx.panel.state.previous_pair = None
        self._move(ctx, reviewer, leave=current)

    def _move(self, ctx, reviewer, leave=None) -> bool:
        from fiftyone_plugin.review_queue import next_in_queue

        settings = self._settings(ctx)
        field, queue = settings["caption_field"], settings["queue"]
        if queue == "review" and field is None:
            ctx.ops.notify("No caption field yet: caption the pairs first", variant="warning")
            return False
        following = next_in_queue(ctx.view, field, after_pair=leave, reviewer=reviewer, queue=queue)
        if following is None:
            ctx.ops.notify(f"No more {QUEUE_LABELS[queue]} in this view", variant="success")
            return False
        self._open(ctx, following)
        return True

    def _open(self, ctx, pair_id):
        """Open the pair's modified sample *with its group*: the id alone leaves the modal's sidebar on
        the previous sample (seen in FiftyOne 1.22) while the panel shows the new one."""
        from fiftyone_plugin.review import MODIFIED, _find

        doc = _find(ctx.dataset, pair_id, {"_id": 1, ctx.dataset.group_field: 1})
        group = doc[ctx.dataset.group_field]
        if ctx.view.media_type == "group":
            ctx.ops.open_sample(id=str(doc["_id"]), group_id=str(group["_id"]))
        else:  # a view of the modified samples alone (the review queue's): no groups in it
            ctx.ops.open_sample(id=str(doc["_id"]))
        ctx.panel.state.opening = {"pair_id": pair_id, "slice": MODIFIED}

    def on_heartbeat(self, ctx):
        """The browser's heartbeat (js/idc-review-keys) while the pair is on screen: keeps the lease.

        The text inputs have no change handler: their value lives in the panel's state in the browser
        and reaches the server with the action. (A server round trip per keystroke re-drew the panel
        under the reviewer's next click; on a loaded machine that click could be lost.)"""
        from fiftyone_plugin.review_queue import renew

        reviewer, pair = self._reviewer(ctx), ctx.panel.state.pair or {}
        if reviewer and pair.get("pair_id"):
            renew(ctx.dataset, pair["pair_id"], reviewer=reviewer)

    def on_reviewer(self, ctx):
        name = (ctx.params.get("value") or "").strip() or None
        ctx.panel.state.reviewer = name
        self._load(ctx)

    def on_overlay(self, ctx):
        ctx.panel.state.overlay = bool(ctx.params.get("value"))
        self._load(ctx)

    # ----------------------------------------------------------------------------- grid actions
    def on_caption_field(self, ctx):
        self._save_setting(ctx, "caption_field", ctx.params.get("value"))

    def on_eval_key(self, ctx):
        self._save_setting(ctx, "eval_key", ctx.params.get("value"))

    def on_queue_kind(self, ctx):
        self._save_setting(ctx, "queue", ctx.params.get("value"))

    def on_bar_click(self, ctx):
        from fiftyone_plugin.review_view import category_view

        category = ctx.params.get("x")
        if category is not None:
            view = category_view(ctx.dataset, category)
            ctx.ops.set_view(view)
            ctx.panel.state.showing = f"showing category **{category}**: {len(view)} pairs"

    def on_change_click(self, ctx):
        if ctx.params.get("x") in ("true-negative rate", "false changes"):
            self.on_false_changes(ctx)

    def on_false_changes(self, ctx):
        from fiftyone_plugin.review_view import false_change_view

        eval_key = self._settings(ctx)["eval_key"]
        try:
            view = false_change_view(ctx.dataset, eval_key)
        except ValueError as exc:
            ctx.ops.notify(str(exc), variant="warning")
            return
        ctx.ops.set_view(view)
        ctx.panel.state.showing = f"showing **{len(view)} unchanged pairs captioned as a change** by {eval_key}"

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
        from fiftyone_plugin.review_queue import queue_view

        settings = self._settings(ctx)
        field, queue = settings["caption_field"], settings["queue"]
        if queue == "review" and field is None:
            ctx.ops.notify("No caption field yet: caption the pairs first", variant="warning")
            return
        view = queue_view(ctx.view, field, queue)
        ctx.ops.set_view(view)
        # No count here: at 100,000 pairs counting the queue costs ~0.5 s; the grid's header shows it.
        order = "least confident first" if queue == "review" else "oldest first"
        ctx.panel.state.showing = f"showing the **{queue} queue**: {QUEUE_LABELS[queue]}, {order}"

    def on_start(self, ctx):
        reviewer = self._reviewer(ctx)
        if reviewer is None:
            ctx.ops.notify("Type your reviewer name first: the queue leases pairs by name")
            return
        self._move(ctx, reviewer)

    def on_overlap_percent(self, ctx):
        ctx.panel.state.overlap_percent = ctx.params.get("value")

    def on_overlap_reviewers(self, ctx):
        ctx.panel.state.overlap_reviewers = ctx.params.get("value")

    def on_apply_overlap(self, ctx):
        from fiftyone_plugin.review_overlap import set_overlap

        try:
            percent = float(ctx.panel.state.overlap_percent or 0)
            found = set_overlap(ctx.view, percent / 100.0, int(ctx.panel.state.overlap_reviewers or 2))
        except (TypeError, ValueError) as exc:
            ctx.ops.notify(str(exc), variant="error")
            return
        ctx.ops.notify(f"{found['overlap']} of {found['pairs']} pairs are now reviewed blind", variant="success")
        self._load(ctx)

    def on_clear(self, ctx):
        ctx.ops.clear_view()
        ctx.panel.state.showing = None

    def on_retrain(self, ctx):
        field = self._settings(ctx)["caption_field"]
        ctx.prompt("@idc/idc/retrain_blip2idc_on_reviewed", params={"caption_field": field})

    # ----------------------------------------------------------------------------- layout
    def render(self, ctx):
        panel = types.Object()
        if ctx.panel.state.not_idc:
            panel.md(ctx.panel.state.not_idc, name="not_idc")
        elif ctx.current_sample:
            self._render_pair(ctx, panel)
        else:
            self._render_grid(ctx, panel)
        return types.Property(panel, view=types.GridView(orientation="vertical", gap=2, px=2, py=2))

    def _render_keys(self, ctx, panel, carried=None):
        """The JS component (js/idc-review-keys): keyboard shortcuts, the reviewer's name remembered in
        this browser, and a heartbeat that keeps the reviewer's lease while the pair is on screen."""
        actions = {}
        if carried is not None:
            for key, method in (
                ("accept", "on_accept"),
                ("save_edit", "on_save_edit"),
                ("flag", "on_flag"),
                ("skip", "on_skip"),
                ("undo", "on_undo"),
                ("next", "on_next"),
            ):
                actions[key] = self.method_to_uri(method)
        panel.view(
            "keys",
            types.View(
                component="IDCReviewKeys",
                actions=actions,
                params=carried or {},
                reviewer=ctx.panel.state.reviewer or "",
                on_reviewer=self.method_to_uri("on_reviewer"),
                heartbeat=self.method_to_uri("on_heartbeat") if carried else None,
                heartbeat_s=HEARTBEAT_S,
                hint=SHORTCUTS if carried is not None else "",
            ),
        )

    def _render_reviewer(self, ctx, panel):
        if getattr(ctx, "user", None) is not None:
            panel.md(f"reviewing as **{self._reviewer(ctx)}**", name="reviewer_name")
            return
        panel.str(
            "reviewer",
            label="Reviewer",
            default=ctx.panel.state.reviewer,
            on_change=self.on_reviewer,
            view=types.TextFieldView(label="Reviewer", placeholder="your name (recorded with every action)"),
        )
        if ctx.panel.state.reviewer:
            panel.md(f"reviewing as **{ctx.panel.state.reviewer}**", name="reviewer_name")

    def _render_pair(self, ctx, panel):
        pair = ctx.panel.state.pair or {}
        key = pair.get("key", "none")
        carried = {"pair_id": pair.get("pair_id"), "version": pair.get("version")}
        self._render_reviewer(ctx, panel)
        self._render_keys(ctx, panel, carried)
        images = panel.h_stack("images", gap=2)
        images.img("reference", width="360px", alt_text="reference image")
        images.img("modified", width="360px", alt_text="modified image")
        if ctx.panel.state.overlay_available:
            panel.bool(
                "overlay",
                label="Show heatmap and regions",
                default=bool(ctx.panel.state.overlay),
                on_change=self.on_overlay,
                view=types.CheckboxView(),
            )
        panel.str("summary", view=types.MarkdownView())
        panel.str(
            f"caption_{key}",
            label="Caption",
            default=ctx.panel.state.get(f"caption_{key}"),
            view=types.TextFieldView(label="Caption", placeholder="the corrected caption"),
        )
        actions = panel.h_stack("actions", gap=1)
        actions.btn("accept", label="Accept", on_click=self.on_accept, variant="contained", params=carried)
        actions.btn("save_edit", label="Save edit", on_click=self.on_save_edit, params=carried)
        actions.btn("undo", label="Undo", on_click=self.on_undo, params=carried)
        actions.btn("skip", label="Skip", on_click=self.on_skip, params=carried)
        actions.btn("next", label="Next in queue", on_click=self.on_next, params=carried)
        panel.str(
            f"reason_{key}",
            label="Flag reason",
            default="",
            view=types.TextFieldView(label="Flag reason", placeholder="why this pair needs attention"),
        )
        panel.btn("flag", label="Flag", on_click=self.on_flag, params=carried)

    def _render_grid(self, ctx, panel):
        settings = ctx.panel.state.settings or {}
        fields = self._settings(ctx)
        self._render_reviewer(ctx, panel)
        self._render_keys(ctx, panel)
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
        queues = types.DropdownView()
        for key, label in QUEUE_LABELS.items():
            queues.add_choice(key, label=f"{key}: {label}")
        panel.enum(
            "queue_kind",
            list(QUEUE_LABELS),
            default=settings.get("queue", "review"),
            label="Queue",
            view=queues,
            on_change=self.on_queue_kind,
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
            if ctx.panel.state.change:
                panel.md(ctx.panel.state.change, name="change_title")
                panel.plot(
                    "change_chart",
                    on_click=self.on_change_click,
                    layout={"height": 260, "showlegend": False, "xaxis": {"type": "category"}},
                    height=35,
                )
        if ctx.panel.state.showing:
            panel.md(ctx.panel.state.showing, name="showing")
        buttons = panel.h_stack("grid_actions", gap=1)
        buttons.btn("start", label="Start reviewing", on_click=self.on_start, variant="contained")
        buttons.btn("queue", label="Open queue", on_click=self.on_queue)
        buttons.btn("worst", label="Worst pairs", on_click=self.on_worst)
        if ctx.panel.state.change:
            buttons.btn("false_changes", label="False changes", on_click=self.on_false_changes)
        buttons.btn("clear", label="Show all", on_click=self.on_clear)
        buttons.btn("retrain", label="Retrain on reviewed", on_click=self.on_retrain)
        panel.md(ctx.panel.state.agreement or "", name="agreement")
        overlap = panel.h_stack("overlap", gap=1)
        overlap.float(
            "overlap_percent",
            label="Blind overlap (% of pairs)",
            default=ctx.panel.state.overlap_percent,
            on_change=self.on_overlap_percent,
        )
        overlap.int(
            "overlap_reviewers",
            label="Reviewers per overlap pair",
            default=ctx.panel.state.overlap_reviewers,
            on_change=self.on_overlap_reviewers,
        )
        overlap.btn("apply_overlap", label="Apply overlap", on_click=self.on_apply_overlap)
