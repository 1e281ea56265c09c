"""Dance Lab heatmap: cells, widths and colours."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

from megacity.pipelines import dance_heatmap as dh
from megacity.pipelines.dance_heatmap import (
    HEATMAP_MAX_WIDTH,
    heatmap_layout,
    heatmap_png,
    score_colour,
)
from megacity.scoring.dance_types import PartTimeErrors, score_from_error
from megacity.scoring.pose import BODY_PARTS
from tests.pipelines.pictures import decode, pixel

GREEN, RED = score_colour(100.0), score_colour(0.0)


def _heat(bins: int, bin_s: float = 1.0, fill: float = 18.0, start: float = 0.0) -> PartTimeErrors:
    errors = np.full((len(BODY_PARTS), bins), fill)
    return PartTimeErrors(BODY_PARTS, start + bin_s * np.arange(bins), bin_s, errors)


def _centrepixel(image: Image.Image, box: tuple[int, int, int, int]) -> tuple[int, ...]:
    x0, y0, x1, y1 = box
    return pixel(image, ((x0 + x1) // 2, (y0 + y1) // 2))


def test_score_colour_ramp() -> None:
    assert score_colour(90) == score_colour(100) == (26, 152, 80)  # green at 90 and above
    assert score_colour(40) == score_colour(0) == (215, 48, 39)  # red at 40 and below
    r, g, b = score_colour(65)
    assert r > 200 and g > 200 and b < 160  # yellow in the middle


def test_cells_green_red_and_grey() -> None:
    heat = _heat(10)
    heat.errors_deg[2, 3] = 0.0  # left arm, 0:03: perfect
    heat.errors_deg[2, 4] = 60.0  # left arm, 0:04: far off
    heat.errors_deg[2, 5] = np.nan  # not seen
    image = decode(heatmap_png(heat, title="Your dance"))
    lay = heatmap_layout(heat, title="Your dance")
    assert image.size == (lay.width, lay.height) and image.mode == "RGB"
    assert _centrepixel(image, lay.cell_box(2, 3)) == GREEN
    assert _centrepixel(image, lay.cell_box(2, 4)) == RED
    x0, y0, x1, y1 = lay.cell_box(2, 5)
    cell = np.asarray(image)[y0:y1, x0 : x1 - 1]  # without the gutter
    assert (cell[..., 0] == cell[..., 1]).all() and (cell[..., 1] == cell[..., 2]).all()  # grey
    assert len(np.unique(cell.reshape(-1, 3), axis=0)) == 2  # hatched: two greys
    # Independently of the layout: along the left-arm row, green then red then grey cells.
    row = np.asarray(image)[(y0 + y1) // 2, lay.plot_x :]
    green_x = np.flatnonzero((row == GREEN).all(axis=1))
    red_x = np.flatnonzero((row == RED).all(axis=1))
    assert green_x.size and red_x.size and green_x.max() < red_x.min() < x0 - lay.plot_x


def test_phone_widths_and_long_songs() -> None:
    sizes = {}
    for bins in (10, 60, 360):
        heat = _heat(bins)
        heat.errors_deg[0, -1] = 60.0
        image = decode(heatmap_png(heat))
        lay = heatmap_layout(heat)
        sizes[bins] = image.size
        assert image.size[0] <= HEATMAP_MAX_WIDTH and lay.group == 1 and lay.cols == bins
        assert lay.cell_box(0, bins - 1)[2] <= image.size[0]
        assert _centrepixel(image, lay.cell_box(0, bins - 1)) == RED
        assert _centrepixel(image, lay.cell_box(0, 0)) == score_colour(score_from_error(18.0))
    assert sizes[10][0] < sizes[60][0] and sizes[10][1] == sizes[360][1]


def test_many_bins_pool_to_the_worst() -> None:
    heat = _heat(3000, bin_s=0.1)  # 5 minutes in tenths of a second
    heat.errors_deg[4, 1234] = 70.0
    lay = heatmap_layout(heat)
    assert lay.group > 1 and lay.plot_w / lay.cols >= dh.HEATMAP_MIN_CELL_W
    image = decode(heatmap_png(heat))
    assert image.size[0] <= HEATMAP_MAX_WIDTH
    assert _centrepixel(image, lay.cell_box(4, 1234 // lay.group)) == RED
    assert lay.x_of(123.4) == pytest.approx(
        lay.plot_x + (123.4 / lay.column_s) * lay.plot_w / lay.cols
    )


def test_deterministic_with_description() -> None:
    heat = _heat(40, start=3.5)
    heat.errors_deg[:, ::7] = np.nan
    a, b = heatmap_png(heat, title="Run 1"), heatmap_png(heat, title="Run 1")
    assert a == b
    assert "heatmap" in decode(a).info["Description"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"errors_deg": np.full((6, 3), np.inf)}, "NaN"),
        ({"errors_deg": np.full((6, 3), -1.0)}, ">= 0"),
        ({"errors_deg": np.zeros((5, 3))}, "shape"),
        ({"errors_deg": np.zeros((6, 0)), "starts_s": np.zeros(0)}, "shape"),
        ({"parts": ("head", "tail", "torso", "a", "b", "c")}, "body parts"),
        ({"bin_s": 0.0}, "bin_s"),
        ({"bin_s": float("nan")}, "bin_s"),
        ({"bin_s": 1e9}, "bin_s"),
        ({"starts_s": np.full(3, 1e12)}, "starts_s"),
        ({"starts_s": np.zeros(4)}, "starts_s"),
    ],
)
def test_heatmap_rejects_bad_input(change: dict[str, object], message: str) -> None:
    fields = {"parts": BODY_PARTS, "starts_s": np.arange(3.0), "bin_s": 1.0,
              "errors_deg": np.zeros((6, 3))} | change  # fmt: skip
    with pytest.raises(ValueError, match=message):
        heatmap_png(PartTimeErrors(**fields))  # type: ignore[arg-type]


def test_heatmap_rejects_bad_call() -> None:
    with pytest.raises(ValueError, match="PartTimeErrors"):
        heatmap_png(np.zeros((6, 3)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="title"):
        heatmap_png(_heat(3), title="x" * 500)


def test_korean_labels_when_a_hangul_font_exists(hangul_font: Callable[[], None]) -> None:
    plain = heatmap_layout(_heat(5)).plot_x
    hangul_font()
    assert heatmap_layout(_heat(5)).plot_x > plain  # "left arm  왼팔" is wider
    assert decode(heatmap_png(_heat(5))).size[0] <= HEATMAP_MAX_WIDTH


def test_scores_win_over_errors_and_moves_get_a_rating_strip() -> None:
    heat = _heat(8)
    scores = np.full((len(BODY_PARTS), 8), 95.0)
    scores[3, 2] = 10.0  # right arm, 0:02: a miss
    ratings = ("perfect", "good", "miss", "ok", "perfect", None, "perfect", "perfect")
    rated = PartTimeErrors(heat.parts, heat.starts_s, heat.bin_s, heat.errors_deg, scores, ratings)
    image = decode(heatmap_png(rated))
    lay = heatmap_layout(rated)
    assert lay.moves_y is not None and lay.plot_y > heatmap_layout(heat).plot_y
    assert _centrepixel(image, lay.cell_box(3, 2)) == RED  # the score, not the 18° error
    assert _centrepixel(image, lay.cell_box(0, 0)) == GREEN
    x0, y0, _, _ = lay.moves_box(2)
    assert pixel(image, (x0 + 2, y0 + 2)) == dh.RATING_COLOURS["miss"]
    x0, y0, _, _ = lay.moves_box(1)
    assert pixel(image, (x0 + 2, y0 + 2)) == dh.RATING_COLOURS["good"]
    assert "move ratings" in decode(heatmap_png(rated)).info["Description"]
    with pytest.raises(ValueError, match="ratings"):
        heatmap_png(
            PartTimeErrors(heat.parts, heat.starts_s, 1.0, heat.errors_deg, scores, ("great",) * 8)
        )
    with pytest.raises(ValueError, match="scores"):
        heatmap_png(PartTimeErrors(heat.parts, heat.starts_s, 1.0, heat.errors_deg, scores * 2))
