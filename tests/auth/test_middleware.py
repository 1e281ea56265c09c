"""The auth guard on a real uvicorn server on loopback: the whole 401/403 matrix."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import uvicorn
from fastapi import FastAPI, Request

from megacity.api import errors
from megacity.api.auth import AuthMiddleware, jwks_router
from megacity.auth import (
    ApiKeyVerifier,
    Authenticator,
    KeySet,
    TokenVerifier,
    create_api_key,
    generate_key,
    issue_token,
    revoke_api_key,
)
from megacity.db import Database
from megacity.testing import free_port

REGION = "kr-seoul"
ZONE = "mpcstudy"  # the router's default zone


@dataclass
class Servers:
    guarded: httpx.Client
    open: httpx.Client
    keys: KeySet  # every region on disk: the issuing side
    db: Database
    keys_dir: Path

    def token(self, region: str = REGION, **overrides: Any) -> str:
        claims: dict[str, Any] = {"subject": "user-1", "scopes": ["ai:use"], "zones": [ZONE]}
        claims["ttl_s"] = 600
        claims.update(overrides)
        return issue_token(self.keys, region, **claims)


def _app(authenticator: Authenticator | None, keys: KeySet | None, enabled: bool) -> FastAPI:
    app = FastAPI()
    errors.install(app)

    @app.get("/api/v1/whoami")
    async def whoami(request: Request) -> dict[str, Any]:
        state = request.scope.get("state", {})
        principal = state["principal"]
        return {
            "subject": principal.subject,
            "kind": principal.kind,
            "user_id": state.get("user_id"),
            "x_user_id": request.headers.get("x-user-id"),
        }

    @app.post("/api/v1/models/{name}/activate")
    async def activate(name: str) -> dict[str, str]:
        return {"activated": name}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/v1/files/{key:path}")
    async def files(key: str) -> dict[str, str]:
        return {"file": key}

    app.include_router(jwks_router(keys))
    app.add_middleware(
        AuthMiddleware, authenticator=authenticator, enabled=enabled, default_zone=ZONE
    )
    return app


@contextlib.contextmanager
def _serve(app: FastAPI) -> Iterator[httpx.Client]:
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    root = tmp_path_factory.mktemp("auth")
    keys_dir = root / "keys"
    generate_key(keys_dir, REGION)
    generate_key(keys_dir, "eu-west")  # on disk, but this router does not trust it
    trusted = KeySet(keys_dir, trusted_regions=[REGION])
    db = Database(f"sqlite:///{root / 'megacity.db'}")
    db.upgrade()
    authenticator = Authenticator(TokenVerifier(trusted), ApiKeyVerifier(db, cache_s=0))
    with (
        _serve(_app(authenticator, trusted, enabled=True)) as guarded,
        _serve(_app(None, None, enabled=False)) as open_,
    ):
        yield Servers(guarded, open_, KeySet(keys_dir), db, keys_dir)
    db.close()


def _error(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body: dict[str, Any] = resp.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    return body


def _bearer(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


def test_no_credentials_is_401_missing_credentials(servers: Servers) -> None:
    resp = servers.guarded.get("/api/v1/whoami")
    body = _error(resp, 401, "missing_credentials")
    assert body["error"]["message"] == "authentication required"
    assert body["error"]["type"] == "authentication_error"
    assert resp.headers["www-authenticate"] == 'Bearer realm="megacity"'


def _invalid_credentials(servers: Servers) -> dict[str, dict[str, str]]:
    """Every kind of bad credential, as request headers."""
    good = servers.token()
    header, payload, signature = good.split(".")
    tampered = jwt.api_jws.base64url_encode(
        jwt.api_jws.base64url_decode(payload).replace(b"ai:use", b"ai:adm")
    ).decode()
    _, alg, private = servers.keys.signing_key(REGION)
    revoked = create_api_key(servers.db, "revoked-svc", ["ai:use"], None)
    revoke_api_key(servers.db, revoked.id)
    return {
        "garbage": _bearer("garbage"),
        "not bearer": {"Authorization": f"Basic {good}"},
        "expired": _bearer(servers.token(now=time.time() - 7200, ttl_s=60)),
        "tampered": _bearer(f"{header}.{tampered}.{signature}"),
        "bad signature": _bearer(f"{header}.{payload}.{signature[::-1]}"),
        "unknown kid": _bearer(
            jwt.encode({"sub": "x"}, private, algorithm=alg, headers={"kid": "A" * 16})
        ),
        "untrusted region": _bearer(servers.token(region="eu-west")),
        "bad api key": {"X-API-Key": "mk_000000000000_" + "A" * 43},
        "revoked api key": _bearer(revoked.key),
        "two credentials": _bearer(good, **{"X-API-Key": revoked.key}),
    }


def test_every_invalid_credential_gets_the_same_401(
    servers: Servers, caplog: pytest.LogCaptureFixture
) -> None:
    bodies = set()
    with caplog.at_level(logging.INFO, logger="megacity.auth"):
        for cause, headers in _invalid_credentials(servers).items():
            resp = servers.guarded.get("/api/v1/whoami", headers=headers)
            body = _error(resp, 401, "invalid_token")
            assert body["error"]["message"] == "invalid or expired credentials", cause
            expected = 'Bearer realm="megacity", error="invalid_token"'
            assert resp.headers["www-authenticate"] == expected, cause
            bodies.add(resp.content)
    assert len(bodies) == 1  # no oracle: the body never says which check failed
    reasons = " | ".join(str(getattr(r, "reason", "")) for r in caplog.records)
    for reason in ("expired", "bad signature", "unknown kid", "untrusted region", "revoked"):
        assert reason in reasons  # the real reason is in the server log ...
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    for headers in _invalid_credentials(servers).values():
        for value in headers.values():
            credential = value.removeprefix("Bearer ").removeprefix("Basic ")
            assert credential not in logged  # ... and never the credential itself


def test_a_valid_token_reaches_the_handler_as_its_subject(servers: Servers) -> None:
    resp = servers.guarded.get("/api/v1/whoami", headers=_bearer(servers.token()))
    assert resp.status_code == 200
    assert resp.json() == {
        "subject": "user-1",
        "kind": "token",
        "user_id": "user-1",
        "x_user_id": None,
    }
    same_user = _bearer(servers.token(), **{"X-User-Id": "user-1", "X-Zone": ZONE})
    assert servers.guarded.get("/api/v1/whoami", headers=same_user).status_code == 200


def test_a_token_for_another_user_id_is_403(servers: Servers) -> None:
    headers = _bearer(servers.token(), **{"X-User-Id": "user-2"})
    _error(servers.guarded.get("/api/v1/whoami", headers=headers), 403, "user_mismatch")


def test_an_api_key_may_act_for_a_user(servers: Servers) -> None:
    issued = create_api_key(servers.db, "lms-backend", ["ai:use"], [ZONE])
    resp = servers.guarded.get(
        "/api/v1/whoami", headers={"X-API-Key": issued.key, "X-User-Id": "learner-7"}
    )
    assert resp.status_code == 200
    assert resp.json()["user_id"] == "learner-7" and resp.json()["kind"] == "api_key"
    alone = servers.guarded.get("/api/v1/whoami", headers=_bearer(issued.key)).json()
    assert alone["user_id"] == alone["subject"] == "service:lms-backend"


def test_a_missing_scope_is_403_insufficient_scope(servers: Servers) -> None:
    resp = servers.guarded.post("/api/v1/models/m/activate", headers=_bearer(servers.token()))
    _error(resp, 403, "insufficient_scope")
    assert 'scope="ai:admin"' in resp.headers["www-authenticate"]
    admin = _bearer(servers.token(scopes=["ai:admin"]))
    assert servers.guarded.post("/api/v1/models/m/activate", headers=admin).status_code == 200
    assert servers.guarded.get("/api/v1/whoami", headers=admin).status_code == 200  # implies use


def test_a_zone_outside_the_credential_is_403(servers: Servers) -> None:
    token = servers.token(zones=[ZONE, "my-ktube"])
    for zone in (ZONE, "my-ktube"):
        resp = servers.guarded.get("/api/v1/whoami", headers=_bearer(token, **{"X-Zone": zone}))
        assert resp.status_code == 200
    other = _bearer(token, **{"X-Zone": "univprep"})
    _error(servers.guarded.get("/api/v1/whoami", headers=other), 403, "zone_forbidden")
    # No X-Zone: the router's default zone is the one checked.
    elsewhere = _bearer(servers.token(zones=["univprep"]))
    _error(servers.guarded.get("/api/v1/whoami", headers=elsewhere), 403, "zone_forbidden")
    everywhere = _bearer(servers.token(zones=["*"]), **{"X-Zone": "univprep"})
    assert servers.guarded.get("/api/v1/whoami", headers=everywhere).status_code == 200


def test_public_paths_need_no_credentials(servers: Servers) -> None:
    assert servers.guarded.get("/healthz").json() == {"status": "ok"}
    assert servers.guarded.get("/api/v1/files/a/b.mp4").json() == {"file": "a/b.mp4"}
    resp = servers.guarded.get("/.well-known/jwks.json")
    assert resp.status_code == 200
    assert resp.headers["cache-control"] == "public, max-age=300"
    jwks = resp.json()
    assert [k["region"] for k in jwks["keys"]] == [REGION]  # the trusted region only
    assert servers.open.get("/.well-known/jwks.json").json() == {"keys": []}


def test_unknown_paths_and_docs_ask_for_credentials_first(servers: Servers) -> None:
    # /docs is a page: it sends a visitor without a session to the login form itself
    # (tests/api/test_pages_http.py); the document it shows needs a credential.
    for path in ("/nothing-here", "/openapi.json", "/healthz/", "/HEALTHZ"):
        _error(servers.guarded.get(path), 401, "missing_credentials")
    # A non-GET on a public GET path is not public.
    _error(servers.guarded.post("/healthz"), 401, "missing_credentials")
    resp = servers.guarded.get("/nothing-here", headers=_bearer(servers.token()))
    assert resp.status_code == 404


def test_with_auth_off_everyone_is_anonymous(servers: Servers) -> None:
    resp = servers.open.get("/api/v1/whoami", headers={"X-User-Id": "user-9"})
    assert resp.status_code == 200
    assert resp.json() == {
        "subject": "anonymous",
        "kind": "anonymous",
        "user_id": None,
        "x_user_id": "user-9",
    }
    assert servers.open.post("/api/v1/models/m/activate").status_code == 200
