"""Job endpoints: ``GET /api/v1/jobs/{id}`` (status, progress, result) and ``DELETE`` (cancel).

Only a job's owner (X-User-Id; auth comes later) sees it: anyone else gets 404, never
403, so job ids do not leak. Endpoints that start heavy work call `submit_job` and
answer with `accepted`: 202, the job's id and status, and its URL in Location.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from megacity.api.context import routing_context, user_key
from megacity.api.schemas import ERROR_RESPONSES, ErrorEnvelope
from megacity.errors import BadRequest, MegaCityError, NotFound

if TYPE_CHECKING:  # the job queue and database load on first use, not at start-up
    from megacity.db.jobs import Priority
    from megacity.db.models import Job
    from megacity.jobs.service import JobService
    from megacity.storage import ObjectStore

router = APIRouter(tags=["jobs"])

PREFIX = "/api/v1/jobs"
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")
_IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,200}$")
Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class JobConflict(MegaCityError):
    """The job is running or finished, so it can no longer be cancelled."""

    status = 409
    type = "invalid_request_error"
    code = "job_not_cancellable"


class JobError(BaseModel):
    code: str
    message: str


class JobResponse(BaseModel):
    id: str
    kind: str
    status: Status
    priority: Literal["high", "normal", "low"]
    progress: float = Field(ge=0, le=1)
    result: Any | None = None
    error: JobError | None = None
    attempts: int
    max_attempts: int
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


class JobAccepted(BaseModel):
    id: str
    status: Status
    status_url: str


def job_view(job: Job, store: ObjectStore) -> dict[str, Any]:
    """The JSON a client sees for a job (JobResponse), its stored files with fresh URLs."""
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "priority": _priority_label(job.priority),
        "progress": job.progress,
        "result": with_urls(job.result, store),
        "error": job.error,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


def with_urls(result: Any, store: ObjectStore) -> Any:
    """The result with a signed `url` beside each stored file's `key` (at the top level, or in
    a list at the top level). Results keep keys, not URLs, which would expire in the row."""
    if not isinstance(result, dict):
        return result

    def signed(item: Any) -> Any:
        if isinstance(item, dict) and isinstance(item.get("key"), str):
            return {**item, "url": store.signed_url(item["key"])}
        return item

    return {
        name: [signed(v) for v in value] if isinstance(value, list) else signed(value)
        for name, value in result.items()
    }


def job_service(request: Request) -> JobService:
    """The JobService of this app (`app.state.services.jobs`)."""
    jobs: JobService = request.app.state.services.jobs
    return jobs


def owner_of(request: Request) -> str:
    """The caller's user id (X-User-Id), "" when anonymous."""
    return routing_context(request).user_id or ""


async def submit_job(
    request: Request,
    kind: str,
    payload: Any,
    *,
    priority: Priority | str = "normal",
    max_attempts: int | None = None,
) -> Response:
    """Queue a job for the caller (honouring an Idempotency-Key header); the 202 answer."""
    job = await submit(request, kind, payload, priority=priority, max_attempts=max_attempts)
    return accepted(job)


async def submit(
    request: Request,
    kind: str,
    payload: Any,
    *,
    priority: Priority | str = "normal",
    max_attempts: int | None = None,
) -> Job:
    """Queue a job for the caller, or find the one its Idempotency-Key header names.

    Without one, X-MegaCity-Retry-Key stands in: the load balancer's id of the client's
    request (examples/nginx.conf sets it to nginx's $request_id, whatever the client
    sent), the same on every replica nginx resends the request to — so a submission
    resent after a replica died with it finds the job the first one queued.
    """
    key = request.headers.get("idempotency-key") or None
    if key is None and (retry := request.headers.get("x-megacity-retry-key")):
        key = f"retry:{retry}"
    if key is not None and not _IDEMPOTENCY_KEY.match(key):
        raise BadRequest(
            "header Idempotency-Key has an invalid value", code="invalid_header", param=key
        )
    job, _ = await job_service(request).submit(
        kind,
        payload,
        owner_id=owner_of(request),
        priority=priority,
        idempotency_key=key,
        max_attempts=max_attempts,
        region=routing_context(request).region,
    )
    await request.app.state.services.reads.wrote(user_key(request))
    return job


def accepted(job: Job) -> Response:
    """202 Accepted: {"id", "status", "status_url"}, with the status URL in Location."""
    url = f"{PREFIX}/{job.id}"
    body = {"id": job.id, "status": job.status, "status_url": url}
    return Response(orjson.dumps(body), 202, {"Location": url}, media_type="application/json")


def _check_id(job_id: str) -> None:
    if not _JOB_ID.match(job_id):
        raise NotFound("no such job", code="job_not_found")


@router.get(
    PREFIX + "/{job_id}",
    response_model=JobResponse,
    responses=ERROR_RESPONSES,
    summary="A job's status, progress, and result or error",
)
async def get_job(job_id: str, request: Request) -> Response:
    _check_id(job_id)
    session = await request.app.state.services.reads.session(user_key(request))
    job = await job_service(request).get(job_id, owner_of(request), session=session)
    if job is None:
        raise NotFound("no such job", code="job_not_found")
    return _json(job_view(job, request.app.state.services.storage))


@router.delete(
    PREFIX + "/{job_id}",
    response_model=JobResponse,
    responses={**ERROR_RESPONSES, 409: {"model": ErrorEnvelope}},
    summary="Cancel a queued job (409 once it runs or has finished)",
)
async def cancel_job(job_id: str, request: Request) -> Response:
    _check_id(job_id)
    from megacity.jobs.service import CancelResult

    outcome, job = await job_service(request).cancel(job_id, owner_of(request))
    await request.app.state.services.reads.wrote(user_key(request))
    if outcome is CancelResult.NOT_FOUND or job is None:
        raise NotFound("no such job", code="job_not_found")
    if outcome is CancelResult.NOT_QUEUED:
        raise JobConflict(f"the job is {job.status} and can no longer be cancelled")
    return _json(job_view(job, request.app.state.services.storage))


def _priority_label(value: int) -> str:
    from megacity.db.jobs import Priority

    return Priority(value).label


def _json(data: dict[str, Any]) -> Response:
    return Response(orjson.dumps(data), 200, media_type="application/json")
