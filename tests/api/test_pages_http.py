"""The pages over plain HTTP, auth on: login cookie rules, CSRF on every state change, the
CSP, who may see what, and the dashboard's JSON figures after real traffic."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from megacity.testing import AuthKit
from tests.api.cluster import Cluster, start_cluster

CHAT = {"model": "small-7b", "messages": [{"role": "user", "content": "What is 2 + 3?"}]}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, kit: AuthKit) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("pages")
    env = {
        **kit.env(),
        "MEGACITY_DATA_DIR": str(tmp / "data"),
        "MEGACITY_LIMITS": '{"enabled": false}',
    }
    cluster = start_cluster(tmp, env=env)
    cluster.extra_env = env
    try:
        yield cluster
    finally:
        cluster.stop()


def browser(cluster: Cluster) -> httpx.Client:
    return httpx.Client(base_url=cluster.url, timeout=15, follow_redirects=False)


def csrf_of(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([0-9a-f]{64})">', html)
    assert found, html[:500]
    return found.group(1)


def login(client: httpx.Client, token: str, target: str = "/dashboard") -> httpx.Response:
    csrf = csrf_of(client.get("/login").text)
    return client.post("/login", data={"token": token, "csrf_token": csrf, "next": target})


def test_login_keeps_the_token_in_a_strict_httponly_cookie(cluster: Cluster, kit: AuthKit) -> None:
    with browser(cluster) as client:
        resp = login(client, kit.token("ops", scopes=("ai:admin",)))
        assert resp.status_code == 303 and resp.headers["location"] == "/dashboard"
        cookie = next(
            c for c in resp.headers.get_list("set-cookie") if c.startswith("megacity_session=")
        )
        attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
        assert {"httponly", "samesite=strict", "path=/"} <= attributes
        assert "secure" not in attributes  # plain http on loopback
        page = client.get("/dashboard")
        assert page.status_code == 200 and 'id="nodes-table"' in page.text
        # logging out (a form, so CSRF-checked) clears the cookie
        out = client.post("/logout", data={"csrf_token": csrf_of(page.text)})
        assert out.status_code == 303
        assert 'megacity_session=""' in out.headers["set-cookie"]
        assert client.get("/dashboard").status_code == 303


def test_the_cookie_is_secure_when_the_page_came_over_tls(cluster: Cluster, kit: AuthKit) -> None:
    # uvicorn trusts X-Forwarded-Proto from loopback (the TLS-terminating proxy's hop); the
    # cookies are then Secure, so the client here (plain http) hands them back by hand.
    tls = {"X-Forwarded-Proto": "https"}
    form = httpx.get(f"{cluster.url}/login", headers=tls)
    nonce = form.cookies["megacity_csrf"]
    assert "secure" in form.headers["set-cookie"].lower()
    resp = httpx.post(
        f"{cluster.url}/login",
        headers={**tls, "Cookie": f"megacity_csrf={nonce}"},
        data={"token": kit.token("ops"), "csrf_token": csrf_of(form.text), "next": "/"},
    )
    assert resp.status_code == 303
    session = next(
        c for c in resp.headers.get_list("set-cookie") if c.startswith("megacity_session=")
    )
    attributes = {a.strip().lower() for a in session.split(";")[1:]}
    assert {"secure", "httponly", "samesite=strict"} <= attributes


def test_login_refuses_a_bad_token_and_a_missing_or_foreign_csrf(
    cluster: Cluster, kit: AuthKit
) -> None:
    with browser(cluster) as client:
        bad = login(client, "not-a-token")
        assert bad.status_code == 401 and "megacity_session" not in bad.headers.get(
            "set-cookie", ""
        )
        no_csrf = client.post("/login", data={"token": kit.token(), "next": "/"})
        assert no_csrf.status_code == 403
        with browser(cluster) as other:
            foreign = csrf_of(other.get("/login").text)  # another browser's token
        resp = client.post("/login", data={"token": kit.token(), "csrf_token": foreign})
        assert resp.status_code == 403


def test_login_never_sends_the_user_to_another_site(cluster: Cluster, kit: AuthKit) -> None:
    with browser(cluster) as client:
        for target in ("//evil.example/x", "https://evil.example", "/\\evil.example"):
            resp = login(client, kit.token(scopes=("ai:use",)), target)
            assert resp.status_code == 303 and resp.headers["location"] == "/"


def test_pages_need_the_right_scope(cluster: Cluster, kit: AuthKit) -> None:
    with browser(cluster) as anonymous:
        for path in (
            "/dashboard",
            "/demo/voice",
            "/demo/dance",
            "/demo/chat",
            "/demo/tutor",
            "/docs",
        ):
            resp = anonymous.get(path)
            assert resp.status_code == 303, path
            assert resp.headers["location"] == "/login?next=" + path
        assert anonymous.get("/").status_code == 200  # the landing page is public
        assert 'id="status"' not in anonymous.get("/").text  # …without the router's state
        assert anonymous.get("/dashboard/data").status_code == 401
    with browser(cluster) as learner:
        login(learner, kit.token("learner", scopes=("ai:use",)))
        assert learner.get("/demo/voice").status_code == 200
        assert learner.get("/demo/tutor").status_code == 200
        assert learner.get("/docs").status_code == 200
        forbidden = learner.get("/dashboard")
        assert forbidden.status_code == 403 and "ai:admin" in forbidden.text
        assert learner.get("/dashboard/data").status_code == 403


def test_every_page_carries_a_strict_csp(cluster: Cluster, kit: AuthKit) -> None:
    with browser(cluster) as client:
        login(client, kit.token("ops", scopes=("ai:admin",)))
        for path in (
            "/",
            "/login",
            "/dashboard",
            "/demo/voice",
            "/demo/dance",
            "/demo/chat",
            "/demo/tutor",
            "/docs",
        ):
            resp = client.get(path)
            csp = resp.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
            assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, path
            assert resp.headers["x-frame-options"] == "DENY"
            # no inline script anywhere: every <script> has a src (JSON data blocks excepted)
            for tag in re.findall(r"<script\b[^>]*>", resp.text):
                assert "src=" in tag or 'type="application/json"' in tag, (path, tag)
            assert not re.search(r"<[^>]+\son[a-z]+=", resp.text), path  # no inline handlers
        assert client.get("/static/vendor/htmx/htmx.min.js").status_code == 200
        assert client.get("/static/vendor/uplot/LICENSE").status_code == 200
        assert client.get("/static/vendor/swagger-ui/LICENSE").status_code == 200


def test_a_pages_own_api_call_needs_the_csrf_header(cluster: Cluster, kit: AuthKit) -> None:
    with browser(cluster) as client:
        login(client, kit.token("learner", scopes=("ai:use",)))
        csrf = csrf_of(client.get("/demo/chat").text)
        assert client.get("/v1/models").status_code == 200  # safe method: the cookie suffices
        refused = client.post("/v1/chat/completions", json=CHAT)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
        stale = client.post("/v1/chat/completions", json=CHAT, headers={"X-CSRF-Token": "0" * 64})
        assert stale.status_code == 403
        ok = client.post("/v1/chat/completions", json=CHAT, headers={"X-CSRF-Token": csrf})
        assert ok.status_code == 200, ok.text
        assert ok.headers["x-megacity-model"] == "small-7b"
    # a request with a bearer token never looks at cookies or CSRF
    resp = httpx.post(f"{cluster.url}/v1/chat/completions", json=CHAT, headers=kit.headers())
    assert resp.status_code == 200


def test_the_tutor_page_calls_the_multimodal_api_with_its_cookie(
    cluster: Cluster, kit: AuthKit
) -> None:
    """The page offers every scenario and the zones with an LLM; its own multipart call to the
    tutor needs the CSRF header like any other, and streams the answer back."""
    with browser(cluster) as client:
        login(client, kit.token("learner", scopes=("ai:use",)))
        page = client.get("/demo/tutor")
        assert page.status_code == 200
        for scenario in ("auto", "dance_coach", "drama_coach", "homework", "general"):
            assert f'<option value="{scenario}">' in page.text
        assert '<option value="edu"' in page.text and '<option value="lite"' in page.text
        assert '<script src="/static/js/tutor.js" defer>' in page.text
        assert client.get("/static/js/tutor.js").status_code == 200
        csrf = csrf_of(page.text)
        fields = {"scenario": "general", "text": "What is 2 + 3?", "locale": "en", "stream": "true"}
        path = "/api/v1/ai/multimodal"
        multipart = {"x": ("", b"")}  # as the page's FormData sends it
        refused = client.post(path, data=fields, files=multipart, headers={"X-Zone": "edu"})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
        headers = {"X-Zone": "edu", "X-CSRF-Token": csrf}
        ok = client.post(path, data=fields, files=multipart, headers=headers)
        assert ok.status_code == 200, ok.text
        assert ok.headers["content-type"].startswith("text/event-stream")
        assert "event: stage" in ok.text and "event: result" in ok.text
    with browser(cluster) as anonymous:
        assert anonymous.post(path, data=fields).status_code == 401


def test_activation_is_confirmed_and_csrf_checked(cluster: Cluster, kit: AuthKit) -> None:
    admin = kit.headers("ops", scopes=("ai:admin",))
    with browser(cluster) as client:
        login(client, kit.token("ops", scopes=("ai:admin",)))
        csrf = csrf_of(client.get("/dashboard").text)
        confirm = client.get("/dashboard/models/kr-14b/confirm", params={"version": "v2"})
        assert confirm.status_code == 200 and "v1" in confirm.text and "v2" in confirm.text
        url = "/dashboard/models/kr-14b/activate"
        assert client.post(url, data={"version": "v2"}).status_code == 403
        done = client.post(url, data={"version": "v2", "csrf_token": csrf})
        assert done.status_code == 200 and 'id="registry-notice"' in done.text
        registry = httpx.get(f"{cluster.url}/api/v1/models/registry", headers=admin).json()
        assert (
            next(m for m in registry["models"] if m["name"] == "kr-14b")["active_version"] == "v2"
        )
        unknown = client.post(url, data={"version": "v9", "csrf_token": csrf})
        assert 'id="registry-error"' in unknown.text and "v9" in unknown.text
        client.post(url, data={"version": "v1", "csrf_token": csrf})


def test_the_dashboard_data_counts_what_went_through(cluster: Cluster, kit: AuthKit) -> None:
    admin = kit.headers("ops", scopes=("ai:admin",))
    user = kit.headers("learner-7")
    for _ in range(6):
        resp = httpx.post(
            f"{cluster.url}/v1/chat/completions", json=CHAT, headers={**user, "X-Zone": "lite"}
        )
        assert resp.status_code == 200
    stream = {**CHAT, "stream": True}
    with httpx.stream(
        "POST",
        f"{cluster.url}/v1/chat/completions",
        json=stream,
        headers={**user, "X-Zone": "lite"},
    ) as resp:
        assert resp.status_code == 200
        resp.read()
    refused = httpx.post(
        f"{cluster.url}/v1/chat/completions",
        json={**CHAT, "model": "big-34b"},
        headers={**user, "X-Zone": "lite"},
    )
    assert refused.status_code == 403  # not allowed in zone lite
    deadline = time.monotonic() + 20
    while True:
        data = httpx.get(f"{cluster.url}/dashboard/data?window=5m", headers=admin).json()
        routes = {(r["engine"], r["model"], r["zone"]): r for r in data["traffic"]["routes"]}
        row = routes.get(("llm", "small-7b", "lite"))
        if (row and row["requests"] >= 7) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert row is not None and row["requests"] == 7 and row["errors"] == 0
    assert row["p95_ms"] is not None and row["ttft_p50_ms"] is not None  # one stream
    zones = {z["zone"]: z for z in data["traffic"]["zones"]}
    assert zones["lite"]["requests"] == 7
    # refused before a model was chosen: counted, under no zone or model
    assert sum(z["rejected"] for z in zones.values()) == 1 == data["traffic"]["total"]["rejected"]
    nodes = {n["name"]: n for n in data["nodes"]}
    assert set(nodes) == {"seoul-a", "seoul-b", "tokyo", "cloud"}
    assert all(n["status"] == "ok" and n["breaker"] == "closed" for n in nodes.values())
    assert sum(n["traffic"]["requests"] for n in nodes.values() if n["traffic"]) >= 7
    assert data["jobs"]["backend"] == "embedded"
    assert data["shared"] is False  # no Redis in this cluster
    for window in ("1h", "24h"):
        later = httpx.get(f"{cluster.url}/dashboard/data?window={window}", headers=admin).json()
        assert later["traffic"]["total"]["requests"] >= 8


def test_the_explainer_answers_what_the_api_does(cluster: Cluster, kit: AuthKit) -> None:
    prompt = "이 논술 답안을 첨삭해 주세요: 기술은 인간을 행복하게 하는가?"
    body = {"model": "auto", "messages": [{"role": "user", "content": prompt}]}
    api = httpx.post(
        f"{cluster.url}/v1/chat/completions",
        json=body,
        headers={**kit.headers("ops"), "X-Zone": "edu"},
    )
    with browser(cluster) as client:
        login(client, kit.token("ops", scopes=("ai:admin",)))
        csrf = csrf_of(client.get("/dashboard").text)
        html = client.post(
            "/dashboard/explain", data={"prompt": prompt, "zone": "edu", "csrf_token": csrf}
        ).text
    tier = re.search(r'id="explain-tier"><b>([^<]+)</b>', html)
    model = re.search(r'id="explain-model"><b>([^<]+)</b>', html)
    assert tier and model, html
    assert tier.group(1) == api.headers["x-megacity-tier"] == "34b"
    assert model.group(1) == api.headers["x-megacity-model"]
    assert "question type essay" in html


def test_the_dashboard_data_shows_usage_by_user_group(cluster: Cluster, kit: AuthKit) -> None:
    """Two tokens naming two groups (`megacity token issue --group`): each group's requests,
    errors and the LLM tokens the engines reported, on the dashboard's data endpoint."""
    admin = kit.headers("ops", scopes=("ai:admin",))
    school_a = kit.headers("learner-a", group="school-a")
    school_b = kit.headers("learner-b", group="school-b")
    body = {**CHAT, "messages": [{"role": "user", "content": "What is a verb?"}]}
    for headers, times in ((school_a, 3), (school_b, 2)):
        for _ in range(times):
            resp = httpx.post(
                f"{cluster.url}/v1/chat/completions",
                json=body,
                headers={**headers, "X-Zone": "edu"},
            )
            assert resp.status_code == 200, resp.text
    refused = httpx.post(
        f"{cluster.url}/v1/chat/completions",
        json={**body, "model": "big-34b"},
        headers={**school_b, "X-Zone": "lite"},
    )
    assert refused.status_code == 403  # counted for school-b as refused
    deadline = time.monotonic() + 20
    while True:
        data = httpx.get(f"{cluster.url}/dashboard/data?window=5m", headers=admin).json()
        groups = {g["group"]: g for g in data["traffic"]["groups"]}
        a, b = groups.get("school-a"), groups.get("school-b")
        if (a and b and a["requests"] >= 3 and b["requests"] >= 3) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert a is not None and b is not None, data["traffic"]["groups"]
    assert (a["requests"], a["errors"], a["rejected"], a["tokens"]) == (3, 0, 0, 36)  # 12 each
    assert (b["requests"], b["errors"], b["rejected"], b["tokens"]) == (3, 0, 1, 24)
    assert a["p95_ms"] is not None and 0 < a["share"] < 1
    assert "-" in groups  # the other tests' tokens name no group
    # A service API key names its group the same way (megacity apikey create --group).
    from megacity.auth.apikeys import create_api_key
    from megacity.db import Database

    db = Database(f"sqlite:///{Path(cluster.extra_env['MEGACITY_DATA_DIR']) / 'megacity.db'}")
    db.upgrade()
    issued = create_api_key(db, "school-lms", ["ai:use"], None, group="school-lms")
    db.close()
    resp = httpx.post(
        f"{cluster.url}/v1/chat/completions",
        json=body,
        headers={"X-API-Key": issued.key, "X-User-Id": "learner-9", "X-Zone": "edu"},
    )
    assert resp.status_code == 200, resp.text
    deadline = time.monotonic() + 20
    lms = None
    while lms is None and time.monotonic() < deadline:
        data = httpx.get(f"{cluster.url}/dashboard/data?window=5m", headers=admin).json()
        lms = {g["group"]: g for g in data["traffic"]["groups"]}.get("school-lms")
        time.sleep(0 if lms else 0.2)
    assert lms is not None and (lms["requests"], lms["tokens"]) == (1, 12), data
    with browser(cluster) as client:
        login(client, kit.token("ops", scopes=("ai:admin",)))
        html = client.get("/dashboard?window=5m").text
    assert 'id="groups-table"' in html and 'data-group="school-a"' in html
