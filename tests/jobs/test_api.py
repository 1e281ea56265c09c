"""GET/DELETE /api/v1/jobs/{id} and the 202 submit helper, through a real HTTP server on
127.0.0.1 (a minimal app around the jobs router; no worker, so jobs stay queued)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from starlette.responses import Response

from megacity.api import errors, jobs
from megacity.db import Database
from megacity.db import jobs as repo
from megacity.db.replica import MemoryWriteMarks, Reads
from megacity.jobs import JobService
from megacity.observability.anonymize import UserHasher
from megacity.storage import LocalObjectStore, URLSigner
from megacity.testing import free_port


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Database]]:
    db = Database(f"sqlite:///{tmp_path / 'megacity.db'}")
    db.upgrade()
    app = FastAPI()
    signer = URLSigner(b"k" * 32, "http://127.0.0.1:1")
    store = LocalObjectStore(tmp_path / "objects", signer)
    app.state.services = SimpleNamespace(
        jobs=JobService(db),
        storage=store,
        reads=Reads(db, MemoryWriteMarks()),
        hasher=UserHasher(b"h" * 32),
    )
    errors.install(app)
    app.include_router(jobs.router)

    @app.post("/test/submit")
    async def submit(request: Request) -> Response:
        return await jobs.submit_job(request, "noop", {"x": 1}, priority="high")

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(uv.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", db
    uv.should_exit = True
    thread.join(timeout=10)
    db.close()


def test_submit_read_cancel_and_owner_checks(server: tuple[str, Database]) -> None:
    base, db = server
    alice = {"X-User-Id": "alice"}
    with httpx.Client(base_url=base, timeout=5) as http:
        sent = http.post("/test/submit", headers={**alice, "Idempotency-Key": "k1"})
        assert sent.status_code == 202
        body = sent.json()
        assert body["status"] == "queued" and sent.headers["location"] == body["status_url"]
        again = http.post("/test/submit", headers={**alice, "Idempotency-Key": "k1"})
        assert again.json()["id"] == body["id"]  # a client retry: the same job

        got = http.get(body["status_url"], headers=alice)
        assert got.status_code == 200
        view = got.json()
        assert (view["kind"], view["priority"], view["progress"]) == ("noop", "high", 0.0)
        assert view["created_at"].endswith("+00:00")

        for headers in ({"X-User-Id": "bob"}, {}):  # others: 404, not 403
            for method in ("GET", "DELETE"):
                other = http.request(method, body["status_url"], headers=headers)
                assert other.status_code == 404
                assert other.json()["error"]["code"] == "job_not_found"
        assert http.get("/api/v1/jobs/not-an-id", headers=alice).status_code == 404

        cancelled = http.delete(body["status_url"], headers=alice)
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"

        running = http.post("/test/submit", headers=alice).json()
        with db.session() as s:
            repo.claim_job(s, running["id"], lease_s=60)
        refused = http.delete(running["status_url"], headers=alice)
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "job_not_cancellable"


def test_a_resent_submission_finds_its_job_by_the_balancer_s_retry_key(
    server: tuple[str, Database],
) -> None:
    """nginx resends a job submission with the same X-MegaCity-Retry-Key ($request_id)."""
    base, _ = server
    alice = {"X-User-Id": "alice"}
    with httpx.Client(base_url=base, timeout=5) as http:
        first = http.post("/test/submit", headers={**alice, "X-MegaCity-Retry-Key": "a" * 32})
        resent = http.post("/test/submit", headers={**alice, "X-MegaCity-Retry-Key": "a" * 32})
        other = http.post("/test/submit", headers={**alice, "X-MegaCity-Retry-Key": "b" * 32})
        plain = http.post("/test/submit", headers=alice)
        assert first.json()["id"] == resent.json()["id"]
        assert len({first.json()["id"], other.json()["id"], plain.json()["id"]}) == 3
        # The client's own Idempotency-Key wins over the balancer's.
        mine = {**alice, "Idempotency-Key": "mine", "X-MegaCity-Retry-Key": "c" * 32}
        again = {**alice, "Idempotency-Key": "mine", "X-MegaCity-Retry-Key": "d" * 32}
        assert (
            http.post("/test/submit", headers=mine).json()["id"]
            == (http.post("/test/submit", headers=again).json()["id"])
        )
