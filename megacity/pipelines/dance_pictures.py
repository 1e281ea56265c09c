"""Dance Lab pictures: the body part × time heatmap and the worst-moment overlay, as PNG bytes.

Arrays in, PNG bytes out (Pillow). Text uses Pillow's built-in scalable font, so no font
file is needed; Korean words are added only where a Hangul font is installed
(``has_hangul_font``). The same input on the same machine gives the same bytes.
"""

from __future__ import annotations

import functools
import io
import math
import numbers
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

from megacity.scoring import pose as P
from megacity.scoring.dance import PartTimeErrors, score_from_error
from megacity.scoring.motion import HIP_MID, SHOULDER_MID, normalize_frames
from megacity.scoring.pose import (
    BODY_PARTS,
    MIRROR_INDEX,
    NUM_LANDMARKS,
    PART_LANDMARKS,
    PART_NAMES,
)

_Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
RGB = tuple[int, int, int]

# Score → colour: ColorBrewer RdYlGn stops, red at 40 and below, green at 90 and above.
SCORE_RAMP: tuple[tuple[float, RGB], ...] = (
    (40.0, (215, 48, 39)), (52.5, (252, 141, 89)), (65.0, (254, 224, 139)),
    (77.5, (145, 207, 96)), (90.0, (26, 152, 80)),
)  # fmt: skip
UNSEEN_COLOUR: RGB = (204, 204, 204)
UNSEEN_HATCH: RGB = (150, 150, 150)
BACKGROUND: RGB = (255, 255, 255)
INK: RGB = (33, 33, 33)

HEATMAP_MAX_WIDTH = 1200  # px: a phone screen's width at 2-3× density
HEATMAP_MAX_CELL_W = 40
HEATMAP_MIN_CELL_W = 2  # below this, neighbouring bins are pooled (worst error wins)
HEATMAP_ROW_H = 44
MAX_BINS = 20_000
MAX_BIN_S = 3600.0
MAX_TIME_S = 86_400.0
_MARGIN = 16
_ROW_GAP = 2
_TICK_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600)

OVERLAY_MAX_SIDE = 720  # px: long side of the overlay's frame
MIN_VISIBILITY = 0.3  # landmarks less visible than this are not drawn
YOU_COLOUR: RGB = (0, 190, 255)
REFERENCE_COLOUR: RGB = (255, 170, 0)
HIGHLIGHT_COLOUR: RGB = (255, 255, 255)
OUTLINE: RGB = (0, 0, 0)
MAX_CAPTION_CHARS = 300
MAX_TITLE_CHARS = 120
_MAX_COORD = 100.0  # image-normalised: landmarks a little off-frame are fine, 1e6 is a bug

# BlazePose body connections (no face mesh); the head is a circle from nose and ears.
SKELETON: tuple[tuple[int, int], ...] = (
    (P.LEFT_SHOULDER, P.RIGHT_SHOULDER), (P.LEFT_HIP, P.RIGHT_HIP),
    (P.LEFT_SHOULDER, P.LEFT_HIP), (P.RIGHT_SHOULDER, P.RIGHT_HIP),
    (P.LEFT_SHOULDER, P.LEFT_ELBOW), (P.LEFT_ELBOW, P.LEFT_WRIST),
    (P.LEFT_WRIST, P.LEFT_PINKY), (P.LEFT_WRIST, P.LEFT_INDEX), (P.LEFT_WRIST, P.LEFT_THUMB),
    (P.LEFT_PINKY, P.LEFT_INDEX),
    (P.RIGHT_SHOULDER, P.RIGHT_ELBOW), (P.RIGHT_ELBOW, P.RIGHT_WRIST),
    (P.RIGHT_WRIST, P.RIGHT_PINKY), (P.RIGHT_WRIST, P.RIGHT_INDEX), (P.RIGHT_WRIST, P.RIGHT_THUMB),
    (P.RIGHT_PINKY, P.RIGHT_INDEX),
    (P.LEFT_HIP, P.LEFT_KNEE), (P.LEFT_KNEE, P.LEFT_ANKLE), (P.LEFT_ANKLE, P.LEFT_HEEL),
    (P.LEFT_HEEL, P.LEFT_FOOT_INDEX), (P.LEFT_ANKLE, P.LEFT_FOOT_INDEX),
    (P.RIGHT_HIP, P.RIGHT_KNEE), (P.RIGHT_KNEE, P.RIGHT_ANKLE), (P.RIGHT_ANKLE, P.RIGHT_HEEL),
    (P.RIGHT_HEEL, P.RIGHT_FOOT_INDEX), (P.RIGHT_ANKLE, P.RIGHT_FOOT_INDEX),
    (SHOULDER_MID, P.NOSE),
)  # fmt: skip
_JOINTS = tuple(sorted({i for c in SKELETON for i in c} - {SHOULDER_MID, P.NOSE}))
# Where the highlight ring of a part goes: the end that moves most.
_PART_END = {"head": P.NOSE, "torso": SHOULDER_MID, "left_arm": P.LEFT_WRIST,
             "right_arm": P.RIGHT_WRIST, "left_leg": P.LEFT_ANKLE, "right_leg": P.RIGHT_ANKLE}  # fmt: skip

# Well-known places of fonts with Hangul (Debian/Ubuntu, Fedora, Arch, macOS, Windows).
HANGUL_FONT_PATHS: tuple[str, ...] = (
    "/usr/share/fonts/truetype/nanum/NanumGothic.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/unfonts-core/UnDotum.ttf",
    "/System/Library/Fonts/AppleSDGothicNeo.ttc",
    "C:/Windows/Fonts/malgun.ttf",
)


@functools.cache
def _hangul_font_path() -> str | None:
    for path in HANGUL_FONT_PATHS:
        if os.path.isfile(path):
            try:
                ImageFont.truetype(path, 12)
            except OSError:
                continue
            return path
    return None


def has_hangul_font() -> bool:
    """Whether Korean text can be drawn (a Hangul font is installed); English is always drawn."""
    return _hangul_font_path() is not None


@functools.cache
def _font(size: int, hangul: bool = False) -> _Font:
    path = _hangul_font_path() if hangul else None
    return ImageFont.truetype(path, size) if path else ImageFont.load_default(size=size)


def _has_hangul(text: str) -> bool:
    return any("\u1100" <= ch <= "\u11ff" or "\u3130" <= ch <= "\ud7af" for ch in text)


def _text_font(text: str, size: int) -> _Font:
    return _font(size, hangul=_has_hangul(text))


def _bilingual(en: str, ko: str) -> str:
    return f"{en}  {ko}" if has_hangul_font() else en


def _fit(text: str, font: _Font, width: float) -> str:
    """``text`` cut with "..." to fit ``width`` px."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "...") > width:
        text = text[:-1]
    return text.rstrip() + "..."


def _png(image: Image.Image, description: str) -> bytes:
    info = PngInfo()
    info.add_text("Software", "megacity")
    info.add_text("Description", description)
    buf = io.BytesIO()
    image.save(buf, format="PNG", pnginfo=info, compress_level=6)
    return buf.getvalue()


def score_colour(score: float) -> RGB:
    """Heatmap colour of a score 0..100: red at 40 and below, yellow at 65, green at 90+."""
    xs = [s for s, _ in SCORE_RAMP]
    r, g, b = (round(float(np.interp(score, xs, [c[k] for _, c in SCORE_RAMP]))) for k in range(3))
    return r, g, b


def _clock(t: float) -> str:
    s = max(0, round(t))
    return f"{s // 60}:{s % 60:02d}"


# --- heatmap --------------------------------------------------------------------------


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

    def cell_box(self, row: int, col: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of a cell, end-exclusive."""
        x0 = self.plot_x + col * self.plot_w // self.cols
        x1 = self.plot_x + (col + 1) * self.plot_w // self.cols
        y0 = self.plot_y + row * (HEATMAP_ROW_H + _ROW_GAP)
        return x0, y0, x1, y0 + HEATMAP_ROW_H

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
    return errors


def heatmap_layout(heat: PartTimeErrors, *, title: str | None = None) -> HeatmapLayout:
    """Where ``heatmap_png`` puts each cell and time; also maps a tap on the image to a time."""
    errors = _check_heat(heat)
    bins = errors.shape[1]
    label_w = max(_font(22).getlength(_part_label(p)) for p in heat.parts)
    plot_x = _MARGIN + math.ceil(label_w) + 12
    plot_max = HEATMAP_MAX_WIDTH - plot_x - _MARGIN
    group = math.ceil(bins * HEATMAP_MIN_CELL_W / plot_max)
    cols = math.ceil(bins / group)
    plot_w = min(cols * HEATMAP_MAX_CELL_W, plot_max)
    legend_w = _legend_width()
    width = min(HEATMAP_MAX_WIDTH, max(plot_x + plot_w, legend_w + _MARGIN) + _MARGIN)
    plot_y = _MARGIN + (40 if title else 0)
    rows = len(heat.parts)
    # rows, then ticks and their labels (~34 px), then the legend (~60 px)
    height = plot_y + rows * (HEATMAP_ROW_H + _ROW_GAP) - _ROW_GAP + 34 + 60 + _MARGIN
    start = float(heat.starts_s[0])
    return HeatmapLayout(width, height, plot_x, plot_y, plot_w, rows, cols, group,
                         start, group * heat.bin_s, start + bins * heat.bin_s)  # fmt: skip


def _part_label(part: str) -> str:
    en, obj, _ = PART_NAMES[part]
    return _bilingual(en, obj[:-1])  # drop the object particle: 왼팔을 → 왼팔


def _legend_labels() -> tuple[str, str, str]:
    return (_bilingual("needs work", "연습 필요"), _bilingual("great", "훌륭해요"),
            _bilingual("not seen", "안 보임"))  # fmt: skip


_LEGEND_BAR_W = 240


def _legend_width() -> int:
    f = _font(18)
    bad, good, unseen = _legend_labels()
    return int(f.getlength(bad) + f.getlength(good) + f.getlength(unseen)) + _LEGEND_BAR_W + 90


def _cell_pixels(errors: np.ndarray, lay: HeatmapLayout) -> np.ndarray:
    """RGB array of the cell area (rows and gaps), one colour per cell, unseen cells hatched."""
    bins = errors.shape[1]
    padded = np.full((errors.shape[0], lay.cols * lay.group), np.nan)
    padded[:, :bins] = errors
    grouped = padded.reshape(errors.shape[0], lay.cols, lay.group)
    seen = np.isfinite(grouped).any(axis=2)
    worst = np.where(seen, np.nanmax(np.where(np.isfinite(grouped), grouped, -1.0), axis=2), np.nan)
    colours = np.empty((lay.rows, lay.cols, 3), dtype=np.uint8)
    for (r, c), deg in np.ndenumerate(worst):
        colours[r, c] = score_colour(score_from_error(deg)) if math.isfinite(deg) else UNSEEN_COLOUR
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
    f = _font(18)
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
    f = _font(18)
    bad, good, unseen = _legend_labels()
    y = lay.plot_bottom + 40
    x = _MARGIN
    draw.text((x, y + 9), bad, font=f, fill=INK, anchor="lm")
    x += int(f.getlength(bad)) + 8
    # The bar spans scores 30..100: flat red before 40, flat green after 90.
    scores = 30.0 + 70.0 * (np.arange(_LEGEND_BAR_W) + 0.5) / _LEGEND_BAR_W
    bar = np.array([score_colour(s) for s in scores], dtype=np.uint8)
    image.paste(Image.fromarray(np.repeat(bar[None], 18, axis=0)), (x, y))
    small = _font(14)
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


def heatmap_png(heat: PartTimeErrors, *, title: str | None = None) -> bytes:
    """PNG of the body part × time heatmap: each cell coloured by the part's score in that bin."""
    if title is not None and (not isinstance(title, str) or len(title) > MAX_TITLE_CHARS):
        raise ValueError(f"title must be a string of at most {MAX_TITLE_CHARS} characters")
    errors = _check_heat(heat)
    lay = heatmap_layout(heat, title=title)
    image = Image.new("RGB", (lay.width, lay.height), BACKGROUND)
    image.paste(Image.fromarray(_cell_pixels(errors, lay)), (lay.plot_x, lay.plot_y))
    draw = ImageDraw.Draw(image)
    if title:
        f = _text_font(title, 26)
        draw.text((_MARGIN, _MARGIN), _fit(title, f, lay.width - 2 * _MARGIN), font=f, fill=INK)
    for r, part in enumerate(heat.parts):
        y = lay.plot_y + r * (HEATMAP_ROW_H + _ROW_GAP) + HEATMAP_ROW_H // 2
        draw.text((_MARGIN, y), _part_label(part), font=_font(22), fill=INK, anchor="lm")
    _draw_axis(draw, lay)
    _draw_legend(draw, image, lay)
    seconds = lay.end_s - lay.start_s
    description = (f"Dance Lab heatmap: {len(heat.parts)} body parts x {errors.shape[1]} bins of "
                   f"{heat.bin_s:g} s ({_clock(seconds)}); green = good, red = needs work, grey = not seen")  # fmt: skip
    return _png(image, description)


# --- overlay --------------------------------------------------------------------------


def _check_landmarks(name: str, value: np.ndarray) -> np.ndarray:
    a = np.asarray(value)
    if a.shape != (NUM_LANDMARKS, 4):
        raise ValueError(f"{name} must have shape ({NUM_LANDMARKS}, 4): x, y, z, visibility; got {a.shape}")  # fmt: skip
    if a.dtype.kind not in "fiu":
        raise ValueError(f"{name} must hold real numbers, got dtype {a.dtype}")
    a = a.astype(np.float64)
    if np.isinf(a).any():
        raise ValueError(f"{name} contains infinite values; use NaN for missing landmarks")
    xy = a[:, :2]
    if (np.abs(xy[np.isfinite(xy)]) > _MAX_COORD).any():
        raise ValueError(f"{name} x, y must be image-normalised (0..1, at most ±{_MAX_COORD:g})")
    vis = a[:, 3][np.isfinite(a[:, 3])]
    if ((vis < 0) | (vis > 1)).any():
        raise ValueError(f"{name} visibility must be within 0..1")
    return a


def _check_frame(frame: np.ndarray) -> np.ndarray:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
        raise ValueError(f"frame must be a uint8 numpy array, got {getattr(frame, 'dtype', type(frame).__name__)}")  # fmt: skip
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame must be RGB with shape (height, width, 3), got {frame.shape}")
    if not (16 <= frame.shape[0] <= 8192 and 16 <= frame.shape[1] <= 8192):
        raise ValueError(f"frame must be 16..8192 px on each side, got {frame.shape[1]}x{frame.shape[0]}")  # fmt: skip
    return frame


def _seen(kp: np.ndarray) -> np.ndarray:
    return np.isfinite(kp[:, :2]).all(axis=1) & (np.nan_to_num(kp[:, 3], nan=0.0) >= MIN_VISIBILITY)


def _with_centres(xy: np.ndarray, seen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(35, 2) points and seen flags: landmarks, then shoulder and hip centres (as scoring does)."""
    pts, ok = [xy], [seen]
    for a, b in ((P.LEFT_SHOULDER, P.RIGHT_SHOULDER), (P.LEFT_HIP, P.RIGHT_HIP)):
        both = seen[a] and seen[b]
        pts.append(((xy[a] + xy[b]) / 2 if both else xy[a] if seen[a] else xy[b])[None])
        ok.append(np.array([seen[a] or seen[b]]))
    return np.concatenate(pts), np.concatenate(ok)


def _reference_on_learner(
    learner: np.ndarray,
    learner_seen: np.ndarray,
    reference: np.ndarray,
    aspect: float,
    mirror: bool,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Reference (35, 2) in the learner's pixels: normalised like scoring, then at the learner's hips and torso length."""
    if not (learner_seen[SHOULDER_MID] and learner_seen[HIP_MID]):
        return None
    hip = learner[HIP_MID]
    torso = float(np.linalg.norm(learner[SHOULDER_MID] - hip))
    seen = _seen(reference)
    xy = np.nan_to_num(reference[:, :2]) * np.array([aspect, 1.0])
    points, present = normalize_frames(xy[None], seen[None].astype(np.float64))
    if not present[0] or torso < 1.0:
        return None
    pts = points[0]
    _, ref_seen = _with_centres(xy, seen)
    if mirror:
        order = [*MIRROR_INDEX, SHOULDER_MID, HIP_MID]
        pts, ref_seen = pts[order] * np.array([-1.0, 1.0]), ref_seen[order]
    return hip + pts * torso, ref_seen


def _draw_skeleton(
    draw: ImageDraw.ImageDraw, pts: np.ndarray, seen: np.ndarray, colour: RGB, width: int,
    part: str | None, outline: bool,
) -> None:  # fmt: skip
    marked = set(PART_LANDMARKS[part]) if part else set()
    lines = [((a, b), width * 2 if {a, b} <= marked else width)
             for a, b in SKELETON if seen[a] and seen[b]]  # fmt: skip
    for fill, extra in ((OUTLINE, 2), (colour, 0))[0 if outline else 1 :]:
        for (a, b), w in lines:  # all outlines first, so that none cuts a line
            draw.line([tuple(pts[a]), tuple(pts[b])], fill=fill, width=w + extra)
    ears = [pts[i] for i in (P.LEFT_EAR, P.RIGHT_EAR) if seen[i]]
    if seen[P.NOSE] or ears:
        centre = (
            np.mean(ears, axis=0) if len(ears) == 2 else pts[P.NOSE] if seen[P.NOSE] else ears[0]
        )
        ear_gap = float(np.linalg.norm(ears[0] - ears[-1])) if ears else 0.0
        torso = float(np.linalg.norm(pts[SHOULDER_MID] - pts[HIP_MID])) if seen[HIP_MID] else 0.0
        radius = max(0.75 * ear_gap, 0.15 * torso, 2.0 * width)
        w = width * 2 if part == "head" else width
        box = [tuple(centre - radius), tuple(centre + radius)]
        if outline:
            draw.ellipse(box, outline=OUTLINE, width=w + 2)
        draw.ellipse(box, outline=colour, width=w)
    r = width * 0.9
    for i in _JOINTS:
        if seen[i]:
            draw.ellipse([tuple(pts[i] - r), tuple(pts[i] + r)], fill=colour, outline=OUTLINE)


def _draw_highlight(draw: ImageDraw.ImageDraw, you: np.ndarray | None, ref: np.ndarray | None, width: int) -> None:  # fmt: skip
    """A ring around the part's end on both skeletons, and an arrow from yours to the reference's."""
    ends = [p for p in (you, ref) if p is not None]
    if not ends:
        return
    centre = np.mean(ends, axis=0)
    gap = float(np.linalg.norm(ends[0] - ends[-1]))
    radius = gap / 2 + 4 * width
    box = [tuple(centre - radius), tuple(centre + radius)]
    draw.ellipse(box, outline=OUTLINE, width=width + 2)
    draw.ellipse(box, outline=HIGHLIGHT_COLOUR, width=max(2, width // 2))
    if you is not None and ref is not None and gap > 6 * width:
        u = (ref - you) / gap
        tip = ref - u * 2 * width  # stop short of the reference joint
        head = 3 * width
        wings = [tuple(tip - u * head + s * np.array([-u[1], u[0]]) * head * 0.6) for s in (1, -1)]
        draw.line([tuple(you + u * 2 * width), tuple(tip - u * head)], fill=HIGHLIGHT_COLOUR, width=max(2, width // 2))  # fmt: skip
        draw.polygon([tuple(tip), *wings], fill=HIGHLIGHT_COLOUR, outline=OUTLINE)


def _draw_legend_box(draw: ImageDraw.ImageDraw, entries: list[tuple[str, RGB]], size: int) -> None:
    fonts = [_text_font(text, size) for text, _ in entries]
    sample = 2 * size
    w = max(f.getlength(text) for f, (text, _) in zip(fonts, entries, strict=True)) + sample + 24
    draw.rectangle([(6, 6), (6 + w, 6 + 12 + len(entries) * (size + 8))], fill=(24, 24, 24))
    for k, ((text, colour), f) in enumerate(zip(entries, fonts, strict=True)):
        y = 12 + k * (size + 8) + (size + 8) // 2
        draw.line([(14, y), (14 + sample, y)], fill=colour, width=max(3, size // 4))
        draw.text((20 + sample, y), text, font=f, fill=(255, 255, 255), anchor="lm")


def _caption_lines(caption: str, font: _Font, width: float, max_lines: int = 3) -> list[str]:
    lines: list[str] = []
    for word in caption.split():
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], " ".join(lines[max_lines - 1 :])]
    return [_fit(line, font, width) for line in lines]


def overlay_png(
    frame: np.ndarray,
    attempt: np.ndarray,
    reference: np.ndarray,
    *,
    part: str | None = None,
    caption: str | None = None,
    aspect_ratio: float | None = None,
    mirror: bool = False,
) -> bytes:
    """PNG of the learner's frame with their skeleton and the reference pose placed on their body.

    ``attempt`` and ``reference`` are (33, 4) landmarks (x, y, z, visibility; x, y 0..1 of
    their own video). ``aspect_ratio`` is the *reference* video's width / height
    (``reference``'s ``PoseSequence.aspect_ratio``; default: the frame's): the learner's
    own comes from the frame's shape. ``mirror`` flips the reference as scoring did
    (``DanceResult.mirrored``); leave it off if the caller mirrored the landmarks already.
    """
    image_rgb = _check_frame(frame)
    you_kp = _check_landmarks("attempt", attempt)
    ref_kp = _check_landmarks("reference", reference)
    if part is not None and part not in BODY_PARTS:
        raise ValueError(f"part must be one of {BODY_PARTS} or None, got {part!r}")
    if caption is not None and (not isinstance(caption, str) or len(caption) > MAX_CAPTION_CHARS):
        raise ValueError(f"caption must be a string of at most {MAX_CAPTION_CHARS} characters")
    h, w = image_rgb.shape[:2]
    given = w / h if aspect_ratio is None else aspect_ratio
    aspect = float(given) if isinstance(given, numbers.Real) else math.nan
    if not (math.isfinite(aspect) and 0.1 <= aspect <= 10):
        raise ValueError(f"aspect_ratio must be within 0.1..10, got {aspect_ratio}")
    image = Image.fromarray(image_rgb, "RGB")
    scale = min(1.0, OVERLAY_MAX_SIDE / max(w, h))
    if scale < 1.0:
        image = image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR)  # fmt: skip
    w, h = image.size
    line_w = max(3, round(max(w, h) / 100))
    font_size = max(14, round(w / 30))
    lines = _caption_lines(caption, _text_font(caption, font_size), w - 24) if caption else []
    band = len(lines) * (font_size + 8) + 16 if lines else 0
    canvas = Image.new("RGB", (w, h + band), (24, 24, 24))
    canvas.paste(image, (0, 0))
    draw = ImageDraw.Draw(canvas)

    you_seen = _seen(you_kp)
    you, you_seen = _with_centres(np.nan_to_num(you_kp[:, :2]) * np.array([w, h]), you_seen)
    placed = _reference_on_learner(you, you_seen, ref_kp, aspect, mirror)
    entries: list[tuple[str, RGB]] = []
    if you_seen.any():
        end = _PART_END.get(part or "")
        if end is not None:
            you_end = you[end] if you_seen[end] else None
            ref_end = placed[0][end] if placed is not None and placed[1][end] else None
            _draw_highlight(draw, you_end, ref_end, line_w)
        _draw_skeleton(draw, you, you_seen, YOU_COLOUR, line_w, part, outline=True)
        entries.append((_bilingual("You", "나"), YOU_COLOUR))
        if placed is not None:
            _draw_skeleton(
                draw, *placed, REFERENCE_COLOUR, max(2, line_w // 2), part, outline=False
            )
            entries.append((_bilingual("Reference", "레퍼런스"), REFERENCE_COLOUR))
        _draw_legend_box(draw, entries, max(12, round(max(w, h) / 45)))
    for k, line in enumerate(lines):
        f = _text_font(line, font_size)
        draw.text((12, h + 8 + k * (font_size + 8)), line, font=f, fill=(255, 255, 255))
    description = "Dance Lab overlay: your pose (blue) and the reference pose (amber) on your frame"
    return _png(canvas, f"{description}. {caption}" if caption else description)
