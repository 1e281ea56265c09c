"""Auth through the real router (uvicorn) on loopback: the 401/403 matrix, rotation, API keys.

The router trusts the regions of its topology (seoul, tokyo, us); keys live in a folder
of the test's own. Every route of the OpenAPI document is called without a credential.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from megacity.auth import generate_key, retire_key
from megacity.testing import AuthKit
from tests.api.cluster import Cluster, start_cluster

PUBLIC = {"/healthz", "/readyz", "/metrics", "/.well-known/jwks.json", "/api/v1/files/{key}"}
CHAT = {"model": "small-7b", "messages": [{"role": "user", "content": "What is 2 + 3?"}]}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, kit: AuthKit) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("auth")
    env = {
        **kit.env(reload_interval_s=0.2),
        "MEGACITY_DATA_DIR": str(tmp / "data"),
        "MEGACITY_AUTH_LEEWAY_S": "0",
        "MEGACITY_AUTH_API_KEY_CACHE_S": "0",
        "MEGACITY_LIMITS": '{"enabled": false}',
    }
    cluster = start_cluster(tmp, env=env)
    cluster.extra_env = env
    try:
        yield cluster
    finally:
        cluster.stop()


def _error(resp: httpx.Response) -> dict[str, str]:
    return resp.json()["error"]  # type: ignore[no-any-return]


def _auth_log(cluster: Cluster) -> list[str]:
    return [line for line in cluster.router.output().splitlines() if "megacity.auth" in line][-5:]


def test_every_route_needs_a_credential(cluster: Cluster, kit: AuthKit) -> None:
    admin = kit.headers("ops", scopes=("ai:admin",))
    spec = httpx.get(f"{cluster.url}/openapi.json", headers=admin).json()
    assert httpx.get(f"{cluster.url}/openapi.json").status_code == 401
    checked = 0
    with httpx.Client(base_url=cluster.url, timeout=10) as http:
        for path, operations in spec["paths"].items():
            url = path.replace("{", "").replace("}", "")  # any value: auth comes first
            for method in operations:
                resp = http.request(method.upper(), url)
                if path in PUBLIC:
                    assert resp.status_code != 401, (method, path)
                    continue
                checked += 1
                assert resp.status_code == 401, (method, path, resp.text)
                assert _error(resp)["code"] == "missing_credentials"
                assert resp.headers["www-authenticate"].startswith("Bearer")
        # A path that does not exist answers 401 too: a stranger learns nothing.
        assert http.get("/api/v1/secret-admin-thing").status_code == 401
    assert checked >= 25


def test_public_paths_and_jwks(cluster: Cluster, kit: AuthKit) -> None:
    assert httpx.get(f"{cluster.url}/healthz").status_code == 200
    assert httpx.get(f"{cluster.url}/metrics").status_code == 200
    jwks = httpx.get(f"{cluster.url}/.well-known/jwks.json").json()
    kids = {k["kid"] for k in jwks["keys"]}
    assert kit.kid in kids
    assert all("d" not in k for k in jwks["keys"])  # public halves only


def test_a_valid_token_works_with_the_openai_client(cluster: Cluster, kit: AuthKit) -> None:
    client = OpenAI(base_url=f"{cluster.url}/v1", api_key=kit.token(), max_retries=0, timeout=10)
    answer = client.chat.completions.create(**CHAT)  # type: ignore[call-overload]
    assert answer.choices[0].message.content


def test_every_invalid_token_gets_the_same_401(
    cluster: Cluster, kit: AuthKit, tmp_path: Path
) -> None:
    good = kit.token()
    header, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["scope"] = "ai:use ai:admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    stranger = AuthKit(tmp_path / "other", "seoul")  # same region name, another key
    untrusted = AuthKit(kit.keys_dir, "eu-west")  # a region this router does not trust
    expired = kit.token(ttl_s=1)
    time.sleep(2.1)
    bad = {
        "garbage": "not-a-token",
        "tampered": f"{header}.{forged}.{signature}",
        "no signature": f"{header}.{payload}.",
        "unknown kid": stranger.token(),
        "untrusted region": untrusted.token(),
        "expired": expired,
        "unknown api key": "mk_0123456789ab_" + "A" * 43,
    }
    bodies = set()
    for name, token in bad.items():
        resp = httpx.post(
            f"{cluster.url}/v1/chat/completions",
            json=CHAT,
            headers={"Authorization": f"Bearer {token}"},
        )
        assert resp.status_code == 401, name
        assert _error(resp)["code"] == "invalid_token", name
        bodies.add(resp.text)
    assert len(bodies) == 1  # no oracle: the reason is in the router's log only
    assert "invalid or expired" in bodies.pop()


def test_scope_zone_and_user_are_enforced(cluster: Cluster, kit: AuthKit) -> None:
    with httpx.Client(base_url=cluster.url, timeout=10) as http:
        activate = "/api/v1/models/kr-14b/activate"
        user = http.post(activate, json={"version": "v2"}, headers=kit.headers())
        assert user.status_code == 403
        assert _error(user)["code"] == "insufficient_scope"
        admin = kit.headers("ops", scopes=("ai:admin",))
        assert http.post(activate, json={"version": "v2"}, headers=admin).status_code == 200
        assert http.post(activate, json={"version": "v1"}, headers=admin).status_code == 200
        assert http.get("/api/v1/ai/bias-report", headers=kit.headers()).status_code == 403

        lite_only = kit.headers(zones=("lite",))
        other = http.post("/v1/chat/completions", json=CHAT, headers=lite_only)
        assert other.status_code == 403  # no X-Zone: the default zone, edu, is not allowed
        assert _error(other)["code"] == "zone_forbidden"
        lite = http.post("/v1/chat/completions", json=CHAT, headers={**lite_only, "X-Zone": "lite"})
        assert lite.status_code == 200

        mismatch = http.post(
            "/v1/chat/completions", json=CHAT, headers={**kit.headers("a"), "X-User-Id": "b"}
        )
        assert mismatch.status_code == 403
        assert _error(mismatch)["code"] == "user_mismatch"


def test_jobs_belong_to_the_token_subject(cluster: Cluster, kit: AuthKit) -> None:
    """X-User-Id is no longer trusted: a job is owned by the token's subject."""
    with httpx.Client(base_url=cluster.url, timeout=10) as http:
        missing = http.get("/api/v1/jobs/" + "0" * 32, headers=kit.headers("alice"))
        assert missing.status_code == 404


def test_rotation_without_restart(cluster: Cluster, kit: AuthKit) -> None:
    old_token = kit.token()
    new_kid = generate_key(kit.keys_dir, "seoul")  # newest key signs from now on
    new_token = kit.token()
    assert json.loads(base64.urlsafe_b64decode(new_token.split(".")[0] + "=="))["kid"] == new_kid
    chat = f"{cluster.url}/v1/chat/completions"
    # The new kid is picked up without a restart (an unknown kid rescans the folder, at most
    # once a second), and tokens of the old key keep working until it is retired.
    for name, token in (("new", new_token), ("old", old_token)):
        assert _eventually(chat, token, 200), (name, _auth_log(cluster))
    assert retire_key(kit.keys_dir, "seoul", kit.kid)
    assert _eventually(chat, old_token, 401)  # retired: refused after the reload interval
    assert _eventually(chat, new_token, 200, within_s=0)
    kit.kid = new_kid


def _eventually(url: str, token: str, status: int, within_s: float = 5.0) -> bool:
    """Whether a chat with `token` answers `status` within `within_s` seconds."""
    deadline = time.monotonic() + within_s
    while True:
        resp = httpx.post(url, json=CHAT, headers={"Authorization": f"Bearer {token}"})
        if resp.status_code == status:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def _auth_log(cluster: Cluster) -> list[str]:
    return [line for line in cluster.router.output().splitlines() if "megacity.auth" in line][-5:]


def test_service_api_keys(cluster: Cluster, kit: AuthKit) -> None:
    env = {**cluster.router.env, **cluster.extra_env}
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "megacity",
            "apikey",
            "create",
            "--name",
            "lms",
            "--scopes",
            "ai:use",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    key = created.stdout.strip()
    assert key.startswith("mk_")
    headers = {"X-API-Key": key, "X-User-Id": "student-42"}
    with httpx.Client(base_url=cluster.url, timeout=10) as http:
        assert http.post("/v1/chat/completions", json=CHAT, headers=headers).status_code == 200
        key_id = key.split("_")[1]
        subprocess.run(
            [sys.executable, "-m", "megacity", "apikey", "revoke", key_id],
            env=env,
            capture_output=True,
            timeout=60,
            check=True,
        )
        revoked = http.post("/v1/chat/completions", json=CHAT, headers=headers)
        assert revoked.status_code == 401
    assert key not in cluster.router.output()
