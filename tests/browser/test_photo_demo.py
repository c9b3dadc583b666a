"""The photo demo dataset in a real browser: held-out photographs captioned by the embedded ``tiny-photo``
preset, opened in the IDC Review panel of the sample modal (both images and the preset's caption).
The screenshot goes to the test's folder, and to IDC_SCREENSHOTS when set (the docs' comes from there).
"""

import os
import re

import pytest

from idc_engine.attention.regions import says_no_change
from tests.browser.app import (
    CHROMIUM_FLAGS,
    app_server,
    chromium_path,
    dismiss_popups,
    open_panel,
    screenshot,
    show_overlay,
    wait_until,
)
from tests.tiny_photo import requires_tiny_photo

pytestmark = [pytest.mark.browser, requires_tiny_photo]


@pytest.fixture
def photo_demo_dataset(tmp_path_factory):
    from fiftyone_plugin.demo_photos import build_photo_demo_dataset
    from idc_engine.demo_photos import PhotoDemoConfig, run_photo_demo

    out = tmp_path_factory.mktemp("photo-demo")
    run_photo_demo(PhotoDemoConfig(train_pairs=40, validation_pairs=3, test_pairs=12), out)
    dataset, _, _ = build_photo_demo_dataset(out, name=f"idc-demo-photos-browser-{os.getpid()}")
    yield dataset
    dataset.delete()


def test_the_photo_demo_in_the_review_panel(photo_demo_dataset, tmp_path):
    from playwright.sync_api import sync_playwright

    dataset = photo_demo_dataset
    captions = dict(zip(*dataset.select_group_slices("modified").values(["pair_id", "idc_caption"])))
    with app_server(tmp_path / "server.log") as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1500, "height": 950})
        page.goto(f"{base}/datasets/{dataset.name}")
        page.locator('[data-cy="fo-grid"] [data-cy="looker"]').first.wait_for(timeout=120_000)
        dismiss_popups(page)
        page.locator('[data-cy="fo-grid"] [data-cy="looker"]').first.click()
        modal = page.locator('[data-cy="modal"]')
        modal.wait_for(timeout=60_000)
        open_panel(page, modal, "idc_review")
        body = modal.locator('[data-cy="panel-content-idc_review"]')
        body.get_by_text("review:").first.wait_for(timeout=60_000)
        wait_until(lambda: body.locator("img").count() == 2 and body.locator("img").first.get_attribute("src"))
        text = body.inner_text()
        shown = re.search(r"pair (\S+) · category", text)
        assert shown, text
        if captions.get(shown.group(1)):  # a test pair: the preset's caption is what the panel shows
            assert captions[shown.group(1)] in text
        page.wait_for_timeout(1000)  # the two photographs finish decoding
        screenshot(page, tmp_path, "photo-demo-review-panel")

        # The heatmap and the regions drawn over both photographs (regions from the pixel difference).
        show_overlay(body)
        screenshot(page, tmp_path, "photo-demo-regions")
        browser.close()
    # The heatmap alone changes the overlay: the shown pair must also have regions to draw.
    regions = dict(zip(*dataset.select_group_slices("modified").values(["pair_id", "idc_regions"])))
    caption = captions.get(shown.group(1))
    if caption and not says_no_change(caption):
        assert regions[shown.group(1)] and regions[shown.group(1)].detections, shown.group(1)
