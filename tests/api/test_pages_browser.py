"""Every page clicked through in Chromium against a real router, auth on, stand-in LLM nodes,
the in-process speech engine (real Whisper base weights) and pose engine (MediaPipe).

What the issue asks to see: the node table turns red when a node is killed, the breaker
shows its last error, the explainer shows the tier the API chose for the same prompt,
activation switches the version the API then reports, a voice upload shows the
mis-spoken word highlighted, a dance analysis shows the heatmap — with no console error
on any page. One browser for the module; screenshots land in test-artifacts/screenshots/.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from megacity.testing import AuthKit, RouterProcess, StandinProcess
from tests.api.cluster import ROUTER_ENV, topology
from tests.audio import AUDIO_DIR, SHARED
from tests.browser import ARGS, Console, require_chromium, screenshot
from tests.video import POSE_MODEL, moving_person

WHISPER_BASE = str((SHARED / "models" / "whisper-base-ct2").resolve())
ESSAY = "이 논술 답안을 첨삭해 주세요: 기술 발전은 인간을 더 행복하게 만드는가?"
WAIT_S = 45  # generous: the dashboard refreshes every 5 s on a loaded machine


@dataclass
class Site:
    router: RouterProcess
    nodes: dict[str, StandinProcess]
    kit: AuthKit
    tmp: Path

    @property
    def url(self) -> str:
        return self.router.url

    def api(self, path: str, body: dict[str, Any], **headers: str) -> httpx.Response:
        auth = self.kit.headers("ops", scopes=("ai:admin",))
        return httpx.post(f"{self.url}{path}", json=body, headers={**auth, **headers}, timeout=30)


def _topology(urls: dict[str, str]) -> dict[str, Any]:
    topo = topology(urls)
    topo["nodes"] += [
        {
            "name": "speech-local",
            "engine": "speech",
            "url": "local",
            "models": ["whisper-base"],
            "region": "seoul",
            "max_concurrency": 2,
            "options": {
                "model": WHISPER_BASE,
                "device": "cpu",
                "compute_type": "int8",
                "beam_size": 1,
                "temperature": 0.0,
                "warmup": True,
            },
        },
        {
            "name": "pose-local",
            "engine": "pose",
            "url": "local",
            "models": ["pose-full"],
            "region": "seoul",
            "max_concurrency": 2,
            "options": {"model": POSE_MODEL, "fps": 15, "workers": 1},
        },
    ]
    topo["models"] += [
        {"name": "whisper-base", "engine": "speech", "aliases": ["whisper-1"]},
        {"name": "pose-full", "engine": "pose"},
    ]
    topo["zones"]["edu"]["engines"].update({"speech": "whisper-base", "pose": "pose-full"})
    return topo


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    require_chromium()
    tmp = tmp_path_factory.mktemp("browser")
    kit = AuthKit(tmp / "keys", "seoul")
    nodes = {
        name: StandinProcess(name, None, "--chunk-ms", "20")
        for name in ("seoul-a", "seoul-b", "tokyo", "cloud")
    }
    router = None
    try:
        for node in nodes.values():
            node.start()
        config = tmp / "topology.yaml"
        config.write_text(yaml.safe_dump(_topology({n: p.url for n, p in nodes.items()})))
        env = {
            **ROUTER_ENV,
            **kit.env(),
            "MEGACITY_DATA_DIR": str(tmp / "data"),
            "MEGACITY_FIRST_BYTE_TIMEOUT_S": "5",
            "MEGACITY_READ_TIMEOUT_S": "5",
            "MEGACITY_SPEECH_TIMEOUT_S": "60",
            "MEGACITY_POSE_TIMEOUT_S": "120",
        }
        router = RouterProcess(str(config), env=env)
        router.start(timeout_s=60)
        yield Site(router, nodes, kit, tmp)
    finally:
        if router is not None:
            router.stop()
        for node in nodes.values():
            node.stop()


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=require_chromium(), args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def session(browser: Any, site: Site) -> Iterator[tuple[Any, Console]]:
    """One logged-in tab (an ai:admin token typed into the login form), shared in order."""
    context = browser.new_context(viewport={"width": 1360, "height": 900}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(WAIT_S * 1000)
    console = Console()
    console.watch(page)
    page.goto(f"{site.url}/")
    screenshot(page, "01-landing")
    page.click("#go-dashboard")
    page.wait_for_url("**/login?next=/dashboard")
    page.fill("#token", site.kit.token("operator", scopes=("ai:admin",), ttl_s=3600))
    screenshot(page, "02-login")
    page.click("#login-form button[type=submit]")
    page.wait_for_url("**/dashboard")
    yield page, console
    context.close()


@pytest.fixture
def page(session: tuple[Any, Console]) -> Iterator[Any]:
    """The tab; a test fails if the page logged an error while it ran."""
    tab, console = session
    console.take()
    yield tab
    assert console.take() == []


def until(check: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


def node_status(page: Any, name: str) -> str:
    return str(page.get_attribute(f"#node-{name}", "data-status"))


def test_the_dashboard_shows_every_node_up(page: Any, site: Site) -> None:
    page.goto(f"{site.url}/dashboard")
    for name in site.nodes:
        assert node_status(page, name) == "ok"
    assert page.locator("#node-speech-local").count() == 1
    assert page.locator("#chart-rate .uplot").count() == 1  # the charts drew
    page.click("#window-1h")
    page.wait_for_url("**/dashboard?window=1h")
    screenshot(page, "03-dashboard")


def test_the_explainer_shows_the_tier_the_api_chose(page: Any, site: Site) -> None:
    api = site.api(
        "/v1/chat/completions",
        {"model": "auto", "messages": [{"role": "user", "content": ESSAY}]},
        **{"X-Zone": "edu"},
    )
    assert api.status_code == 200, api.text
    page.goto(f"{site.url}/dashboard")
    page.fill("#explain-prompt", ESSAY)
    page.select_option("#explain-zone", "edu")
    page.click("#explain-submit")
    page.wait_for_selector("#explain-tier")
    assert page.inner_text("#explain-tier") == api.headers["x-megacity-tier"] == "34b"
    assert page.inner_text("#explain-model").startswith(api.headers["x-megacity-model"])
    assert page.locator("#explain-candidates tr.chosen").count() == 1
    screenshot(page, "04-explainer")


def test_activation_switches_the_version_the_api_reports(page: Any, site: Site) -> None:
    chat = {"model": "kr-14b", "messages": [{"role": "user", "content": "안녕하세요"}]}
    assert site.api("/v1/chat/completions", chat).headers["x-megacity-version"] == "v1"
    page.goto(f"{site.url}/dashboard")
    page.click("#activate-kr-14b-v2")
    page.wait_for_selector("#confirm-activate")
    screenshot(page, "05-activation-confirm")
    page.click("#confirm-activate")
    page.wait_for_selector("#registry-notice")
    assert "v2" in page.inner_text("#model-kr-14b .version.active")
    after = site.api("/v1/chat/completions", chat)
    assert after.headers["x-megacity-version"] == "v2"
    served = site.nodes[after.headers["x-megacity-node"]].stats()["last_body"]
    assert served["model"] == "kr-14b-v2"  # what the node was asked for
    screenshot(page, "06-activated")


def test_an_open_breaker_shows_its_last_error(page: Any, site: Site) -> None:
    site.nodes["seoul-a"].configure(fail="500")
    chat = {"model": "small-7b", "messages": [{"role": "user", "content": "What is a noun?"}]}
    try:
        page.goto(f"{site.url}/dashboard")

        def breaker_open() -> bool:
            site.api("/v1/chat/completions", chat, **{"X-Zone": "lite"})
            return node_status(page, "seoul-a") == "down"

        until(breaker_open, "seoul-a's breaker to open on the page")
        row = page.locator("#node-seoul-a")
        assert "open" in row.locator("td.breaker").inner_text().lower()
        assert "HTTP 500" in row.locator("td.last-error").inner_text()
        assert "down" in (row.get_attribute("class") or "")
        screenshot(page, "07-breaker-open")
    finally:
        site.nodes["seoul-a"].configure(fail="none")


def test_a_killed_node_turns_red(page: Any, site: Site) -> None:
    page.goto(f"{site.url}/dashboard")
    assert node_status(page, "tokyo") == "ok"
    site.nodes["tokyo"].kill()
    until(lambda: node_status(page, "tokyo") == "down", "tokyo's row to turn red")
    assert "unreachable" in page.inner_text("#node-tokyo td.status")
    colour = page.eval_on_selector("#node-tokyo", "el => getComputedStyle(el).backgroundColor")
    assert colour == "rgb(253, 232, 232)"  # --bad-bg
    screenshot(page, "08-node-down")


def test_the_dashboard_in_korean(page: Any, site: Site) -> None:
    page.goto(f"{site.url}/dashboard?lang=ko")
    assert page.inner_text("h1") == "운영 대시보드"
    screenshot(page, "09-dashboard-ko")
    page.goto(f"{site.url}/dashboard?lang=en")
    assert page.inner_text("h1") == "Operator dashboard"


def test_a_voice_upload_highlights_the_misspoken_word(page: Any, site: Site) -> None:
    page.goto(f"{site.url}/demo/voice")
    page.select_option("#voice-language", "en")
    # en1.wav says "... over the lazy dog"; the learner was asked to read "dot"
    page.fill("#voice-reference", "The quick brown fox jumps over the lazy dot.")
    page.set_input_files("#voice-file", str(AUDIO_DIR / "en1.wav"))
    page.click("#voice-submit")
    until(lambda: page.is_enabled("#voice-submit"), "the analysis", 120)
    assert page.is_visible("#voice-result"), page.inner_text("#voice-status")
    words = page.locator("#voice-words .word")
    texts = [t.strip() for t in words.all_inner_texts()]
    assert "dot" in texts and "quick" in texts, texts
    dot = words.nth(texts.index("dot"))
    assert dot.get_attribute("data-error-type") == "mispronunciation"
    assert "w-bad" in (dot.get_attribute("class") or "")
    assert "w-good" in (words.nth(texts.index("quick")).get_attribute("class") or "")
    dot.click()  # plays its span and shows what was heard
    assert "dog" in page.inner_text("#voice-detail")
    screenshot(page, "10-voice")


def test_the_voice_and_tutor_pages_record_from_the_microphone(page: Any, site: Site) -> None:
    """Chromium's fake microphone through the pages' shared recorder (MegaCity.recorder)."""
    for path, start, stop, player in (
        ("/demo/voice", "#voice-record", "#voice-stop", "#voice-audio"),
        ("/demo/tutor", "#tutor-record", "#tutor-record-stop", "#tutor-recording"),
    ):
        page.goto(f"{site.url}{path}")
        page.click(start)
        until(lambda s=stop: page.is_enabled(s), f"{path}: recording started", 30)
        assert page.is_disabled(start)
        page.wait_for_timeout(500)  # some audio to record
        page.click(stop)
        until(lambda p=player: page.is_visible(p), f"{path}: the recording in the player", 30)
        assert (page.get_attribute(player, "src") or "").startswith("blob:")
        assert page.is_enabled(start) and page.is_disabled(stop)


def test_a_dance_analysis_shows_the_heatmap(page: Any, site: Site) -> None:
    reference = site.tmp / "reference.mp4"
    attempt = site.tmp / "attempt.mp4"
    reference.write_bytes(moving_person(4.0))
    attempt.write_bytes(moving_person(3.0, offset_s=0.5))
    page.goto(f"{site.url}/demo/dance")
    page.fill("#dance-title", "Astronaut walk")
    page.set_input_files("#dance-ref-file", str(reference))
    page.click("#dance-add-submit")
    until(lambda: len(page.input_value("#dance-reference")) == 32, "the reference", 120)
    page.set_input_files("#dance-file", str(attempt))
    page.click("#dance-submit")
    until(lambda: page.is_enabled("#dance-submit"), "the analysis", 120)
    assert page.is_visible("#dance-result"), page.inner_text("#dance-status")
    until(
        lambda: (
            page.eval_on_selector("#dance-heatmap", "img => img.complete && img.naturalWidth") > 300
        ),
        "the heatmap to load",
    )
    assert float(page.inner_text("#dance-score")) >= 80
    assert page.locator("#dance-parts li").count() == 6
    assert page.locator("#dance-timeline .uplot").count() == 1
    assert page.eval_on_selector("#dance-overlay", "img => img.naturalWidth") > 300
    screenshot(page, "11-dance")


def test_the_tutor_chat_streams_with_the_zone_and_strategy_picked(page: Any, site: Site) -> None:
    page.goto(f"{site.url}/demo/chat")
    page.select_option("#chat-zone", "edu")
    page.select_option("#chat-strategy", "math_tutor")
    page.fill("#chat-input", "Explain how to add 1/2 and 1/3")
    page.click("#chat-send")
    until(lambda: page.locator("#chat-log .msg").count() == 2, "the answer to start")
    until(lambda: not page.is_disabled("#chat-send"), "the stream to end")
    route = page.inner_text("#chat-route")
    assert "tier=14b" in route and "zone=edu" in route and "locale=ko" in route
    node = route.split("node=")[1].split(" ")[0]
    answer = page.inner_text("#chat-log .msg.assistant .content")
    assert answer.startswith(f"[{node}] {node}:1 "), answer  # the stand-in's streamed chunks
    sent = site.nodes[node].stats()["last_body"]
    system = sent["messages"][0]
    assert system["role"] == "system" and "수학 튜터" in system["content"]  # math_tutor's, in ko
    screenshot(page, "12-chat")


TUTOR_FEEDBACK = {
    "summary": "Add the fractions over a common denominator: 1/2 + 1/3 = 3/6 + 2/6 = 5/6.",
    "strengths": ["You asked about one concrete example."],
    "fixes": [{"text": "Write both fractions over 6 before adding the numerators."}],
    "next_exercise": "Try 1/4 + 1/6 the same way.",
}


WATCH_SUMMARY = """() => {
  window.summarySeen = [];
  const summary = document.getElementById("tutor-summary");
  new MutationObserver(() => window.summarySeen.push(
    [summary.textContent.length, !document.getElementById("tutor-result").hidden]
  )).observe(summary, {childList: true, characterData: true, subtree: true});
}"""


def test_the_multimodal_tutor_streams_its_answer(
    page: Any, site: Site, session: tuple[Any, Console]
) -> None:
    """A general question (text only: no engine to wait for) streams stage by stage; the
    stand-ins answer the tutor's feedback JSON, so the answer is written as it arrives."""
    reply = json.dumps(TUTOR_FEEDBACK)
    alive = []
    for node in site.nodes.values():
        try:
            node.configure(reply=reply)
            alive.append(node)
        except OSError:
            pass  # tokyo was killed above
    try:
        page.goto(f"{site.url}/")
        page.click("#go-tutor")
        page.wait_for_url("**/demo/tutor")
        page.select_option("#tutor-scenario", "general")
        page.select_option("#tutor-zone", "edu")
        page.select_option("#tutor-locale", "en")
        page.fill("#tutor-text", "How do I add 1/2 and 1/3?")
        # what the summary showed before the result came: the answer as it was written
        page.evaluate(WATCH_SUMMARY)
        page.click("#tutor-submit")
        until(lambda: page.is_visible("#tutor-result"), "the tutor's result", 120)
        assert page.is_hidden("#tutor-error"), page.inner_text("#tutor-error")
        stages = {
            s: page.get_attribute(f"#stage-{s}", "data-status")
            for s in ("input", "extract", "core", "accelerator")
        }
        assert stages["input"] == stages["accelerator"] == "end", stages
        assert stages["core"] == "skipped"  # general: the accelerator answers alone
        assert page.inner_text("#tutor-summary") == TUTOR_FEEDBACK["summary"]
        seen = page.evaluate("window.summarySeen")
        written = [n for n, done in seen if not done]
        assert any(0 < n < len(TUTOR_FEEDBACK["summary"]) for n in written), seen
        assert page.locator("#tutor-fixes li.fix").count() == 1
        assert page.inner_text("#tutor-next") == TUTOR_FEEDBACK["next_exercise"]
        sources = page.inner_text("#tutor-sources")
        assert "scenario=general" in sources and "locale=en" in sources
        assert "accelerator=llm" in sources, sources  # the stand-in's JSON, not the fallback
        screenshot(page, "14-tutor")
        # the one error envelope, shown in the page: homework needs a photo (and a zone
        # with a vision model, which edu lacks)
        page.select_option("#tutor-scenario", "homework")
        page.click("#tutor-submit")
        until(lambda: page.is_visible("#tutor-error"), "the error")
        shown = page.inner_text("#tutor-error")
        assert "(missing_media)" in shown or "(no_vision_model)" in shown, shown
        # the browser logs the refused request itself; nothing else may be on the console
        logged = session[1].take()
        assert all("status of 400" in line for line in logged), logged
    finally:
        for node in alive:
            node.configure(reply=None)


def test_the_dashboard_shows_usage_by_user_group(page: Any, site: Site) -> None:
    chat = {"model": "small-7b", "messages": [{"role": "user", "content": "What is a noun?"}]}
    for group, times in (("school-a", 3), ("school-b", 1)):
        headers = site.kit.headers(f"learner-{group}", group=group)
        for _ in range(times):
            resp = httpx.post(
                f"{site.url}/v1/chat/completions",
                json=chat,
                headers={**headers, "X-Zone": "lite"},
                timeout=30,
            )
            assert resp.status_code == 200, resp.text
    page.goto(f"{site.url}/dashboard?window=5m")
    row = '#groups-table tr[data-group="{}"] td.requests'
    until(
        lambda: page.locator(row.format("school-b")).count() == 1,
        "school-b's row (the panels refresh every 5 s)",
    )
    assert int(page.inner_text(row.format("school-a"))) == 3
    assert int(page.inner_text(row.format("school-b"))) == 1
    page.locator("#groups").scroll_into_view_if_needed()
    screenshot(page, "15-dashboard-groups")


def test_the_api_docs_load_from_the_package(page: Any, site: Site) -> None:
    page.goto(f"{site.url}/docs")
    page.wait_for_selector(".swagger-ui .opblock")
    assert page.locator(".swagger-ui .opblock").count() >= 25
    screenshot(page, "13-docs")
