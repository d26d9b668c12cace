"""Debian's Chromium, driven by Playwright, with the network closed to everything but the page's
own origin: Playwright never downloads a browser of its own here (that fails), and a page that
reaches for a CDN is caught (every blocked request is recorded).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import BrowserContext, Route, sync_playwright

CHROMIUM = Path(os.environ.get("B2P_CHROMIUM", "/usr/bin/chromium"))
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "bi" / "screenshots"


@dataclass
class Browser:
    context: BrowserContext
    blocked: list[str] = field(default_factory=list)  # requests to anything not allowed


@contextmanager
def chromium(
    allowed_prefixes: tuple[str, ...], width: int = 1600, height: int = 1000
) -> Iterator[Browser]:
    """A fresh headless Chromium profile that may load only URLs starting with one of
    `allowed_prefixes` (and data:/blob: URLs); every other request is aborted and recorded."""
    if not CHROMIUM.exists():
        raise AssertionError(
            f"no Chromium at {CHROMIUM}: apt-get install -y chromium (.ci/run does), "
            "or point B2P_CHROMIUM at Debian's chromium binary"
        )
    with tempfile.TemporaryDirectory(prefix="b2p-chromium-") as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            headless=True,
            args=FLAGS,
            viewport={"width": width, "height": height},
            # a service worker (Superset registers one) would answer requests unseen by the
            # route below and by the tests' response listeners
            service_workers="block",
        )
        browser = Browser(context)

        def route(route: Route) -> None:
            url = route.request.url
            if url.startswith(("data:", "blob:", *allowed_prefixes)):
                route.continue_()
            else:
                browser.blocked.append(url)
                route.abort()

        context.route("**/*", route)
        try:
            yield browser
        finally:
            context.close()


def screenshot_path(name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{name}.png"
