"""The pages' pure parts: every text in both languages, redirects that stay home, CSRF tokens."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from megacity.api.web.i18n import STRINGS, translator
from megacity.api.web.session import NONCE_COOKIE, SESSION_COOKIE, CsrfSigner, safe_next
from megacity.observability.rolling import WINDOWS

TEMPLATES = Path(__file__).resolve().parents[2] / "megacity" / "api" / "web" / "templates"
# keys the templates build from data (t("status." ~ n.status) …)
DYNAMIC = [
    *(f"window.{w}" for w in WINDOWS),
    *(f"status.{s}" for s in ("ok", "degraded", "down")),
    *(f"breaker.{b}" for b in ("closed", "half_open", "open")),
    *(f"voice.mode.{m}" for m in ("read", "shadowing", "singalong")),
    *(f"part.{p}" for p in ("head", "torso", "left_arm", "right_arm", "left_leg", "right_leg")),
    *(f"tutor.scenario.{s}" for s in ("auto", "dance_coach", "drama_coach", "homework", "general")),
    *(f"tutor.level.{v}" for v in ("beginner", "intermediate", "advanced")),
    *(f"tutor.stage.{s}" for s in ("input", "extract", "core", "accelerator")),
]


def test_every_text_a_template_uses_exists_in_korean_and_english() -> None:
    used: set[str] = set()
    for path in TEMPLATES.rglob("*.html"):
        used |= set(re.findall(r"""\bt\(\s*["']([a-z0-9_.]+)["']\s*\)""", path.read_text()))
    assert len(used) > 100
    missing = sorted((used | set(DYNAMIC)) - set(STRINGS))
    assert missing == []
    for key, (ko, en) in STRINGS.items():
        assert ko.strip() and en.strip(), key
        assert (
            re.search(r"[\uac00-\ud7a3]", ko)
            or key in {"lang.other", "col.gpu", "col.rate"}
            or ko == en
        ), key
    assert translator("ko")("nav.dashboard") == "운영 대시보드"
    assert translator("en")("nav.dashboard") == "Operator dashboard"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/dashboard?window=1h", "/dashboard?window=1h"),
        ("/demo/voice", "/demo/voice"),
        (None, "/"),
        ("", "/"),
        ("dashboard", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("/ok\r\nSet-Cookie: x=1", "/"),
        ("/" + "a" * 600, "/"),
    ],
)
def test_login_sends_back_only_to_this_site(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_a_csrf_token_is_bound_to_the_browser_and_the_session() -> None:
    signer = CsrfSigner(b"k" * 32)
    jar = {NONCE_COOKIE: "nonce-1", SESSION_COOKIE: "token-a"}
    token = signer.token("nonce-1", "token-a")
    assert signer.check(jar, token)
    assert not signer.check({**jar, NONCE_COOKIE: "nonce-2"}, token)  # another browser
    assert not signer.check({**jar, SESSION_COOKIE: "token-b"}, token)  # another session
    assert not signer.check({SESSION_COOKIE: "token-a"}, token)  # no nonce cookie
    assert not signer.check(jar, None) and not signer.check(jar, "")
    assert not CsrfSigner(b"x" * 32).check(jar, token)  # another router's key
    assert signer.check({NONCE_COOKIE: "n"}, signer.token("n", None))  # before login
