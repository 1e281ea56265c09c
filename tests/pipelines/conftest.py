"""Pipeline test fixtures."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from megacity.pipelines import dance_drawing

_STAND_IN = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"  # any TrueType font will do


@pytest.fixture
def hangul_font(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], None]]:
    """Call it to have a TrueType font stand in for a Hangul one, until the test ends.

    Until it is called, no Hangul font exists (even where one is installed, as `make test`
    installs one for the pages' screenshots), so a test can compare without and with one.
    """
    if not os.path.isfile(_STAND_IN):
        pytest.skip("no TrueType font to stand in for a Hangul one")
    dance_drawing.load_font.cache_clear()
    monkeypatch.setattr(dance_drawing, "_hangul_font_path", lambda: None)

    def use() -> None:
        dance_drawing.load_font.cache_clear()
        monkeypatch.setattr(dance_drawing, "_hangul_font_path", lambda: _STAND_IN)

    yield use
    dance_drawing.load_font.cache_clear()
