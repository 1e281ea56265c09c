"""The LLM guard and the synthesis checks through the real router (uvicorn), auth on.

One stand-in LLM behind one router. The stand-in echoes the last user message (streamed
three characters a chunk), so what the LLM received and what the client got back can
both be checked: PII leaves as placeholders and comes back restored, per zone policy.
Limits are off here (tests/api/test_limits.py has them on). The TTS node is deliberately
absent (a closed port): the consent and identity checks run before any job is queued.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml
from openai import OpenAI

from megacity.observability.anonymize import UserHasher
from megacity.testing import AuthKit, RouterProcess, StandinProcess
from tests.api.cluster import ROUTER_ENV, topology

RUN = secrets.token_hex(4)
PII = {
    "phone": "010-4821-7390",
    "rrn": "900101-1234568",  # checksum-valid
    "email": "gildong.hong@example.com",
    "card": "5425 2334 3010 9903",  # Luhn-valid
    "name": "홍길동",
    "ip": "192.168.10.23",
    "address": "서울특별시 강남구 테헤란로 152",
}
PII_TEXT = (
    f"{PII['name']} 학생의 연락처는 {PII['phone']}이고 주민번호는 {PII['rrn']}입니다. "
    f"이메일 {PII['email']}, 카드 {PII['card']}, 접속 IP {PII['ip']}, "
    f"주소 {PII['address']}로 성적표를 보내 주세요."
)
PLACEHOLDERS = tuple(f"[{k}_1]" for k in ("NAME", "PHONE", "RRN", "EMAIL", "CARD", "IP", "ADDRESS"))
TOXIC = "너 같은 병신은 꺼져 씨발"
SELF_HARM = "요즘 너무 힘들어서 죽고 싶어요"
TTS = "/api/v1/kzone/tts"
CONSENTS = "/api/v1/consents"


@dataclass
class Router:
    url: str
    kit: AuthKit
    hasher: UserHasher
    llm: StandinProcess
    process: RouterProcess

    def headers(self, subject: str, **extra: str) -> dict[str, str]:
        return {**self.kit.headers(subject), **extra}

    def client(self, subject: str, **extra: str) -> OpenAI:
        return OpenAI(
            base_url=f"{self.url}/v1",
            api_key=self.kit.token(subject),
            max_retries=0,
            timeout=10,
            default_headers=extra or None,
        )

    def post(self, path: str, body: dict[str, Any], subject: str, **extra: str) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", json=body, headers=self.headers(subject, **extra))

    def received(self) -> str:
        """The last user message the stand-in LLM received."""
        body = self.llm.stats()["last_body"]
        return str(body["messages"][-1]["content"])


def _safety_topology(llm_url: str) -> dict[str, Any]:
    """tests/api/cluster.py's topology on one stand-in; zones with other safety policies."""
    topo = topology(dict.fromkeys(("seoul-a", "seoul-b", "tokyo", "cloud"), llm_url))
    llm = {"engines": {"llm": "small-7b"}, "default_locale": "ko"}
    topo["zones"]["open"] = {**llm, "safety": {"pii": "allow"}}
    topo["zones"]["raw"] = {**llm, "safety": {"restore_pii": False}}
    topo["zones"]["lenient"] = {**llm, "safety": {"moderation": "flag", "firewall": "flag"}}
    topo["zones"]["edu"]["engines"]["tts"] = "tiny-tts"
    topo["models"].append({"name": "tiny-tts", "engine": "tts"})
    tts = {"name": "tts", "engine": "tts", "url": "http://127.0.0.1:9", "region": "seoul"}
    topo["nodes"].append({**tts, "models": ["tiny-tts"]})
    return topo


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Router]:
    tmp = tmp_path_factory.mktemp("safety")
    kit = AuthKit(tmp / "keys", "seoul")
    hash_key = secrets.token_hex(16)
    llm = StandinProcess("llm")
    llm.start()
    llm.configure(echo=True)
    config = tmp / "topology.yaml"
    config.write_text(yaml.safe_dump(_safety_topology(llm.url)), encoding="utf-8")
    env = {
        **ROUTER_ENV,
        **kit.env(),
        "MEGACITY_DATA_DIR": str(tmp / "data"),
        "MEGACITY_USER_HASH_KEY": hash_key,
        "MEGACITY_LOG_PROMPTS": "true",
        "MEGACITY_REQUEST_LOG": "true",
        "MEGACITY_JOBS_MAX_ATTEMPTS": "1",
    }
    process = RouterProcess(str(config), env=env)
    try:
        process.start()
        yield Router(process.url, kit, UserHasher(hash_key.encode()), llm, process)
    finally:
        process.stop()
        llm.stop()


def _subject(name: str) -> str:
    return f"safety-{name}-{RUN}"


def _chat(text: str) -> dict[str, Any]:
    return {"model": "small-7b", "messages": [{"role": "user", "content": text}]}


def _error(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    error: dict[str, Any] = resp.json()["error"]
    assert error["code"] == code, error
    return error


def _leaks(text: str) -> list[str]:
    return [kind for kind, value in PII.items() if value in text]


# --- PII: masked on the way to the LLM, restored on the way back ------------------------


def test_pii_is_masked_before_the_llm_and_restored_after(router: Router) -> None:
    client = router.client(_subject("pii"))
    answer = client.chat.completions.create(**_chat(PII_TEXT))
    sent = router.received()
    assert _leaks(sent) == [], sent
    for placeholder in PLACEHOLDERS:
        assert placeholder in sent, (placeholder, sent)
    assert answer.choices[0].message.content == PII_TEXT  # the echo, originals put back


def test_a_streamed_answer_is_restored_across_split_placeholders(router: Router) -> None:
    client = router.client(_subject("pii-stream"))
    stream = client.chat.completions.create(**_chat(PII_TEXT), stream=True)
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    sent = router.received()
    assert _leaks(sent) == []
    assert "".join(pieces) == PII_TEXT
    # The stand-in sent 3 characters a chunk: placeholders arrived cut in pieces.
    assert len(pieces) > 20


def test_a_completion_prompt_is_masked_too(router: Router) -> None:
    resp = router.post(
        "/v1/completions", {"model": "small-7b", "prompt": PII_TEXT}, _subject("pii-completion")
    )
    assert resp.status_code == 200, resp.text
    sent = str(router.llm.stats()["last_body"]["prompt"])
    assert _leaks(sent) == [] and "[PHONE_1]" in sent
    assert resp.json()["choices"][0]["text"] == PII_TEXT


def test_a_zone_that_allows_pii_sends_it_through(router: Router) -> None:
    client = router.client(_subject("pii-open"), **{"X-Zone": "open"})
    answer = client.chat.completions.create(**_chat(PII_TEXT))
    assert router.received() == PII_TEXT
    assert answer.choices[0].message.content == PII_TEXT


def test_a_zone_without_restore_keeps_the_placeholders(router: Router) -> None:
    client = router.client(_subject("pii-raw"), **{"X-Zone": "raw"})
    answer = client.chat.completions.create(**_chat(PII_TEXT))
    text = answer.choices[0].message.content or ""
    assert _leaks(text) == [] and "[PHONE_1]" in text and "[EMAIL_1]" in text
    stream = client.chat.completions.create(**_chat(PII_TEXT), stream=True)
    streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert streamed == text


def test_logs_hold_no_pii_and_no_raw_user_id(router: Router) -> None:
    subject = _subject("pii-logs")
    client = router.client(subject)
    client.chat.completions.create(**_chat(PII_TEXT))
    for _ in client.chat.completions.create(**_chat(PII_TEXT), stream=True):
        pass
    output = router.process.output()
    assert _leaks(output) == []
    assert subject not in output and RUN not in output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    requests = [r for r in lines if r["logger"] == "megacity.access" and r["msg"] == "request"]
    assert any(r["path"] == "/v1/chat/completions" and r["status"] == 200 for r in requests)
    # MEGACITY_LOG_PROMPTS is on: the prompt is logged, masked, under the hashed user.
    prompts = [r for r in lines if r["msg"] == "prompt" and r["user"] == router.hasher(subject)]
    assert len(prompts) == 2, prompts
    assert router.hasher(subject).startswith("u_")
    assert "[PHONE_1]" in prompts[0]["prompt"] and "[EMAIL_1]" in prompts[0]["prompt"]


# --- moderation ------------------------------------------------------------------------


def test_a_toxic_prompt_is_refused_with_its_categories(router: Router) -> None:
    before = router.llm.stats()["requests"]
    resp = router.post("/v1/chat/completions", _chat(TOXIC), _subject("toxic"))
    error = _error(resp, 400, "content_rejected")
    assert "toxicity" in error["categories"]
    assert "toxicity" in error["message"]
    assert router.llm.stats()["requests"] == before  # never reached the LLM


def test_self_harm_gets_help_not_a_bare_refusal(router: Router) -> None:
    subject = _subject("self-harm")
    ko = router.post("/v1/chat/completions", _chat(SELF_HARM), subject, **{"X-Locale": "ko"})
    error = _error(ko, 400, "self_harm_risk")
    assert "109" in error["message"] and "109" in error["help"]
    assert "자살예방상담전화" in error["help"]
    assert "self_harm" in error["categories"]
    en = router.post("/v1/chat/completions", _chat(SELF_HARM), subject, **{"X-Locale": "en"})
    assert "crisis line" in _error(en, 400, "self_harm_risk")["message"]


def test_a_flagging_zone_lets_the_prompt_through(router: Router) -> None:
    resp = router.post(
        "/v1/chat/completions", _chat(TOXIC), _subject("lenient"), **{"X-Zone": "lenient"}
    )
    assert resp.status_code == 200, resp.text
    choice = resp.json()["choices"][0]  # flagged (logged, counted) both ways, not cut
    assert choice["finish_reason"] == "stop" and choice["message"]["content"] == TOXIC


@pytest.fixture
def toxic_llm(router: Router) -> Iterator[StandinProcess]:
    """The stand-in answering with a fixed, toxic text whatever it is asked."""
    router.llm.configure(echo=False, name=TOXIC)
    try:
        yield router.llm
    finally:
        router.llm.configure(echo=True, name="llm")


def test_a_toxic_answer_is_cut_with_content_filter(
    router: Router, toxic_llm: StandinProcess
) -> None:
    body = _chat("Summarise the water cycle in one line.")
    resp = router.post("/v1/chat/completions", body, _subject("toxic-answer"))
    assert resp.status_code == 200, resp.text
    choice = resp.json()["choices"][0]
    assert choice["finish_reason"] == "content_filter"
    assert choice["message"]["content"] == ""

    client = router.client(_subject("toxic-answer"))
    chunks = list(client.chat.completions.create(**body, stream=True))
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "content_filter", finishes


# --- synthesis: protected identities and consent --------------------------------------


def _consent(router: Router, owner: str, subject_id: str) -> str:
    body = {
        "subject_id": subject_id,
        "granted_by": subject_id,
        "scopes": ["voice_synthesis"],
        "evidence": "signed form 2025-042",
    }
    resp = router.post(CONSENTS, body, owner)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def test_a_protected_voice_is_refused(router: Router) -> None:
    for voice in ("IU", "아이유", "Jung-kook"):
        resp = router.post(TTS, {"text": "안녕하세요", "voice": voice}, _subject("studio"))
        assert "protected identity" in _error(resp, 403, "protected_identity")["message"]


def test_a_voice_under_consent_passes_until_revoked(router: Router) -> None:
    studio, singer = _subject("studio"), f"singer-{RUN}"
    tts = {"text": "오늘의 K-pop 뉴스입니다", "subject_id": singer}
    assert _error(router.post(TTS, tts, studio), 403, "consent_required")
    consent = _consent(router, studio, singer)
    queued = router.post(TTS, {**tts, "consent_id": consent}, studio)
    assert queued.status_code == 202, queued.text  # past every check: the job is queued
    stranger = router.post(TTS, {**tts, "consent_id": consent}, _subject("stranger"))
    _error(stranger, 403, "consent_invalid")
    other = router.post(TTS, {**tts, "subject_id": "singer-2", "consent_id": consent}, studio)
    _error(other, 403, "consent_subject_mismatch")

    revoked = router.post(f"{CONSENTS}/{consent}/revoke", {}, studio)
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    _error(router.post(TTS, {**tts, "consent_id": consent}, studio), 403, "consent_revoked")


def test_a_toxic_text_to_speak_is_refused(router: Router) -> None:
    resp = router.post(TTS, {"text": TOXIC}, _subject("studio"))
    assert "toxicity" in _error(resp, 400, "content_rejected")["categories"]
