"""The review loop in a real browser: the IDC Review panel in the FiftyOne App, headless Chromium.

A small grouped dataset captioned by the embedded model and evaluated; the panel opened in the grid
(chart, progress) and in the sample modal (the two images, the caption), where one pair's caption is
accepted, the next pair of the queue edited, and the edit undone, each checked in the database.
Screenshots go to the test's folder, and to IDC_SCREENSHOTS when set (the README's come from there).
"""

import os
import re

import pytest

from tests.browser.app import (
    CHROMIUM_FLAGS,
    app_server,
    chromium_path,
    dismiss_popups,
    first_image_source,
    open_panel,
    screenshot,
    show_overlay,
    wait_until,
)

pytestmark = pytest.mark.browser


@pytest.fixture
def review_dataset(shapes_pairs):
    from fiftyone_plugin.captioning import caption_samples
    from fiftyone_plugin.dataset import pairs_to_dataset
    from fiftyone_plugin.evaluation import evaluate_idc_captions
    from fiftyone_plugin.heatmaps import compute_heatmaps
    from idc_engine.model.loading import load_model

    # Test pairs first: the grid's first sample, which the test opens, is then a captioned one.
    pairs = [p for p in shapes_pairs if p.split == "test"][:12] + [p for p in shapes_pairs if p.split == "train"][:24]
    dataset = pairs_to_dataset(pairs, name=f"idc-review-browser-{os.getpid()}", persistent=True, overwrite=True)
    test = dataset.match_tags("test")
    model = load_model("tiny")
    caption_samples(test, model, "idc_caption")
    compute_heatmaps(test, model)  # the attention heatmaps and difference regions the modal can overlay
    # Two runs; the panel shows the last by name (review_eval) until the user picks the other.
    evaluate_idc_captions(test.limit(6), "idc_caption", "a_subset_eval", baselines=True)
    evaluate_idc_captions(test, "idc_caption", "review_eval", baselines=True)
    yield dataset
    dataset.delete()


def _shown_pair(body) -> str:
    text = body.inner_text()
    match = re.search(r"pair (\S+) · category", text)
    assert match, text
    return match.group(1)


def test_review_a_caption_in_the_app(review_dataset, tmp_path):
    from playwright.sync_api import sync_playwright

    from fiftyone_plugin.review import review_record as record_in_this_process

    dataset = review_dataset

    def review_record(data, pair_id):
        data.reload()  # the App server's process declared the review fields: see them here too
        return record_in_this_process(data, pair_id)

    with app_server(tmp_path / "server.log") as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1500, "height": 950})
        page.goto(f"{base}/datasets/{dataset.name}")
        page.locator('[data-cy="fo-grid"] [data-cy="looker"]').first.wait_for(timeout=120_000)
        dismiss_popups(page)

        # The modal: both images and the caption of the pair, with the review actions.
        page.locator('[data-cy="fo-grid"] [data-cy="looker"]').first.click()
        modal = page.locator('[data-cy="modal"]')
        try:
            modal.wait_for(timeout=60_000)
        except Exception:
            screenshot(page, tmp_path, "modal-fail")
            raise
        open_panel(page, modal, "idc_review")
        body = modal.locator('[data-cy="panel-content-idc_review"]')
        body.get_by_text("review:").first.wait_for(timeout=60_000)
        name = body.get_by_placeholder("your name")  # every action records who made it
        name.fill("ann")
        name.press("Tab")
        body.get_by_text("reviewing as ann").wait_for(timeout=60_000)
        wait_until(lambda: body.locator("img").count() == 2 and body.locator("img").first.get_attribute("src"))
        sources = body.locator("img").evaluate_all("images => images.map(i => [i.src, i.naturalWidth])")
        assert all("/media?filepath=" in src and width > 0 for src, width in sources), sources
        screenshot(page, tmp_path, "review-panel-modal")

        # The heatmap and the regions over both images, where the model looked.
        plain = show_overlay(body)
        screenshot(page, tmp_path, "review-panel-heatmap")
        body.get_by_text("Show heatmap and regions").click()
        wait_until(lambda: first_image_source(body) == plain, 90, "the plain images")

        first = _shown_pair(body)
        body.get_by_role("button", name="Accept", exact=True).click()
        accepted = wait_until(
            lambda: review_record(dataset, first)["status"] == "accepted", timeout_s=90, what="the accept"
        )
        assert accepted and review_record(dataset, first)["source_field"] == "idc_caption"

        second = wait_until(
            lambda: (p := _shown_pair(body)) != first and p, timeout_s=90, what="the next pair (Accept moves on)"
        )
        editor = body.get_by_placeholder("the corrected caption")
        editor.fill("")
        editor.press_sequentially("the red circle was moved to the left")
        editor.press("Tab")  # the field's change event reaches the panel's state before the click
        body.get_by_role("button", name="Save edit", exact=True).click()
        wait_until(lambda: review_record(dataset, second)["status"] == "edited", timeout_s=90, what="the edit")
        assert review_record(dataset, second)["caption"] == "the red circle was moved to the left"
        screenshot(page, tmp_path, "review-panel-edited")

        body.get_by_role("button", name="Undo", exact=True).click()
        wait_until(lambda: review_record(dataset, second)["status"] == "unreviewed", timeout_s=90, what="the undo")
        assert review_record(dataset, first)["status"] == "accepted"  # the other pair keeps its review
        box = modal.bounding_box()
        page.mouse.click(max(2, box["x"] / 2), box["y"] + box["height"] / 2)  # the backdrop beside the modal
        modal.wait_for(state="hidden", timeout=30_000)

        # Meanwhile two reviewers reviewed three pairs blind (a 10 % overlap, here all of the rest).
        blind_reviews(dataset, exclude={first, second})

        # The grid: the panel charts the evaluation run and counts the review progress.
        open_panel(page, page, "idc_review")
        grid_panel = page.locator('[data-cy="panel-content-idc_review"]')
        grid_panel.get_by_text("review progress").wait_for(timeout=60_000)
        assert "unreviewed 32 · accepted 2 · edited 1 · flagged 0 · disputed 1" in grid_panel.inner_text()
        grid_panel.get_by_text("agreement: 67% of 3 pairs · 1 to resolve").wait_for(timeout=60_000)
        grid_panel.get_by_text("agreement:").scroll_into_view_if_needed()
        screenshot(page, tmp_path, "review-panel-agreement")
        grid_panel.get_by_text("review progress").scroll_into_view_if_needed()
        bars = grid_panel.locator("g.point path")
        try:
            bars.first.wait_for(timeout=30_000)
        except Exception:
            screenshot(page, tmp_path, "chart-fail")
            raise
        screenshot(page, tmp_path, "review-panel-grid")

        # A click on a category's bar filters the grid to that category's pairs.
        categories = dataset.select_group_slices("modified").count_values("category")
        first_category = sorted(categories)[0]
        bars.first.click(force=True)
        grid_panel.get_by_text(f"showing category {first_category}: {categories[first_category]} pairs").wait_for(
            timeout=30_000
        )
        page.locator('[data-cy="fo-grid"] [data-cy="looker"]').first.wait_for(timeout=60_000)
        screenshot(page, tmp_path, "review-panel-category")

        # The panel's choice of evaluation run is the dataset's own and survives a reload of the App.
        grid_panel.get_by_role("combobox").filter(has_text="review_eval").first.click()
        page.get_by_role("option", name="a_subset_eval", exact=True).click()
        wait_until(
            lambda: saved_settings(dataset).get("eval_key") == "a_subset_eval", timeout_s=90, what="the saved choice"
        )
        page.reload()
        page.locator('[data-cy="fo-grid"] [data-cy="looker"]').first.wait_for(timeout=120_000)
        reloaded = page.locator('[data-cy="panel-content-idc_review"]')
        if not reloaded.count():
            open_panel(page, page, "idc_review")
        reloaded.get_by_text("review progress").wait_for(timeout=60_000)
        reloaded.get_by_role("combobox").filter(has_text="a_subset_eval").first.wait_for(timeout=30_000)
        assert not reloaded.get_by_role("combobox").filter(has_text="review_eval").count()
        browser.close()


def blind_reviews(dataset, exclude):
    """Ann and Bob review three captioned pairs blind: they agree on two, disagree on one."""
    from fiftyone_plugin.review import accept, edit, flag
    from fiftyone_plugin.review_overlap import set_overlap

    captioned = dataset.select_group_slices("modified").match_tags("test")
    pairs = [p for p in captioned.values("pair_id") if p not in exclude][:3]
    set_overlap(dataset.match({"pair_id": {"$in": pairs}}), share=1.0, reviewers=2)
    for reviewer in ("ann", "bob"):
        accept(dataset, pairs[0], "idc_caption", reviewer=reviewer)
    edit(dataset, pairs[1], "the red circle moved to the left", reviewer="ann")
    edit(dataset, pairs[1], "a red circle was moved to the left", reviewer="bob")
    accept(dataset, pairs[2], "idc_caption", reviewer="ann")
    flag(dataset, pairs[2], "two objects changed, the caption names one", reviewer="bob")


def saved_settings(dataset) -> dict:
    """What the panel saved in the dataset's execution store (never another dataset's)."""
    from fiftyone.operators.store import ExecutionStore

    return ExecutionStore.create("idc_review", dataset._doc.id).get("settings") or {}  # the panel's STORE
