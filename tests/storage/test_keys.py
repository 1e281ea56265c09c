"""Key layout and sanitising: hostile keys are refused, layout keys read back as their kind."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from megacity.errors import BadRequest
from megacity.storage import keys
from megacity.storage.keys import Kind, kind_of, segment, validate_key, validate_prefix

HOSTILE_KEYS = [
    "",
    "..",
    ".",
    "../etc/passwd",
    "a/../b",
    "a/./b",
    "a/..",
    "/etc/passwd",
    "/a",
    "a\\b",
    "..\\..\\windows",
    "a//b",
    "a/",
    "/",
    "a/b/",
    "a\x00b",
    "a\nb",
    "a\rb",
    "a\tb",
    "a\x7fb",
    ".hidden",
    "a/.meta",
    "a/.b.meta",
    "a b",
    "a%2e%2e",
    "a?b",
    "a#b",
    "a:b",
    "a*b",
    "a~b",
    "한글",
    "café",
    "ａ",  # fullwidth a
    "a\u202eb",  # right-to-left override
    "a" * 129,
    "/".join(["a"] * 17),
    ("a" * 100 + "/") * 11,  # over 1024 characters
]

GOOD_KEYS = [
    "a",
    "a/b/c",
    "A-Z_0.9",
    "kzone/audio/u1/20250101T000000.000000Z-00000000.wav",
    "file.tar.gz",
    "a..b",  # dots inside a name are fine; only whole "." and ".." segments are refused
    "a" * 128,
    "/".join(["a"] * 16),
]


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_hostile_keys_are_refused(key: str) -> None:
    with pytest.raises(BadRequest) as exc:
        validate_key(key)
    assert exc.value.code == "invalid_key"
    assert exc.value.status == 400


@pytest.mark.parametrize("key", GOOD_KEYS)
def test_good_keys_are_accepted_unchanged(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize("value", ["", ".", "..", "a/b", "/a", "a\\b", "é", ".x", "a\x00"])
def test_hostile_segments_are_refused(value: str) -> None:
    with pytest.raises(BadRequest, match="invalid object key"):
        segment(value, "user_id")


@pytest.mark.parametrize("prefix", ["", "kzone/", "kzone/au", "kzone/audio/u1/", "a"])
def test_prefixes(prefix: str) -> None:
    assert validate_prefix(prefix) == prefix


@pytest.mark.parametrize("prefix", ["/", "../", "a//", "a/../b", "a/.m", "a\\", "é"])
def test_bad_prefixes(prefix: str) -> None:
    with pytest.raises(BadRequest):
        validate_prefix(prefix)


def test_builders_follow_the_layout_and_read_back_as_their_kind() -> None:
    at = datetime(2025, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
    built = {
        keys.audio_key("user-1", at=at): Kind.AUDIO,
        keys.video_key("user-1", ext="WEBM", at=at): Kind.VIDEO,
        keys.reference_keypoints_key("0123abcd"): Kind.KEYPOINTS,
        keys.reference_video_key("0123abcd", ".mov"): Kind.VIDEO,
        keys.analysis_image_key("an1", "overlay"): Kind.IMAGE,
        keys.exam_attachment_key("exam-7", "answer.pdf"): Kind.ATTACHMENT,
        keys.profile_key("user-1", "avatar.png"): Kind.PROFILE,
        keys.model_key("kr-14b", "v2", "config.json"): Kind.MODEL,
        keys.voice_contour_key("0123abcd"): Kind.CONTOUR,
    }
    for key, kind in built.items():
        assert key.kind is kind
        assert kind_of(key.key) is kind, key
        assert validate_key(str(key)) == key.key
    audio = keys.audio_key("user-1", at=at).key
    assert re.fullmatch(r"kzone/audio/user-1/20250304T050607\.890123Z-[0-9a-f]{8}\.wav", audio)
    assert keys.video_key("u", ext="WEBM", at=at).key.endswith(".webm")
    assert keys.reference_keypoints_key("r1").key == "kzone/dance/references/r1/keypoints.npz"
    assert keys.reference_video_key("r1", ".mov").key == "kzone/dance/references/r1/video.mov"
    assert keys.analysis_image_key("a1", "pose").key == "kzone/dance/analyses/a1/pose.png"
    assert keys.exam_attachment_key("e1", "q.pdf").key == "exams/e1/attachments/q.pdf"
    assert keys.profile_key("u1", "me.jpg").key == "users/u1/profile/me.jpg"
    assert keys.model_key("m", "v1", "w.bin").key == "ai-models/m/v1/w.bin"
    assert keys.voice_contour_key("v1").key == "kzone/voice/references/v1/contour.npz"


def test_two_recordings_in_the_same_microsecond_get_different_keys() -> None:
    at = datetime(2025, 1, 1, tzinfo=UTC)
    assert keys.audio_key("u", at=at) != keys.audio_key("u", at=at)


def test_keys_outside_the_layout_have_no_kind() -> None:
    assert kind_of("tmp/whatever.bin") is None
    assert kind_of("kzone/audio/u1/not-a-stamp.wav") is None


@pytest.mark.parametrize(
    ("builder", "args", "param"),
    [
        (keys.audio_key, ("../../etc",), "user_id"),
        (keys.reference_keypoints_key, ("a/b",), "reference_id"),
        (keys.analysis_image_key, ("a1", "x/../../y"), "name"),
        (keys.exam_attachment_key, ("e1", "시험.pdf"), "filename"),
        (keys.profile_key, ("", "a.png"), "user_id"),
        (keys.model_key, ("m", "..", "w"), "version"),
        (keys.reference_video_key, ("r1", "mp4;rm -rf"), "ext"),
    ],
)
def test_builders_refuse_hostile_parts_naming_them(
    builder: object, args: tuple[str, ...], param: str
) -> None:
    with pytest.raises(BadRequest) as exc:
        builder(*args)  # type: ignore[operator]
    assert exc.value.param == param
