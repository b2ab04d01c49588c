"""Headless Chromium for the page and report tests: Debian's `chromium` package driven by Playwright for Python.

`playwright install` downloads a browser from the internet; this project's machines have none, so
Playwright is pointed at the system Chromium (`.ci/run` installs it). SYNTH_REWARD_CHROMIUM overrides the path.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str:
    path = os.environ.get("SYNTH_REWARD_CHROMIUM") or next(filter(None, map(shutil.which, CANDIDATES)), None)
    assert path, "no Chromium found: apt-get install -y chromium (or set SYNTH_REWARD_CHROMIUM)"
    return path


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # a missing tool is a failure, never a silent skip
        raise AssertionError("the browser tests need Playwright for Python: pip install playwright") from exc
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox", "--disable-gpu"])
        try:
            yield browser
        finally:
            browser.close()


def not_blank(png: Path, min_colors: int = 64) -> bool:
    """The screenshot shows something: many distinct colours, not one flat page."""
    from PIL import Image

    with Image.open(png) as image:
        colors = image.convert("RGB").getcolors(maxcolors=1 << 20)
    return colors is None or len(colors) >= min_colors


def keep(shot: Path) -> None:
    """Copy a screenshot to SYNTH_REWARD_SCREENSHOTS, when set (how docs/images/ are made)."""
    folder = os.environ.get("SYNTH_REWARD_SCREENSHOTS")
    if folder:
        shutil.copy(shot, Path(folder) / shot.name)
