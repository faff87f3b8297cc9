"""Headless Chromium for the browser tests and the README's screenshots: Debian's ``chromium`` driven by
Playwright (never a browser Playwright downloads). Where there is none, the tests skip and say why;
under ``CI=true`` they fail instead, since CI installs it (.ci/run)."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager

# Playwright adds --headless and a fresh temporary --user-data-dir itself.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1200, "height": 900}


def find_chromium() -> str | None:
    for candidate in (os.environ.get("SENTIMENT_CHROMIUM"), "chromium", "chromium-browser"):
        path = candidate and shutil.which(candidate)
        if path:
            return path
    return None


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing (make install installs it)"
    if find_chromium() is None:
        return "no Chromium here: apt-get install chromium (or set SENTIMENT_CHROMIUM to its path)"
    return None


@contextmanager
def chromium():
    """A launched headless Chromium (a Playwright Browser); closed at the end."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=find_chromium(), headless=True, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()
