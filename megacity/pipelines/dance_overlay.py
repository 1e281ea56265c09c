"""The Dance Lab overlay: the learner's frame with their skeleton and the reference pose, as PNG bytes.

The reference is normalised as scoring does (hips at the origin, torso length 1) and put
on the learner's hips at the learner's torso length, so both skeletons share a body and
only the pose differs; the worst part is ringed, with an arrow from yours to the reference's.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from PIL import Image, ImageDraw

from megacity.pipelines.dance_drawing import RGB, Font, bilingual, fit, png_bytes, text_font
from megacity.scoring import pose as P
from megacity.scoring.motion import HIP_MID, SHOULDER_MID, normalize_frames
from megacity.scoring.pose import BODY_PARTS, MIRROR_INDEX, NUM_LANDMARKS, PART_LANDMARKS

OVERLAY_MAX_SIDE = 720  # px: long side of the overlay's frame
MIN_VISIBILITY = 0.3  # landmarks less visible than this are not drawn
YOU_COLOUR: RGB = (0, 190, 255)
REFERENCE_COLOUR: RGB = (255, 170, 0)
HIGHLIGHT_COLOUR: RGB = (255, 255, 255)
OUTLINE: RGB = (0, 0, 0)
MAX_CAPTION_CHARS = 300
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
    fonts = [text_font(text, size) for text, _ in entries]
    sample = 2 * size
    w = max(f.getlength(text) for f, (text, _) in zip(fonts, entries, strict=True)) + sample + 24
    draw.rectangle([(6, 6), (6 + w, 6 + 12 + len(entries) * (size + 8))], fill=(24, 24, 24))
    for k, ((text, colour), f) in enumerate(zip(entries, fonts, strict=True)):
        y = 12 + k * (size + 8) + (size + 8) // 2
        draw.line([(14, y), (14 + sample, y)], fill=colour, width=max(3, size // 4))
        draw.text((20 + sample, y), text, font=f, fill=(255, 255, 255), anchor="lm")


def _caption_lines(caption: str, font: Font, width: float, max_lines: int = 3) -> list[str]:
    lines: list[str] = []
    for word in caption.split():
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], " ".join(lines[max_lines - 1 :])]
    return [fit(line, font, width) for line in lines]


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
    aspect = _check_options(part, caption, aspect_ratio, image_rgb.shape[:2])
    image = _downscaled(Image.fromarray(image_rgb, "RGB"))
    w, h = image.size
    font_size = max(14, round(w / 30))
    lines = _caption_lines(caption, text_font(caption, font_size), w - 24) if caption else []
    band = len(lines) * (font_size + 8) + 16 if lines else 0
    canvas = Image.new("RGB", (w, h + band), (24, 24, 24))
    canvas.paste(image, (0, 0))
    draw = ImageDraw.Draw(canvas)
    _draw_people(draw, (w, h), you_kp, ref_kp, aspect=aspect, mirror=mirror, part=part)
    for k, line in enumerate(lines):
        f = text_font(line, font_size)
        draw.text((12, h + 8 + k * (font_size + 8)), line, font=f, fill=(255, 255, 255))
    description = "Dance Lab overlay: your pose (blue) and the reference pose (amber) on your frame"
    return png_bytes(canvas, f"{description}. {caption}" if caption else description)


def _check_options(
    part: str | None, caption: str | None, aspect_ratio: float | None, frame_hw: tuple[int, ...]
) -> float:
    """The reference's aspect ratio (the frame's when not given), once the options are checked."""
    if part is not None and part not in BODY_PARTS:
        raise ValueError(f"part must be one of {BODY_PARTS} or None, got {part!r}")
    if caption is not None and (not isinstance(caption, str) or len(caption) > MAX_CAPTION_CHARS):
        raise ValueError(f"caption must be a string of at most {MAX_CAPTION_CHARS} characters")
    h, w = frame_hw
    given = w / h if aspect_ratio is None else aspect_ratio
    aspect = float(given) if isinstance(given, numbers.Real) else math.nan
    if not (math.isfinite(aspect) and 0.1 <= aspect <= 10):
        raise ValueError(f"aspect_ratio must be within 0.1..10, got {aspect_ratio}")
    return aspect


def _downscaled(image: Image.Image) -> Image.Image:
    """The frame with its long side at most OVERLAY_MAX_SIDE px (never upscaled)."""
    w, h = image.size
    scale = min(1.0, OVERLAY_MAX_SIDE / max(w, h))
    if scale < 1.0:
        image = image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR)  # fmt: skip
    return image


def _draw_people(
    draw: ImageDraw.ImageDraw,
    size: tuple[int, int],
    you_kp: np.ndarray,
    ref_kp: np.ndarray,
    *,
    aspect: float,
    mirror: bool,
    part: str | None,
) -> None:
    """Your skeleton, the reference's on your body, the part's ring and the legend; nothing
    when no landmark of yours is seen."""
    w, h = size
    line_w = max(3, round(max(w, h) / 100))
    you, you_seen = _with_centres(np.nan_to_num(you_kp[:, :2]) * np.array([w, h]), _seen(you_kp))
    if not you_seen.any():
        return
    placed = _reference_on_learner(you, you_seen, ref_kp, aspect, mirror)
    end = _PART_END.get(part or "")
    if end is not None:
        you_end = you[end] if you_seen[end] else None
        ref_end = placed[0][end] if placed is not None and placed[1][end] else None
        _draw_highlight(draw, you_end, ref_end, line_w)
    _draw_skeleton(draw, you, you_seen, YOU_COLOUR, line_w, part, outline=True)
    entries: list[tuple[str, RGB]] = [(bilingual("You", "나"), YOU_COLOUR)]
    if placed is not None:
        _draw_skeleton(draw, *placed, REFERENCE_COLOUR, max(2, line_w // 2), part, outline=False)
        entries.append((bilingual("Reference", "레퍼런스"), REFERENCE_COLOUR))
    _draw_legend_box(draw, entries, max(12, round(max(w, h) / 45)))


__all__ = ["OVERLAY_MAX_SIDE", "REFERENCE_COLOUR", "SKELETON", "YOU_COLOUR", "overlay_png"]
