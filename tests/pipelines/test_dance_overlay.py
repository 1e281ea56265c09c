"""Dance Lab overlay: skeletons land where they must."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

from megacity.pipelines.dance_drawing import has_hangul_font
from megacity.pipelines.dance_overlay import (
    OVERLAY_MAX_SIDE,
    REFERENCE_COLOUR,
    YOU_COLOUR,
    overlay_png,
)
from megacity.scoring import pose as P
from megacity.scoring.pose import MIRROR_INDEX
from tests.pipelines.pictures import decode, pixel

_BODY = {  # (x, y) in body units (~ the dancer's height), dancer's left = +x, y down
    P.NOSE: (0.0, 0.06), P.LEFT_EAR: (0.04, 0.05), P.RIGHT_EAR: (-0.04, 0.05),
    P.LEFT_SHOULDER: (0.11, 0.18), P.RIGHT_SHOULDER: (-0.11, 0.18),
    P.LEFT_ELBOW: (0.15, 0.33), P.RIGHT_ELBOW: (-0.15, 0.33),
    P.LEFT_WRIST: (0.17, 0.47), P.RIGHT_WRIST: (-0.17, 0.47),
    P.LEFT_HIP: (0.07, 0.52), P.RIGHT_HIP: (-0.07, 0.52),
    P.LEFT_KNEE: (0.08, 0.75), P.RIGHT_KNEE: (-0.08, 0.75),
    P.LEFT_ANKLE: (0.08, 0.97), P.RIGHT_ANKLE: (-0.08, 0.97),
}  # fmt: skip
_ANCHOR = (
    {i: P.NOSE for i in range(1, 11) if i not in _BODY}
    | {i: P.LEFT_WRIST if i % 2 else P.RIGHT_WRIST for i in range(17, 23)}
    | {i: P.LEFT_ANKLE if i % 2 else P.RIGHT_ANKLE for i in range(29, 33)}
)


def _move_hand(kp: np.ndarray, wrist: int, delta: tuple[float, float]) -> None:
    for i in (wrist, *(j for j, w in _ANCHOR.items() if w == wrist)):
        kp[i, :2] += delta


def _standing(cx: float = 0.5, top: float = 0.15, h: float = 0.75, aspect: float = 16 / 9) -> np.ndarray:  # fmt: skip
    """(33, 4) landmarks of a standing dancer, ``h`` of the frame's height tall."""
    kp = np.zeros((33, 4))
    for i in range(33):  # face, hands and feet sit a little off their main joint
        kp[i, :2] = np.add(_BODY[_ANCHOR.get(i, i)], (0.0, 0.03 if i in _ANCHOR else 0.0))
    kp[:, 0] = cx + kp[:, 0] * h / aspect
    kp[:, 1] = top + kp[:, 1] * h
    kp[:, 3] = 0.95
    return kp


def _frame(w: int = 1280, h: int = 720) -> np.ndarray:
    frame = np.zeros((h, w, 3), np.uint8)
    frame[..., 0] = np.linspace(30, 90, w, dtype=np.uint8)[None]
    frame[..., 2] = 60
    return frame


def _near(image: Image.Image, xy: np.ndarray, colour: tuple[int, ...], radius: int = 6) -> bool:
    x, y = np.round(xy).astype(int)
    patch = np.asarray(image)[max(0, y - radius) : y + radius + 1, max(0, x - radius) : x + radius + 1]  # fmt: skip
    return bool((patch == colour).all(axis=2).any())


def _px(kp: np.ndarray, i: int, size: tuple[int, int]) -> np.ndarray:
    return kp[i, :2] * np.array(size)


def test_reference_scaled_and_moved_lands_on_the_learner() -> None:
    you = _standing()
    # Same pose, smaller and elsewhere, filmed in portrait: mapping must undo all of that.
    ref_aspect = 9 / 16
    ref = _standing(cx=0.3, top=0.4, h=0.4, aspect=ref_aspect)
    image = decode(overlay_png(_frame(), you, ref, part="left_arm", aspect_ratio=ref_aspect))
    w = OVERLAY_MAX_SIDE
    assert image.size == (w, round(720 * w / 1280))  # downscaled, no caption band
    for i in (P.LEFT_WRIST, P.RIGHT_WRIST, P.LEFT_KNEE, P.NOSE):
        at = _px(you, i, image.size)
        assert _near(image, at, YOU_COLOUR), i
        assert pixel(image, at) == REFERENCE_COLOUR, i
    assert "reference" in image.info["Description"]


def test_raised_arm_of_the_reference_is_drawn_above_the_learners() -> None:
    you = _standing()
    ref = _standing(cx=0.6, top=0.2, h=0.6)
    # Reference's left forearm straight up from the elbow, in the frame's aspect.
    elbow = ref[P.LEFT_ELBOW, :2]
    up = np.array([0.0, -0.15 * 0.6])
    for i in (P.LEFT_WRIST, P.LEFT_PINKY, P.LEFT_INDEX, P.LEFT_THUMB):
        ref[i, :2] = elbow + up * (1.3 if i != P.LEFT_WRIST else 1.0)
    caption = "0:12 left arm: Raise your left arm higher"
    png = overlay_png(_frame(), you, ref, part="left_arm", caption=caption)
    image = decode(png)
    size = (OVERLAY_MAX_SIDE, round(720 * OVERLAY_MAX_SIDE / 1280))
    assert image.size[0] == size[0] and image.size[1] > size[1]  # caption band below the frame
    assert caption in image.info["Description"]

    # Expected: the learner's elbow plus the reference forearm scaled by torso lengths.
    def torso(kp: np.ndarray, scale: np.ndarray) -> float:
        sh = (kp[P.LEFT_SHOULDER, :2] + kp[P.RIGHT_SHOULDER, :2]) / 2 * scale
        hip = (kp[P.LEFT_HIP, :2] + kp[P.RIGHT_HIP, :2]) / 2 * scale
        return float(np.linalg.norm(sh - hip))

    k = torso(you, np.array(size)) / torso(ref, np.array([16 / 9, 1.0]))
    target = _px(you, P.LEFT_ELBOW, size) + up * np.array([16 / 9, 1.0]) * k
    learner_wrist = _px(you, P.LEFT_WRIST, size)
    assert target[1] < learner_wrist[1] - 50  # well above the learner's wrist
    assert _near(image, target, REFERENCE_COLOUR, radius=3)
    assert _near(image, learner_wrist, YOU_COLOUR, radius=3)
    assert not _near(image, learner_wrist, REFERENCE_COLOUR, radius=10)


def test_mirrored_reference_lands_on_the_learner_with_mirror() -> None:
    you = _standing()
    ref = you[list(MIRROR_INDEX)].copy()
    ref[:, 0] = 1.0 - ref[:, 0]
    _move_hand(ref, P.LEFT_WRIST, (0.0, -0.2))  # mirrored, this is the learner's right hand
    image = decode(overlay_png(_frame(), you, ref, mirror=True))
    left, right = _px(you, P.LEFT_WRIST, image.size), _px(you, P.RIGHT_WRIST, image.size)
    assert pixel(image, left) == REFERENCE_COLOUR
    assert not _near(image, right, REFERENCE_COLOUR, radius=3)


def test_no_person_draws_the_frame_and_caption_only() -> None:
    frame = _frame(640, 360)
    nobody = np.full((33, 4), np.nan)
    plain = decode(overlay_png(frame, nobody, _standing()))
    assert plain.size == (640, 360)
    assert (np.asarray(plain) == frame).all()
    captioned = decode(overlay_png(frame, nobody, _standing(), part="head", caption="0:03 no one"))
    assert captioned.size[1] > 360 and (np.asarray(captioned)[:360] == frame).all()
    hidden = _standing()
    hidden[:, 3] = 0.1  # everything too faint to trust
    assert (np.asarray(decode(overlay_png(frame, hidden, _standing()))) == frame).all()


def test_partly_seen_learner_and_missing_reference() -> None:
    you = _standing()
    you[[P.LEFT_HIP, P.RIGHT_HIP], :] = np.nan  # no hips: the reference cannot be placed
    image = decode(overlay_png(_frame(), you, _standing(), part="right_arm"))
    at = _px(you, P.RIGHT_WRIST, image.size)
    assert _near(image, at, YOU_COLOUR) and not (np.asarray(image) == REFERENCE_COLOUR).all(axis=2).any()  # fmt: skip
    image = decode(overlay_png(_frame(), _standing(), np.full((33, 4), np.nan)))
    assert not (np.asarray(image) == REFERENCE_COLOUR).all(axis=2).any()
    assert _near(image, _px(_standing(), P.LEFT_WRIST, image.size), YOU_COLOUR)


def test_overlay_deterministic_and_small() -> None:
    args = (_frame(), _standing(), _standing(cx=0.4))
    a = overlay_png(*args, part="torso", caption="0:01 " + "long caption " * 20)
    assert a == overlay_png(*args, part="torso", caption="0:01 " + "long caption " * 20)
    assert len(a) < 200_000
    ratio = np.float32(4 / 3)  # numpy scalars are fine
    small = decode(
        overlay_png(_frame(320, 240), _standing(aspect=4 / 3), _standing(), aspect_ratio=ratio)  # type: ignore[arg-type]
    )
    assert small.size == (320, 240)  # small frames are not upscaled


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"frame": np.zeros((72, 128, 3))}, "uint8"),
        ({"frame": np.zeros((72, 128), np.uint8)}, "RGB"),
        ({"frame": np.zeros((72, 128, 4), np.uint8)}, "RGB"),
        ({"frame": np.zeros((8, 128, 3), np.uint8)}, "16..8192"),
        ({"attempt": np.zeros((33, 3))}, "attempt must have shape"),
        ({"reference": np.zeros((17, 4))}, "reference must have shape"),
        ({"attempt": np.full((33, 4), np.inf)}, "infinite"),
        ({"reference": np.full((33, 4), "a")}, "real numbers"),
        ({"attempt": np.full((33, 4), 1e7)}, "image-normalised"),
        ({"attempt": np.full((33, 4), 2.0) * np.array([0, 0, 0, 1])}, "visibility"),
        ({"part": "tail"}, "part"),
        ({"caption": "x" * 1000}, "caption"),
        ({"caption": 12}, "caption"),
        ({"aspect_ratio": 0.0}, "aspect_ratio"),
        ({"aspect_ratio": float("nan")}, "aspect_ratio"),
    ],
)
def test_overlay_rejects_bad_input(kwargs: dict[str, object], message: str) -> None:
    call: dict[str, object] = {"frame": _frame(128, 72), "attempt": _standing(),
                               "reference": _standing()} | kwargs  # fmt: skip
    with pytest.raises(ValueError, match=message):
        overlay_png(**call)  # type: ignore[arg-type]


def test_korean_caption_when_a_hangul_font_exists(hangul_font: Callable[[], None]) -> None:
    hangul_font()
    assert has_hangul_font()
    frame = np.zeros((100, 100, 3), np.uint8)
    assert overlay_png(frame, _standing(), _standing(), caption="0:12 왼팔을 더 높이 드세요")
