"""The FiftyOne App for tests: a fresh server on localhost against the test run's own database, and
headless Debian Chromium driven by Playwright (whose own browser download is not reachable here)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError("no chromium on PATH; `bash scripts/ensure-browser.sh` installs Debian's package")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def app_server(log_path, timeout_s: float = 120.0):
    """A new App server per test run: a reused one would restore the last session's modal and panels.

    It inherits this process's FIFTYONE_* variables (database name, plugins folder), so it serves the
    test's datasets and this plugin. Never ``--clean_start``: that deletes every dataset.
    """
    port = _free_port()
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "fiftyone.server.main", "--port", str(port), "--address", "127.0.0.1"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"the App server exited ({server.returncode}); see {log_path}")
            try:
                with urllib.request.urlopen(f"{base}/fiftyone", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the App server did not answer within {timeout_s:.0f} s; see {log_path}")
            time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def wait_until(condition, timeout_s: float = 30.0, what: str = "condition"):
    """Poll the database (or anything) until ``condition()`` is truthy; the App writes asynchronously."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.3)


def dismiss_popups(page):
    """The first-run "Explore Enterprise" popup covers part of the page."""
    button = page.get_by_role("button", name="Dismiss")
    with contextlib.suppress(Exception):
        button.wait_for(timeout=3000)
        button.click()


def open_panel(page, scope, panel: str, timeout_s: float = 90.0):
    """Open ``panel`` through the "New panel" menu of ``scope`` (the grid's page or the modal).

    While the App is still loading (the modal's sample, the grid's lookers) it re-renders the panel bar,
    detaching the button between Playwright's "found" and "clicked": retry with short attempts until
    the menu's option shows, instead of one long click that keeps aiming at a detached node.
    """
    tab = scope.locator(f'[data-cy="panel-tab-{panel}"]')
    option = page.locator(f'[data-cy="new-panel-option-{panel}"]')
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if tab.count():
                tab.first.click(timeout=5000)
                return
            if not option.count():  # the menu may still be open from an attempt whose option click failed
                scope.locator('[data-cy="new-panel-btn"]').first.click(timeout=5000)
            option.click(timeout=5000)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def screenshot(page, folder, name):
    """A screenshot to ``folder``, and to IDC_SCREENSHOTS when set (the README's and docs' come from there)."""
    path = folder / f"{name}.png"
    page.screenshot(path=str(path))
    if os.environ.get("IDC_SCREENSHOTS"):
        os.makedirs(os.environ["IDC_SCREENSHOTS"], exist_ok=True)
        shutil.copy(path, os.path.join(os.environ["IDC_SCREENSHOTS"], path.name))
    return path


def first_image_source(body):
    """The first image's src, read without waiting: while the panel swaps its images there is a moment with
    none, and a locator's get_attribute would wait 30 s for one instead of letting wait_until poll again."""
    return body.locator("img").evaluate_all("images => images.length ? images[0].getAttribute('src') : null")


def show_overlay(body) -> str:
    """Turn on the review panel's "Show heatmap and regions" and wait until the overlay replaced the plain
    images and every image loaded; returns the plain first image's src (to wait for it when turned off)."""
    plain = first_image_source(body)
    body.get_by_text("Show heatmap and regions").click()
    wait_until(lambda: first_image_source(body) not in (plain, None), 90, "the overlay")
    wait_until(
        lambda: body.locator("img").evaluate_all("images => images.every(i => i.complete && i.naturalWidth > 0)"),
        60,
        "the overlay images loaded",
    )
    return plain
