"""Playwright (async API, on the session's event loop) with Debian's Chromium.

`playwright install` is never needed: the browser is the system's /usr/bin/chromium.
"""

from __future__ import annotations

import os

from playwright.async_api import Dialog, Page

CHROMIUM = os.environ.get("EVENTSCOPE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def watch_for_errors(page: Page) -> list[str]:
    """Collect page errors and dialogs: a page that shows hostile data must raise neither."""
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"pageerror: {error}"))

    async def on_dialog(dialog: Dialog) -> None:
        problems.append(f"dialog: {dialog.message}")
        await dialog.dismiss()

    page.on("dialog", on_dialog)
    return problems
