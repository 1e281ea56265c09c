"""Pages in a real browser: Debian's Chromium driven by Playwright (the PyPI package).

`playwright install` cannot download browsers on the build machines, so the tests launch
the system's Chromium by path (`make test` installs it with apt, as it does espeak-ng). A
missing Chromium fails the tests under CI=true and skips them otherwise. Screenshots go
to test-artifacts/screenshots/ (git-ignored) for a person to look at after a run.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("MEGACITY_TEST_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # A fake microphone, granted without a prompt: the pages' recorders can be driven.
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]


def require_chromium() -> str:
    """Chromium's path; missing (or Playwright missing) fails under CI=true, else skips."""
    problem = None
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        problem = f"{CHROMIUM} is not installed (make test installs it: apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "the playwright package is not installed (pip install playwright)"
    if problem is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(problem)
        pytest.skip(problem)
    return CHROMIUM


@dataclass
class Console:
    """What the page said on its console, and the errors among it (failed loads included)."""

    errors: list[str] = field(default_factory=list)

    def watch(self, page: Any) -> None:
        page.on("console", self._message)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        page.on("requestfailed", self._failed)

    def _message(self, message: Any) -> None:
        if message.type in ("error", "assert"):
            self.errors.append(f"console.{message.type}: {message.text}")

    def _failed(self, request: Any) -> None:
        failure = request.failure or ""
        if "ERR_ABORTED" not in failure:  # navigations away cancel pending loads
            self.errors.append(f"request failed: {request.url} {failure}")

    def take(self) -> list[str]:
        errors, self.errors = self.errors, []
        return errors


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as a test artefact; its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
