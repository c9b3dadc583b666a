"""Blind review in the real App: while a pair waits for its other reviewers, nothing of one reviewer's
decision shows in another reviewer's App — not in the modal's sidebar, not in the sample's JSON view,
not in the panel — and the panel shows each reviewer their own decision."""

import re

import pytest

from tests.browser.app import CHROMIUM_FLAGS, app_server, chromium_path, wait_until
from tests.browser.test_review_team import (
    TIMEOUT_MS,
    evidence,
    open_review,
    press,
    record,
    shown_pair,
    team_dataset,  # noqa: F401 (a fixture)
    type_into,
)

pytestmark = pytest.mark.browser
SECRET = "ann thinks the circle is cut off"


def sidebar_and_json(page, modal) -> str:
    """The modal's text with the sidebar's groups open, then with the sample's JSON view open (the
    looker's JSON control, on the Sample tab): everything of the sample the App can show."""
    for group in ("IDC_REVIEW", "OTHER"):  # collapsed at first
        modal.locator(f'[data-cy="sidebar-group-{group}"]').first.click()
    # (The sidebar lists the record's fields; lists of documents — votes, history — only the JSON view.)
    wait_until(lambda: "idc_review.flag_reason" in modal.inner_text(), TIMEOUT_MS / 1000, "the sidebar's record")
    sidebar = modal.inner_text()
    # The modal's media tab: "Sample", or the slice's name once the App has pinned one ("📌 modified").
    modal.get_by_text(re.compile(r"^(Sample|📌\s*(modified|reference))$")).first.click(timeout=TIMEOUT_MS)
    lookers = modal.locator('[data-cy="looker"]')
    lookers.first.wait_for(timeout=TIMEOUT_MS)

    def click_looker(choose):  # the main looker is the largest, the group's carousel the two smallest
        boxes = sorted(
            (box for box in (lookers.nth(i).bounding_box() for i in range(lookers.count())) if box),
            key=lambda b: b["width"] * b["height"],
        )
        box = choose(boxes)
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)

    def show_modified():  # the carousel's right thumbnail (reference, then modified)
        click_looker(lambda boxes: max(boxes[:2], key=lambda b: b["x"]))
        page.wait_for_timeout(1500)

    def on_modified() -> bool:  # the votes live on the modified sample; the App may have pinned the reference
        if not re.search(r"📌\s*reference", modal.inner_text()):
            return True
        show_modified()
        return not re.search(r"📌\s*reference", modal.inner_text())

    wait_until(on_modified, TIMEOUT_MS / 1000, "the modified slice in the modal")

    panel = page.locator('[class*="lookerJSONPanel"]')

    def open_json() -> bool:  # on the main looker
        if "idc_review_votes" in modal.inner_text():  # a list of documents: only the JSON view shows it
            return True
        if panel.count() and panel.first.is_visible():  # open (a toggle now would close it): let it render
            page.wait_for_timeout(1000)
            if re.search(r'name:\s*string\s*"reference"', panel.first.inner_text()):
                # The reference sample's JSON (the App pinned that slice): close it, show the modified one.
                print("the JSON view showed the reference sample: switching to the modified slice")
                page.locator('[class*="lookerCloseJSON"]').first.click(timeout=5000)
                panel.first.wait_for(state="hidden", timeout=15000)
                show_modified()
                return False
            return "idc_review_votes" in modal.inner_text()
        click_looker(lambda boxes: boxes[-1])
        try:
            modal.locator('[title^="JSON"]').first.click(timeout=5000)
        except Exception:  # the controls faded before the click: the shortcut instead
            page.keyboard.press("j")
        try:  # a loaded App may take seconds to open it; toggling again before then would close it
            panel.first.wait_for(state="visible", timeout=15000)
        except Exception:
            return False
        return "idc_review_votes" in modal.inner_text()

    wait_until(open_json, TIMEOUT_MS / 1000, "the sample's JSON view")
    return sidebar + "\n" + modal.inner_text()


def test_a_blind_decision_shows_nowhere_in_another_reviewers_app(team_dataset, tmp_path):  # noqa: F811
    from playwright.sync_api import sync_playwright

    from fiftyone_plugin.review_overlap import set_overlap

    dataset = team_dataset
    set_overlap(dataset, share=1.0, reviewers=2)
    with app_server(tmp_path / "server.log") as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS)
        pages = []
        with evidence(tmp_path, pages):
            ann = browser.new_context(viewport={"width": 1500, "height": 950}).new_page()
            pages.append(ann)
            modal, body = open_review(ann, base, dataset, "ann")
            pair = wait_until(lambda: shown_pair(body), what="the first pair")
            type_into(body, "why this pair needs attention", SECRET)
            press(body, "Flag")
            wait_until(lambda: [v["reviewer"] for v in record(dataset, pair)["votes"]] == ["ann"], 90, "ann's vote")
            assert record(dataset, pair)["status"] == "unreviewed"  # one of two blind reviews in
            body.get_by_text("yours: flagged").first.wait_for(timeout=TIMEOUT_MS)  # Ann sees her own

            bob = browser.new_context(viewport={"width": 1500, "height": 950}).new_page()
            pages.append(bob)
            modal, body = open_review(bob, base, dataset, "bob")
            wait_until(lambda: shown_pair(body) == pair, 90, "Bob on the same pair")
            body.get_by_text("blind review by 2 reviewers, 1 in").first.wait_for(timeout=TIMEOUT_MS)
            shown = sidebar_and_json(bob, modal)  # the panel, the sidebar and the sample's whole JSON
            assert SECRET not in shown and "flagged" not in shown.replace("flagged pairs", ""), shown
            assert "ballot" in shown and "ann" in shown  # the JSON view shows who voted, not what they decided
        browser.close()
