"""Feedback on AI results, and the bias report built from it.

* ``POST /api/v1/ai/feedback`` — whether a result was right, with the learner's coarse,
  optional buckets (age band, first language, region, gender); the zone is the
  request's (X-Zone, else the default), the owner the requesting user's keyed hash
  (the report needs no identity, so none is stored).
* ``GET /api/v1/ai/bias-report`` — accuracy per group of each bucket, each group tested
  against the rest (see megacity.safety.bias for the rule that flags a disparity).
  ``since``/``until`` are ISO-8601 datetimes, read as UTC when they carry no offset;
  the window is ``since <= created_at < until``. Admin-only (the auth layer says so).
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from megacity.api.context import read_json, routing_context, user_key, validate
from megacity.api.safety_schemas import (
    ZONE_ID,
    BiasReport,
    EngineName,
    FeedbackCreate,
    FeedbackCreated,
    json_body,
)
from megacity.api.schemas import ERROR_RESPONSES
from megacity.api.services import Services
from megacity.errors import BadRequest
from megacity.safety.bias import DimensionReport, analyse

if TYPE_CHECKING:  # SQLAlchemy loads with the first feedback request, not at start-up
    from sqlalchemy.orm import Session

    from megacity.db.replica import SessionFactory

router = APIRouter(tags=["feedback"])

PREFIX = "/api/v1/ai"
MAX_BODY = 4096  # bytes: a feedback body is a few short fields
DISPARITY_THRESHOLD = 0.8  # the four-fifths rule


@router.post(
    f"{PREFIX}/feedback",
    status_code=201,
    response_model=FeedbackCreated,
    responses=ERROR_RESPONSES,
    summary="Record whether an AI result was right (with optional coarse learner buckets)",
    openapi_extra=json_body(FeedbackCreate),
)
async def post_feedback(request: Request) -> Response:
    services: Services = request.app.state.services
    ctx = routing_context(request)
    zone_id, _ = services.selector.zone(ctx)
    request.scope["state"]["route"] = ("safety", "feedback", "", zone_id)
    body = validate(FeedbackCreate, await read_json(request, MAX_BODY))
    owner = user_key(request) if ctx.user_id else None

    def store() -> dict[str, Any]:
        from megacity.db.feedback import record_feedback

        with services.db.session() as session:
            row = record_feedback(session, **body.model_dump(), zone=zone_id, owner_id=owner)
            return {"id": row.id, "result_id": row.result_id, "created_at": row.created_at}

    created = await asyncio.to_thread(store)
    await services.reads.wrote(user_key(request))
    return _json(created, 201)


@router.get(
    f"{PREFIX}/bias-report",
    response_model=BiasReport,
    responses=ERROR_RESPONSES,
    summary="Accuracy per demographic group, with the groups that fall behind flagged",
)
async def bias_report(
    request: Request,
    engine: Annotated[EngineName | None, Query()] = None,
    zone: Annotated[str | None, Query(pattern=ZONE_ID)] = None,
    since: Annotated[datetime | None, Query(description="ISO-8601; UTC when no offset")] = None,
    until: Annotated[
        datetime | None, Query(description="ISO-8601, exclusive; UTC when no offset")
    ] = None,
    min_samples: Annotated[int, Query(ge=1, le=1_000_000)] = 30,
    alpha: Annotated[float, Query(gt=0, le=0.5)] = 0.05,
) -> Response:
    services: Services = request.app.state.services
    request.scope["state"]["route"] = ("safety", "bias-report", "", zone or "")
    if zone is not None and zone not in services.selector.zones:
        raise BadRequest(f"unknown zone {zone!r}", code="unknown_zone", param="zone")
    since, until = _utc(since, "since"), _utc(until, "until")
    if since is not None and until is not None and since >= until:
        raise BadRequest("`since` must be before `until`", code="invalid_window", param="since")
    window: dict[str, Any] = {"engine": engine, "zone": zone, "since": since, "until": until}
    opened = await services.reads.session(user_key(request))  # lag-tolerant: the replica
    report = await asyncio.to_thread(_report, opened, window, min_samples, alpha)
    report["parameters"] = {
        **window,
        "min_samples": min_samples,
        "alpha": alpha,
        "disparity_threshold": DISPARITY_THRESHOLD,
    }
    return _json(report, 200)


def _report(
    opened: SessionFactory, window: dict[str, Any], min_samples: int, alpha: float
) -> dict[str, Any]:
    """Counts from the database (one transaction, so they agree), analysed per dimension."""
    from megacity.db.feedback import DIMENSIONS, overall

    with opened() as session:
        total = overall(session, **window)
        dimensions = [
            _dimension(session, d, window, total.n, min_samples, alpha) for d in DIMENSIONS
        ]
    return {
        "overall": {
            "n": total.n,
            "correct": total.correct,
            "accuracy": total.accuracy if total.n else None,
        },
        "dimensions": dimensions,
        "flagged": any(d["flagged"] for d in dimensions),
    }


def _dimension(
    session: Session,
    dimension: str,
    window: dict[str, Any],
    total: int,
    min_samples: int,
    alpha: float,
) -> dict[str, Any]:
    from megacity.db.feedback import group_counts

    counts = group_counts(session, dimension, **window)
    report: DimensionReport = analyse(
        dimension,
        counts,
        min_samples=min_samples,
        alpha=alpha,
        disparity_threshold=DISPARITY_THRESHOLD,
    )
    return {
        "dimension": report.dimension,
        "groups": [asdict(g) for g in report.groups],
        "min_disparity_ratio": report.min_disparity_ratio,
        "flagged": report.flagged,
        "unreported": total - sum(c.n for c in counts),
    }


def _utc(moment: datetime | None, param: str) -> datetime | None:
    """The moment in UTC (naive: taken as UTC); 400 when it has no UTC equivalent."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 pushed over the edge by its offset
        raise BadRequest(f"`{param}` is out of range", code="invalid_window", param=param) from None


def _json(data: dict[str, Any], status: int) -> Response:
    return Response(orjson.dumps(data), status, media_type="application/json")
