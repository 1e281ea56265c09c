"""Dance Lab through uvicorn: references, video analysis with pictures, keypoint analysis, refusals.

The router runs the in-process pose engine (MediaPipe, the real model from ../shared) on
videos made from a real photo (tests/video.py); keypoint analyses use the synthetic
dancers whose calibration tests/scoring/test_dance.py proves.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from megacity.scoring.pose import BODY_PARTS, COCO_TO_BLAZEPOSE
from megacity.testing import RouterProcess
from tests.api.dance_cluster import add_reference, analyze, pose_node, start_router
from tests.scoring.dancers import dancer, times
from tests.video import audio_only, moving_person, no_person, too_long, zero_frames

REFS = "/api/v1/kzone/dance/references"
KEYPOINTS = "/api/v1/kzone/dance/analyze-keypoints"


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterProcess]:
    proc = start_router(tmp_path_factory.mktemp("dance"), [pose_node("pose-local", "local")])
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def client(router: RouterProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=router.url, timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def reference_id(client: httpx.Client) -> str:
    resp = add_reference(client, moving_person(4.0), "Astronaut walk", bpm="120")
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def _error(resp: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    err: dict[str, Any] = resp.json()["error"]
    if code is not None:
        assert err["code"] == code, err
    return err


def _png(client: httpx.Client, url: str) -> Image.Image:
    resp = client.get(url)  # a signed URL of the router's own file endpoint
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(resp.content))
    image.load()
    return image


# ---- references -------------------------------------------------------------------


def test_reference_is_stored_listed_fetched_and_deleted(
    client: httpx.Client, router: RouterProcess
) -> None:
    resp = add_reference(client, moving_person(2.0), "  Short   clip ", bpm="96")
    assert resp.status_code == 201, resp.text
    assert resp.headers["x-megacity-node"] == "pose-local"
    ref = resp.json()
    assert ref["title"] == "Short clip" and ref["bpm"] == 96
    assert ref["fps"] == 15 and ref["frames"] == 30 and ref["width"] == 640
    assert abs(ref["duration_s"] - 2.0) < 0.1
    listed = client.get(REFS, params={"limit": 10}).json()
    assert listed["data"][0]["id"] == ref["id"]  # newest first
    assert client.get(f"{REFS}/{ref['id']}").json() == ref
    data_dir = Path(router.env["MEGACITY_DATA_DIR"])
    stored = list((data_dir / "objects").rglob("keypoints.npz"))
    assert any(ref["id"] in str(p) for p in stored)

    assert client.delete(f"{REFS}/{ref['id']}").status_code == 204
    _error(client.get(f"{REFS}/{ref['id']}"), 404, "reference_not_found")
    assert all(r["id"] != ref["id"] for r in client.get(REFS).json()["data"])
    assert not any(ref["id"] in str(p) for p in (data_dir / "objects").rglob("keypoints.npz"))
    _error(client.delete(f"{REFS}/{ref['id']}"), 404, "reference_not_found")


def test_only_the_owner_deletes_a_reference(client: httpx.Client) -> None:
    resp = client.post(
        REFS,
        files={"file": ("r.mp4", moving_person(2.0), "video/mp4")},
        data={"title": "mine"},
        headers={"X-User-Id": "teacher-1"},
    )
    assert resp.status_code == 201, resp.text
    rid = resp.json()["id"]
    _error(client.delete(f"{REFS}/{rid}", headers={"X-User-Id": "student-9"}), 403, "not_owner")
    assert client.delete(f"{REFS}/{rid}", headers={"X-User-Id": "teacher-1"}).status_code == 204


@pytest.mark.parametrize(
    ("video", "status", "code"),
    [
        (b"", 400, "empty_video"),
        (b"this is a text file, not a dance video\n" * 20, 415, "unsupported_video"),
        (audio_only(), 415, "no_video_stream"),
        (zero_frames(), 422, "no_frames"),
        (too_long(), 422, "video_too_long"),
        (no_person(), 422, "no_person"),
    ],
    ids=["empty", "text", "audio-only", "zero-frames", "too-long", "no-person"],
)
def test_bad_reference_videos_are_refused(
    client: httpx.Client, video: bytes, status: int, code: str
) -> None:
    before = len(client.get(REFS).json()["data"])
    _error(add_reference(client, video), status, code)
    assert len(client.get(REFS).json()["data"]) == before  # nothing half-written


def test_bad_reference_forms_are_refused(client: httpx.Client) -> None:
    video = moving_person(2.0)
    _error(add_reference(client, video, "x" * 300), 400, "invalid_title")
    _error(add_reference(client, video, "   "), 400, "invalid_title")
    _error(add_reference(client, video, bpm="fast"), 400)
    _error(add_reference(client, video, bpm="1000"), 400, "invalid_bpm")
    _error(client.post(REFS, files={"title": (None, "no file")}), 400)
    _error(client.post(REFS, data={"title": "not multipart"}), 415)
    resp = client.post(REFS, files={"file": ("big.mp4", b"\0" * (5 * 1024 * 1024), "video/mp4")})
    _error(resp, 413, "file_too_large")
    _error(client.get(REFS, params={"limit": 0}), 400)


# ---- analysis of a video ----------------------------------------------------------


def test_same_moves_cut_in_time_score_high_with_pictures(
    client: httpx.Client, reference_id: str
) -> None:
    resp = analyze(client, moving_person(3.0, offset_s=0.5), reference_id)
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-megacity-node"] == "pose-local"
    assert resp.headers["x-megacity-model"] == "pose-full"
    body = resp.json()
    assert body["reference_id"] == reference_id
    # The same still pose moved and scaled: the synthetic calibration gives >= 90; on video
    # MediaPipe's jitter costs a little, and the photo ends at the waist, so the legs are
    # guesses (visibility 0.3-0.6, jittering), which cost up to ~10 more when seen.
    assert body["score"] >= 85, body
    assert set(body["body_parts"]) == set(BODY_PARTS)
    parts = body["body_parts"]
    assert parts["head"] >= 90 and parts["torso"] >= 90
    assert all(parts[p] is None or parts[p] >= 80 for p in BODY_PARTS)
    # A still pose has no tempo or lead/lag to follow: null, with the reason.
    assert body["timing"] == {"offset_ms": None, "tempo_ratio": None, "reason": "still_pose"}
    assert body["match"]["same_choreography"] is True
    assert sum(body["moves"].values()) == len(
        [p for p in body["timeline"] if p["score"] is not None]
    )
    assert all(p["rating"] in ("perfect", "good", "ok", "miss", None) for p in body["timeline"])
    assert body["timeline"] and all("score" in p for p in body["timeline"])
    beat = 60 / 120  # the reference's bpm: one timeline point per beat
    assert abs(body["timeline"][0]["end_s"] - body["timeline"][0]["start_s"] - beat) < 1e-6
    assert body["feedback"][0]["en"] and body["feedback"][0]["ko"]
    heat = _png(client, body["heatmap_url"])
    overlay = _png(client, body["overlay_url"])
    assert heat.width > 300 and overlay.width > 300
    tampered = body["heatmap_url"].replace("signature=", "signature=0")
    _error(client.get(tampered), 403)


def test_analyze_refusals(client: httpx.Client, reference_id: str) -> None:
    video = moving_person(2.0)
    _error(analyze(client, video, "0" * 32), 404, "reference_not_found")
    _error(analyze(client, video, "../../etc/passwd"), 404, "reference_not_found")
    _error(analyze(client, video, reference_id, mirror="sideways"), 400)
    _error(analyze(client, b"not a video at all" * 10, reference_id), 415, "unsupported_video")
    _error(analyze(client, no_person(), reference_id), 422, "no_person")
    resp = client.post(
        "/api/v1/kzone/dance/analyze",
        files={"file": ("a.mp4", video, "video/mp4")},
        data={"reference_id": reference_id},
        headers={"X-Zone": "plain"},
    )
    _error(resp, 400, "no_model_for_zone")


# ---- analysis of keypoints --------------------------------------------------------


def _track(kp: np.ndarray, fps: float = 30.0, **extra: Any) -> dict[str, Any]:
    frames: list[Any] = [None if np.isnan(f).all() else f.round(5).tolist() for f in kp]
    return {"fps": fps, "keypoints": frames, **extra}


def test_keypoints_calibration_through_the_api(client: httpx.Client) -> None:
    t = times(8.0)
    ref = dancer(1, t)

    def score(attempt: dict[str, Any], **extra: Any) -> dict[str, Any]:
        resp = client.post(KEYPOINTS, json={"attempt": attempt, "reference": _track(ref), **extra})
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    same = score(_track(ref))
    assert same["score"] == 100 and same["worst_moments"] == []
    _png(client, same["heatmap_url"])
    _png(client, same["overlay_url"])  # drawn on a plain background: no video
    other = score(_track(dancer(2, t)))
    assert other["score"] <= 50 and other["match"]["same_choreography"] is False
    assert other["timing"] == {"offset_ms": None, "tempo_ratio": None, "reason": "another_dance"}
    assert [f["en"][:33] for f in other["feedback"]] == ["This doesn't look like the refere"]
    arm = score(_track(dancer(1, t, left_arm_down=(3.0, 5.0))))
    assert arm["match"]["same_choreography"] is True and arm["moves"]["miss"] >= 1
    assert arm["worst_moments"][0]["part"] == "left_arm"
    assert any("0:03" in f["en"] and "왼팔" in f["ko"] for f in arm["feedback"])

    with_gaps = ref.copy()
    with_gaps[40:50] = np.nan  # nobody in these frames: null in the JSON
    assert score(_track(with_gaps))["score"] >= 95

    coco = ref[:, list(COCO_TO_BLAZEPOSE)][:, :, [0, 1, 3]]  # MoveNet-like x, y, score
    assert score(_track(coco))["score"] >= 90
    movenet = coco[:, :, [1, 0, 2]]  # MoveNet's raw order: y, x, score
    assert score(_track(movenet, order="yx"))["score"] >= 90
    pixels = coco.copy()  # a square 720×720 video, like the reference's unit square
    pixels[:, :, :2] *= 720
    assert score(_track(pixels, width=720, height=720))["score"] >= 90


def test_keypoints_against_a_stored_reference(client: httpx.Client, reference_id: str) -> None:
    resp = client.post(
        KEYPOINTS, json={"attempt": _track(dancer(1, times(4.0))), "reference_id": reference_id}
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["reference_id"] == reference_id and 0 <= body["score"] <= 100


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"attempt": {"fps": 30, "keypoints": [[[0.5, 0.5, 1.0]] * 5]}, "reference_id": "0" * 32}, 400),
        ({"attempt": {"fps": 30, "keypoints": [None, None]}, "reference_id": "0" * 32}, 400),
        ({"attempt": {"keypoints": [[[0.5, 0.5, 1.0]] * 33]}, "reference_id": "0" * 32}, 400),
        ({"attempt": {"fps": 30, "keypoints": [[[0.5, 0.5, 1.0]] * 33]}}, 400),
        ({"attempt": {"fps": 30, "keypoints": [[["x", 0.5, 1.0]] * 33]}, "reference_id": "0" * 32}, 400),
        ({"attempt": {"fps": 30, "keypoints": [[[0.5, 0.5, 2.0]] * 33]}, "reference_id": "0" * 32}, 400),
        ({"attempt": {"fps": 30, "keypoints": [[[0.5, 0.5, 1.0]] * 33], "extra": 1}, "reference_id": "0" * 32}, 400),
        ({"attempt": {"fps": 30, "keypoints": [[[0.5, 0.5, 1.0]] * 33] * 10}, "reference_id": "0" * 32}, 404),
    ],
    ids=["5-landmarks", "nobody", "no-fps", "no-reference", "not-a-number", "visibility-2", "extra-field", "unknown-reference"],
)  # fmt: skip
def test_bad_keypoint_requests_are_refused(
    client: httpx.Client, payload: dict[str, Any], status: int
) -> None:
    _error(client.post(KEYPOINTS, json=payload), status)


def test_openapi_lists_the_dance_endpoints(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {REFS, f"{REFS}/{{reference_id}}", KEYPOINTS, "/api/v1/kzone/dance/analyze"} <= set(
        paths
    )
