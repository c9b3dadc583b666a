"""A team reviewing in the real App (headless Chromium): what is typed for one pair stays with it, the
modal's sidebar follows the panel after *Next*, and two reviewers in two browsers get different pairs
and every action of theirs lands.

Each step waits on state (the database, the page's text) rather than on time, so that the tests hold
on a loaded machine.
"""

import contextlib
import os
import re

import pytest

from tests.browser.app import (
    CHROMIUM_FLAGS,
    app_server,
    chromium_path,
    dismiss_popups,
    open_panel,
    screenshot,
    wait_until,
)

pytestmark = pytest.mark.browser
TIMEOUT_MS = 120_000


@pytest.fixture
def team_dataset(shapes_pairs, request):
    """16 test pairs with a caption each and a confidence that falls with the pair id."""
    from fiftyone_plugin.dataset import pairs_to_dataset, write_pair_values

    pairs = [p for p in shapes_pairs if p.split == "test"][:16]
    name = f"idc-team-{request.node.name[:30]}-{os.getpid()}"
    dataset = pairs_to_dataset(pairs, name=name, persistent=True, overwrite=True)
    write_pair_values(dataset, "idc_caption", {p.id: f"caption of {p.id}" for p in pairs})
    write_pair_values(dataset, "idc_caption_confidence", {p.id: -0.1 * i for i, p in enumerate(pairs)})
    yield dataset
    dataset.delete()


@contextlib.contextmanager
def evidence(tmp_path, pages):
    """On a failure, what each page showed: a screenshot and the modal's text, kept in tmp_path."""
    try:
        yield
    except BaseException:
        for i, page in enumerate(pages):
            with contextlib.suppress(Exception):
                page.screenshot(path=str(tmp_path / f"failure-{i}.png"))
                (tmp_path / f"failure-{i}.txt").write_text(page.locator("body").inner_text())
        raise


def record(dataset, pair_id):
    from fiftyone_plugin.review import review_record

    return review_record(dataset, pair_id)


def shown_pair(body) -> str | None:
    match = re.search(r"pair (\S+) · category", body.inner_text())
    return match.group(1) if match else None


def open_review(page, base, dataset, reviewer):
    """The App on the dataset, the first pair's modal, the IDC Review panel, the reviewer's name
    (``None``: the name this browser remembers, which must show up by itself)."""
    page.goto(f"{base}/datasets/{dataset.name}")
    looker = page.locator('[data-cy="fo-grid"] [data-cy="looker"]').first
    modal = page.locator('[data-cy="modal"]')
    looker.or_(modal).first.wait_for(timeout=TIMEOUT_MS)
    dismiss_popups(page)
    # The App server restores its last state into a page it serves again: the modal may open by itself.
    wait_until(lambda: modal.is_visible() or _clicked(looker), TIMEOUT_MS / 1000, "the modal")
    modal.wait_for(timeout=TIMEOUT_MS)
    open_panel(page, modal, "idc_review")
    body = modal.locator('[data-cy="panel-content-idc_review"]')
    body.get_by_text("review:").first.wait_for(timeout=TIMEOUT_MS)
    name = body.get_by_placeholder("your name")
    if reviewer is not None:
        name.fill(reviewer)
        name.press("Tab")
        body.get_by_text(f"reviewing as {reviewer}").wait_for(timeout=TIMEOUT_MS)  # the panel has it
    return modal, body


def _clicked(locator) -> bool:
    try:
        locator.click(timeout=3000)
        return True
    except Exception:  # covered by the modal opening meanwhile: the caller looks again
        return False


def sidebar_value(modal, field) -> str | None:
    """The modal sidebar's value of ``field`` (its entry reads "<value>\\n<field>")."""
    entry = modal.locator(f'[data-cy="sidebar-entry-{field}"], [data-cy="sidebar-field-{field}"]').first
    if not entry.count():
        return None
    lines = [line.strip() for line in entry.inner_text().splitlines() if line.strip()]
    values = [line for line in lines if line != field]
    return values[0] if values else None


def press(body, label):
    body.get_by_role("button", name=label, exact=True).click()


def type_into(body, placeholder, text):
    box = body.get_by_placeholder(placeholder)
    box.fill(text)
    box.press("Tab")  # the field's change reaches the panel's state before the click


def test_a_flag_reason_stays_with_its_pair_and_the_sidebar_follows_next(team_dataset, tmp_path):
    from playwright.sync_api import sync_playwright

    dataset = team_dataset
    with app_server(tmp_path / "server.log") as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1500, "height": 950})
        with evidence(tmp_path, [page]):
            modal, body = open_review(page, base, dataset, "ann")
            first = wait_until(lambda: shown_pair(body), what="the first pair")

            type_into(body, "why this pair needs attention", "A is too blurry")
            press(body, "Flag")
            wait_until(lambda: record(dataset, first)["status"] == "flagged", 90, "pair A flagged")
            assert record(dataset, first)["flag_reason"] == "A is too blurry"
            assert record(dataset, first)["reviewer"] == "ann"

            press(body, "Next in queue")
            second = wait_until(lambda: (p := shown_pair(body)) != first and p, 90, "the next pair in the panel")
            # The modal's sample, its sidebar and the panel show the same pair.
            wait_until(lambda: sidebar_value(modal, "pair_id") == second, 90, f"the sidebar on {second}")
            assert sidebar_value(modal, "idc_caption") == f"caption of {second}"
            # The new pair's inputs are its own: its caption, an empty reason.
            assert body.get_by_placeholder("why this pair needs attention").input_value() == ""
            assert body.get_by_placeholder("the corrected caption").input_value() == f"caption of {second}"
            screenshot(page, tmp_path, "review-panel-next")

            press(body, "Flag")  # no reason typed for this pair: refused, nothing stored
            page.get_by_text("reason: a flag needs a reason").first.wait_for(timeout=TIMEOUT_MS)
            assert record(dataset, second)["status"] == "unreviewed" and record(dataset, second)["flag_reason"] is None

            type_into(body, "why this pair needs attention", "B has the wrong colour")
            press(body, "Flag")
            wait_until(lambda: record(dataset, second)["status"] == "flagged", 90, "pair B flagged")
            assert record(dataset, second)["flag_reason"] == "B has the wrong colour"
            assert record(dataset, first)["flag_reason"] == "A is too blurry"
            from fiftyone_plugin.review import REVIEW_FIELD

            dataset.reload()
            reasons = dataset.select_group_slices("modified").values(f"{REVIEW_FIELD}.flag_reason")
            assert sorted(r for r in reasons if r) == ["A is too blurry", "B has the wrong colour"]

            # The browser remembers the reviewer: after a reload the panel knows her without typing, and
            # the keyboard moves on (Alt+N, the JS component's shortcut for Next).
            modal, body = open_review(page, base, dataset, None)
            wait_until(lambda: body.get_by_placeholder("your name").input_value() == "ann", 90, "the remembered name")
            before = wait_until(lambda: shown_pair(body), what="a pair")
            body.get_by_text("Alt+A accept").wait_for(timeout=TIMEOUT_MS)
            page.keyboard.press("Alt+KeyN")
            moved = wait_until(lambda: (p := shown_pair(body)) != before and p, 90, "Alt+N to the next pair")
            assert record(dataset, moved)["lease"]["reviewer"] == "ann"
        browser.close()


def test_two_reviewers_in_two_browsers_get_different_pairs_and_every_action_lands(team_dataset, tmp_path):
    from playwright.sync_api import sync_playwright

    dataset = team_dataset
    accepts = 3
    with contextlib.ExitStack() as stack:
        # One App server per reviewer, on the one database: FiftyOne's open-source server keeps a single
        # App state (the open modal included) for every browser connected to it.
        bases = {name: stack.enter_context(app_server(tmp_path / f"server-{name}.log")) for name in ("ann", "bob")}
        playwright = stack.enter_context(sync_playwright())
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS)
        pages = []
        with evidence(tmp_path, pages):
            reviewers = {}
            for name, base in bases.items():
                page = browser.new_context(viewport={"width": 1500, "height": 950}).new_page()
                pages.append(page)
                pages.append(page)
                modal, body = open_review(page, base, dataset, name)
                reviewers[name] = {"page": page, "modal": modal, "body": body, "accepted": []}

            def take_next(name):
                body = reviewers[name]["body"]
                before = shown_pair(body)
                press(body, "Next in queue")
                return wait_until(lambda: (p := shown_pair(body)) != before and p, 90, f"{name}'s next pair")

            held = {name: take_next(name) for name in reviewers}
            assert held["ann"] != held["bob"]  # leased: each reviewer has a pair of their own
            assert record(dataset, held["ann"])["lease"]["reviewer"] == "ann"
            assert record(dataset, held["bob"])["lease"]["reviewer"] == "bob"

            def accept(name):
                body, pair = reviewers[name]["body"], held[name]
                if name == "bob":  # Bob works from the keyboard: Alt+A accepts (and moves on)
                    reviewers[name]["page"].keyboard.press("Alt+KeyA")
                else:
                    press(body, "Accept")
                wait_until(lambda: record(dataset, pair)["status"] == "accepted", 90, f"{name}'s accept of {pair}")
                reviewers[name]["accepted"].append(pair)
                return wait_until(lambda: (p := shown_pair(body)) != pair and p, 90, f"{name} moved on")

            for _ in range(accepts):
                for name in reviewers:
                    held[name] = accept(name)
                assert held["ann"] != held["bob"]
            screenshot(reviewers["bob"]["page"], tmp_path, "review-panel-two-reviewers")

            mine = {name: reviewer["accepted"] for name, reviewer in reviewers.items()}
            assert not set(mine["ann"]) & set(mine["bob"])
            for name, pairs in mine.items():
                for pair in pairs:
                    found = record(dataset, pair)
                    assert found["status"] == "accepted" and found["reviewer"] == name
                    assert found["caption"] == f"caption of {pair}" and found["version"] == 1
        browser.close()
