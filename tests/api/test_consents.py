"""Consent records through a real router process: CRUD, validation, owner isolation, revocation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.api.test_feedback import start_safety_router

CONSENTS = "/api/v1/consents"
STUDIO = {"X-User-Id": "studio-1"}


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    router = start_safety_router(tmp_path_factory.mktemp("consents"))
    try:
        with httpx.Client(base_url=router.url, timeout=10) as client:
            yield client
    finally:
        router.stop()


def _in(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def _body(**changes: Any) -> dict[str, Any]:
    return {
        "subject_id": "singer-1",
        "granted_by": "singer-1",
        "scopes": ["voice_synthesis", "voice_clone"],
        "evidence": "signed form 2025-017",
        **changes,
    }


def _create(http: httpx.Client, user: str = "studio-1", **changes: Any) -> dict[str, Any]:
    r = http.post(CONSENTS, json=_body(**changes), headers={"X-User-Id": user})
    assert r.status_code == 201, r.text
    record: dict[str, Any] = r.json()
    assert r.headers["location"] == f"{CONSENTS}/{record['id']}"
    return record


def _error(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    error: dict[str, Any] = r.json()["error"]
    if code is not None:
        assert error["code"] == code
    return error


def test_a_record_is_created_and_read_back(http: httpx.Client) -> None:
    record = _create(http, expires_at=_in(365))
    assert record["scopes"] == ["voice_clone", "voice_synthesis"]
    assert record["status"] == "active" and record["revoked_at"] is None
    assert record["evidence"] == "signed form 2025-017"
    again = http.get(f"{CONSENTS}/{record['id']}", headers=STUDIO)
    assert again.status_code == 200 and again.json() == record


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        ({"scopes": []}, "scopes"),
        ({"scopes": ["voice_clone", "voice_clone"]}, "scopes"),
        ({"scopes": ["mind_reading"]}, "scopes.0"),
        ({"evidence": "x" * 513}, "evidence"),
        ({"evidence": "form\x00 17"}, "evidence"),
        ({"evidence": ""}, "evidence"),
        ({"expires_at": _in(-1)}, "expires_at"),
        ({"expires_at": _in(6 * 365)}, "expires_at"),
        ({"expires_at": "2030-01-01T00:00:00"}, "expires_at"),  # no timezone
        ({"subject_id": "singer 1"}, "subject_id"),
        ({"granted_by": "g" * 129}, "granted_by"),
        ({"subject_id": None}, "subject_id"),
        ({"face": "attached photo"}, "face"),
    ],
)
def test_bad_records_are_refused(http: httpx.Client, changes: dict[str, Any], param: str) -> None:
    error = _error(http.post(CONSENTS, json=_body(**changes), headers=STUDIO), 400)
    assert error["param"] == param


def test_anonymous_callers_get_401(http: httpx.Client) -> None:
    _error(http.post(CONSENTS, json=_body()), 401, "user_required")
    _error(http.get(CONSENTS), 401, "user_required")


def test_records_are_listed_per_owner_and_hidden_from_others(http: httpx.Client) -> None:
    first = _create(http, "studio-2")
    second = _create(http, "studio-2", subject_id="dancer-9", scopes=["face_synthesis"])
    listed = http.get(CONSENTS, headers={"X-User-Id": "studio-2"}).json()
    assert listed["object"] == "list" and [c["id"] for c in listed["data"]] == [
        second["id"],
        first["id"],
    ]
    one = http.get(CONSENTS, params={"subject_id": "dancer-9"}, headers={"X-User-Id": "studio-2"})
    assert [c["id"] for c in one.json()["data"]] == [second["id"]]
    paged = http.get(CONSENTS, params={"limit": 1, "offset": 1}, headers={"X-User-Id": "studio-2"})
    assert [c["id"] for c in paged.json()["data"]] == [first["id"]]
    intruder = {"X-User-Id": "intruder"}
    assert http.get(CONSENTS, headers=intruder).json()["data"] == []
    _error(http.get(f"{CONSENTS}/{first['id']}", headers=intruder), 404, "consent_not_found")
    _error(http.post(f"{CONSENTS}/{first['id']}/revoke", headers=intruder), 404)
    _error(http.get(f"{CONSENTS}/{'0' * 32}", headers=STUDIO), 404, "consent_not_found")
    _error(http.get(f"{CONSENTS}/not-an-id", headers=STUDIO), 404, "consent_not_found")
    _error(http.get(CONSENTS, params={"limit": 0}, headers=STUDIO), 400)
    _error(http.get(CONSENTS, params={"subject_id": "a b"}, headers=STUDIO), 400)


def test_the_subject_revokes_and_revoking_again_changes_nothing(http: httpx.Client) -> None:
    record = _create(http, subject_id="singer-3", granted_by="guardian-3")
    by_subject = http.post(f"{CONSENTS}/{record['id']}/revoke", headers={"X-User-Id": "singer-3"})
    assert by_subject.status_code == 200, by_subject.text
    revoked = by_subject.json()
    assert revoked["status"] == "revoked" and revoked["revoked_by"] == "singer-3"
    assert revoked["revoked_at"] is not None
    again = http.post(f"{CONSENTS}/{record['id']}/revoke", headers=STUDIO).json()
    assert again["revoked_at"] == revoked["revoked_at"] and again["revoked_by"] == "singer-3"
    assert http.get(f"{CONSENTS}/{record['id']}", headers=STUDIO).json()["status"] == "revoked"
    # The guardian who granted it is neither owner nor subject: the record is not theirs.
    _error(http.post(f"{CONSENTS}/{record['id']}/revoke", headers={"X-User-Id": "guardian-3"}), 404)


def test_the_openapi_document_describes_the_routes(http: httpx.Client) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    post = paths[CONSENTS]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["subject_id", "granted_by", "scopes"]
    assert {"201", "400", "401"} <= set(post["responses"])
    assert set(paths[CONSENTS]) == {"get", "post"}
    assert "post" in paths[CONSENTS + "/{consent_id}/revoke"]
