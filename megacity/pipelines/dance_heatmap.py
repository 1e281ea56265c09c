"""The Dance Lab heatmap: body part × time, each cell coloured by the part's score, as PNG bytes.

Rows are body parts, columns time bins of the learner's video; when bins are too many for
the width, neighbouring ones are pooled (the worst score wins). When the bins carry move
ratings, a strip above the rows shows each move's rating (perfect, good, ok, miss).
``heatmap_layout`` says where every cell and time is, so a client can map a tap on the
image to a moment.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from megacity.pipelines.dance_drawing import RGB, bilingual, fit, load_font, png_bytes, text_font
from megacity.scoring.dance_types import RATING_NAMES, PartTimeErrors, scores_from_errors
from megacity.scoring.pose import BODY_PARTS, PART_NAMES

# Score → colour: ColorBrewer RdYlGn stops, red at 40 and below, green at 90 and above.
SCORE_RAMP: tuple[tuple[float, RGB], ...] = (
    (40.0, (215, 48, 39)), (52.5, (252, 141, 89)), (65.0, (254, 224, 139)),
    (77.5, (145, 207, 96)), (90.0, (26, 152, 80)),
)  # fmt: skip
RATING_COLOURS: dict[str, RGB] = {
    "perfect": (26, 152, 80), "good": (145, 207, 96), "ok": (254, 224, 139), "miss": (215, 48, 39),
}  # fmt: skip
RATING_LETTERS = {"perfect": "P", "good": "G", "ok": "O", "miss": "X"}
UNSEEN_COLOUR: RGB = (204, 204, 204)
UNSEEN_HATCH: RGB = (150, 150, 150)
BACKGROUND: RGB = (255, 255, 255)
INK: RGB = (33, 33, 33)

HEATMAP_MAX_WIDTH = 1200  # px: a phone screen's width at 2-3× density
HEATMAP_MAX_CELL_W = 40
HEATMAP_MIN_CELL_W = 2  # below this, neighbouring bins are pooled (worst error wins)
HEATMAP_ROW_H = 44
MOVES_ROW_H = 30
MAX_BINS = 20_000
MAX_BIN_S = 3600.0
MAX_TIME_S = 86_400.0
_MARGIN = 16
_ROW_GAP = 2
_TICK_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600)
MAX_TITLE_CHARS = 120


def score_colour(score: float) -> RGB:
    """Heatmap colour of a score 0..100: red at 40 and below, yellow at 65, green at 90+."""
    xs = [s for s, _ in SCORE_RAMP]
    r, g, b = (round(float(np.interp(score, xs, [c[k] for _, c in SCORE_RAMP]))) for k in range(3))
    return r, g, b


def _clock(t: float) -> str:
    s = max(0, round(t))
    return f"{s // 60}:{s % 60:02d}"


@dataclass(frozen=True)
class HeatmapLayout:
    """Pixel geometry of a heatmap: row ``r`` is ``heat.parts[r]``; a column pools ``group`` bins."""

    width: int
    height: int
    plot_x: int  # left edge of the cells
    plot_y: int  # top edge of the first row
    plot_w: int
    rows: int
    cols: int
    group: int
    start_s: float
    column_s: float  # seconds per column
    end_s: float
    moves_y: int | None = None  # top edge of the move-ratings strip, when there is one

    def cell_box(self, row: int, col: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of a cell, end-exclusive."""
        x0 = self.plot_x + col * self.plot_w // self.cols
        x1 = self.plot_x + (col + 1) * self.plot_w // self.cols
        y0 = self.plot_y + row * (HEATMAP_ROW_H + _ROW_GAP)
        return x0, y0, x1, y0 + HEATMAP_ROW_H

    def moves_box(self, col: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of a column's cell in the move-ratings strip, end-exclusive."""
        if self.moves_y is None:
            raise ValueError("this heatmap has no move ratings")
        x0, _, x1, _ = self.cell_box(0, col)
        return x0, self.moves_y, x1, self.moves_y + MOVES_ROW_H

    def x_of(self, t: float) -> float:
        """x (px) of time ``t`` (s) on the learner's video."""
        return self.plot_x + (t - self.start_s) / self.column_s * self.plot_w / self.cols

    @property
    def plot_bottom(self) -> int:
        return self.plot_y + self.rows * (HEATMAP_ROW_H + _ROW_GAP) - _ROW_GAP


def _check_heat(heat: PartTimeErrors) -> np.ndarray:
    if not isinstance(heat, PartTimeErrors):
        raise ValueError(f"heat must be a PartTimeErrors, got {type(heat).__name__}")
    errors = np.asarray(heat.errors_deg, dtype=np.float64)
    unknown = [p for p in heat.parts if p not in BODY_PARTS]
    if unknown or not heat.parts:
        raise ValueError(f"heat.parts must be body parts from {BODY_PARTS}, got {heat.parts}")
    if (
        errors.ndim != 2
        or errors.shape[0] != len(heat.parts)
        or not 1 <= errors.shape[1] <= MAX_BINS
    ):
        raise ValueError(f"heat.errors_deg must have shape ({len(heat.parts)}, 1..{MAX_BINS}), got {errors.shape}")  # fmt: skip
    if np.isinf(errors).any() or (errors[np.isfinite(errors)] < 0).any():
        raise ValueError("heat.errors_deg must be >= 0 degrees or NaN (unseen)")
    starts = np.asarray(heat.starts_s, dtype=np.float64)
    if starts.shape != (errors.shape[1],) or not np.isfinite(starts).all():
        raise ValueError(f"heat.starts_s must be {errors.shape[1]} finite times")
    if not (isinstance(heat.bin_s, numbers.Real) and 0 < heat.bin_s <= MAX_BIN_S):
        raise ValueError(f"heat.bin_s must be within (0, {MAX_BIN_S}] seconds, got {heat.bin_s}")
    if (np.abs(starts) > MAX_TIME_S).any():
        raise ValueError(f"heat.starts_s must be within ±{MAX_TIME_S:g} s")
    if heat.scores is None:
        return np.asarray(scores_from_errors(errors))
    scores = np.asarray(heat.scores, dtype=np.float64)
    if scores.shape != errors.shape:
        raise ValueError(f"heat.scores must have the shape of heat.errors_deg, {errors.shape}")
    finite = scores[~np.isnan(scores)]
    if not np.isfinite(finite).all() or (finite < 0).any() or (finite > 100).any():
        raise ValueError("heat.scores must be within 0..100 or NaN (unseen)")
    if heat.ratings is not None and (
        len(heat.ratings) != errors.shape[1]
        or any(r is not None and r not in RATING_NAMES for r in heat.ratings)
    ):
        raise ValueError(f"heat.ratings must be {errors.shape[1]} of {RATING_NAMES} or None")
    return scores


def heatmap_layout(heat: PartTimeErrors, *, title: str | None = None) -> HeatmapLayout:
    """Where ``heatmap_png`` puts each cell and time; also maps a tap on the image to a time."""
    errors = _check_heat(heat)
    bins = errors.shape[1]
    labels = [_part_label(p) for p in heat.parts] + ([_moves_label()] if heat.ratings else [])
    label_w = max(load_font(22).getlength(label) for label in labels)
    plot_x = _MARGIN + math.ceil(label_w) + 12
    plot_max = HEATMAP_MAX_WIDTH - plot_x - _MARGIN
    group = math.ceil(bins * HEATMAP_MIN_CELL_W / plot_max)
    cols = math.ceil(bins / group)
    plot_w = min(cols * HEATMAP_MAX_CELL_W, plot_max)
    legend_w = _legend_width()
    width = min(HEATMAP_MAX_WIDTH, max(plot_x + plot_w, legend_w + _MARGIN) + _MARGIN)
    top = _MARGIN + (40 if title else 0)
    moves_y = top if heat.ratings else None
    plot_y = top + (MOVES_ROW_H + 8 if heat.ratings else 0)
    rows = len(heat.parts)
    # rows, then ticks and their labels (~34 px), then the legend (~60 px)
    height = plot_y + rows * (HEATMAP_ROW_H + _ROW_GAP) - _ROW_GAP + 34 + 60 + _MARGIN
    start = float(heat.starts_s[0])
    return HeatmapLayout(width, height, plot_x, plot_y, plot_w, rows, cols, group,
                         start, group * heat.bin_s, start + bins * heat.bin_s, moves_y)  # fmt: skip


def _moves_label() -> str:
    return bilingual("moves", "동작")


def _part_label(part: str) -> str:
    en, obj, _ = PART_NAMES[part]
    return bilingual(en, obj[:-1])  # drop the object particle: 왼팔을 → 왼팔


def _legend_labels() -> tuple[str, str, str]:
    return (bilingual("needs work", "연습 필요"), bilingual("great", "훌륭해요"),
            bilingual("not seen", "안 보임"))  # fmt: skip


_LEGEND_BAR_W = 240


def _legend_width() -> int:
    f = load_font(18)
    bad, good, unseen = _legend_labels()
    return int(f.getlength(bad) + f.getlength(good) + f.getlength(unseen)) + _LEGEND_BAR_W + 90


def _cell_pixels(scores: np.ndarray, lay: HeatmapLayout) -> np.ndarray:
    """RGB array of the cell area (rows and gaps), one colour per cell, unseen cells hatched."""
    bins = scores.shape[1]
    padded = np.full((scores.shape[0], lay.cols * lay.group), np.nan)
    padded[:, :bins] = scores
    grouped = padded.reshape(scores.shape[0], lay.cols, lay.group)
    seen = np.isfinite(grouped).any(axis=2)
    worst = np.where(
        seen, np.nanmin(np.where(np.isfinite(grouped), grouped, 101.0), axis=2), np.nan
    )
    colours = np.empty((lay.rows, lay.cols, 3), dtype=np.uint8)
    for (r, c), score in np.ndenumerate(worst):
        colours[r, c] = score_colour(score) if math.isfinite(score) else UNSEEN_COLOUR
    height = lay.plot_bottom - lay.plot_y
    xs = np.arange(lay.plot_w)
    # Column of each x from the boxes of cell_box, so the picture and the layout agree.
    edges = np.array([lay.cell_box(0, c)[0] - lay.plot_x for c in range(lay.cols + 1)])
    col_of_x = np.searchsorted(edges, xs, side="right") - 1
    ys = np.arange(height)
    row_of_y, in_row = (
        ys // (HEATMAP_ROW_H + _ROW_GAP),
        ys % (HEATMAP_ROW_H + _ROW_GAP) < HEATMAP_ROW_H,
    )
    out = colours[row_of_y[:, None], col_of_x[None, :]]
    unseen = ~seen[row_of_y[:, None], col_of_x[None, :]]
    hatch = unseen & (((xs[None, :] + ys[:, None]) % 8) < 2)
    out[hatch] = UNSEEN_HATCH
    if lay.plot_w / lay.cols >= 10:  # a white gutter between wide cells
        right_edge = np.isin(xs + 1, edges[1:])
        out[:, right_edge] = BACKGROUND
    out[~in_row] = BACKGROUND
    return np.ascontiguousarray(out)


def _draw_axis(draw: ImageDraw.ImageDraw, lay: HeatmapLayout) -> None:
    f = load_font(18)
    label_w = f.getlength("00:00") + 16
    px_per_s = lay.plot_w / lay.cols / lay.column_s
    step = next((s for s in _TICK_STEPS_S if s * px_per_s >= label_w), _TICK_STEPS_S[-1])
    y = lay.plot_bottom + 2
    t = math.ceil(lay.start_s / step - 1e-9) * step
    while t <= lay.end_s + 1e-9:
        x = round(lay.x_of(t))
        draw.line([(x, y), (x, y + 6)], fill=INK, width=1)
        text = _clock(t)
        half = f.getlength(text) / 2
        draw.text((min(max(x, half + 2), lay.width - half - 2), y + 8), text, font=f, fill=INK, anchor="ma")  # fmt: skip
        t += step


def _draw_legend(draw: ImageDraw.ImageDraw, image: Image.Image, lay: HeatmapLayout) -> None:
    f = load_font(18)
    bad, good, unseen = _legend_labels()
    y = lay.plot_bottom + 40
    x = _MARGIN
    draw.text((x, y + 9), bad, font=f, fill=INK, anchor="lm")
    x += int(f.getlength(bad)) + 8
    # The bar spans scores 30..100: flat red before 40, flat green after 90.
    scores = 30.0 + 70.0 * (np.arange(_LEGEND_BAR_W) + 0.5) / _LEGEND_BAR_W
    bar = np.array([score_colour(s) for s in scores], dtype=np.uint8)
    image.paste(Image.fromarray(np.repeat(bar[None], 18, axis=0)), (x, y))
    small = load_font(14)
    for s in (40, 65, 90):
        sx = x + round((s - 30.0) / 70.0 * _LEGEND_BAR_W)
        draw.line([(sx, y + 18), (sx, y + 22)], fill=INK, width=1)
        draw.text((sx, y + 23), str(s), font=small, fill=INK, anchor="ma")
    x += _LEGEND_BAR_W + 8
    draw.text((x, y + 9), good, font=f, fill=INK, anchor="lm")
    x += int(f.getlength(good)) + 28
    swatch = np.full((18, 28, 3), UNSEEN_COLOUR, dtype=np.uint8)
    sy, sx_ = np.mgrid[0:18, 0:28]
    swatch[((sx_ + sy) % 8) < 2] = UNSEEN_HATCH
    image.paste(Image.fromarray(swatch), (x, y))
    draw.text((x + 36, y + 9), unseen, font=f, fill=INK, anchor="lm")


def _draw_moves(
    draw: ImageDraw.ImageDraw, ratings: tuple[str | None, ...], lay: HeatmapLayout
) -> None:
    """The move-ratings strip: a pooled column shows its worst rating; letters where they fit."""
    assert lay.moves_y is not None
    order: dict[str, int] = {name: k for k, name in enumerate(RATING_NAMES)}
    f = load_font(16)
    for col in range(lay.cols):
        chunk = [r for r in ratings[col * lay.group : (col + 1) * lay.group] if r is not None]
        x0, y0, x1, y1 = lay.moves_box(col)
        if not chunk:
            draw.rectangle([x0, y0, x1 - 1, y1 - 1], fill=UNSEEN_COLOUR)
            continue
        worst = max(chunk, key=order.__getitem__)
        gutter = 1 if x1 - x0 >= 10 else 0
        draw.rectangle([x0, y0, x1 - 1 - gutter, y1 - 1], fill=RATING_COLOURS[worst])
        if x1 - x0 >= 16:
            draw.text(
                ((x0 + x1) // 2, (y0 + y1) // 2),
                RATING_LETTERS[worst],
                font=f,
                fill=INK,
                anchor="mm",
            )
    draw.text(
        (_MARGIN, lay.moves_y + MOVES_ROW_H // 2),
        _moves_label(),
        font=load_font(22),
        fill=INK,
        anchor="lm",
    )


def heatmap_png(heat: PartTimeErrors, *, title: str | None = None) -> bytes:
    """PNG of the body part × time heatmap: each cell coloured by the part's score in that bin,
    under a strip of the moves' ratings when the bins carry them."""
    if title is not None and (not isinstance(title, str) or len(title) > MAX_TITLE_CHARS):
        raise ValueError(f"title must be a string of at most {MAX_TITLE_CHARS} characters")
    scores = _check_heat(heat)
    lay = heatmap_layout(heat, title=title)
    image = Image.new("RGB", (lay.width, lay.height), BACKGROUND)
    image.paste(Image.fromarray(_cell_pixels(scores, lay)), (lay.plot_x, lay.plot_y))
    draw = ImageDraw.Draw(image)
    if heat.ratings:
        _draw_moves(draw, heat.ratings, lay)
    if title:
        f = text_font(title, 26)
        draw.text((_MARGIN, _MARGIN), fit(title, f, lay.width - 2 * _MARGIN), font=f, fill=INK)
    for r, part in enumerate(heat.parts):
        y = lay.plot_y + r * (HEATMAP_ROW_H + _ROW_GAP) + HEATMAP_ROW_H // 2
        draw.text((_MARGIN, y), _part_label(part), font=load_font(22), fill=INK, anchor="lm")
    _draw_axis(draw, lay)
    _draw_legend(draw, image, lay)
    seconds = lay.end_s - lay.start_s
    description = (f"Dance Lab heatmap: {len(heat.parts)} body parts x {scores.shape[1]} bins of "
                   f"{heat.bin_s:g} s ({_clock(seconds)}); green = good, red = needs work, grey = not seen"
                   + ("; top strip: move ratings P perfect, G good, O ok, X miss" if heat.ratings else ""))  # fmt: skip
    return png_bytes(image, description)


__all__ = [
    "HEATMAP_MAX_WIDTH",
    "RATING_COLOURS",
    "SCORE_RAMP",
    "HeatmapLayout",
    "heatmap_layout",
    "heatmap_png",
    "score_colour",
]
