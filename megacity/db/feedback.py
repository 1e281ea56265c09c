"""Feedback on AI results: record one, and count right/wrong per demographic group.

Rows whose bucket is empty (the learner did not say) are left out of a dimension's
groups: "did not say" is no demographic group, and comparing it with the others would
compare a mix of every group. `overall` counts them, so a report can show how many
rows each dimension could not place (overall.n minus the groups' sum).

Time windows are half-open: ``since <= created_at < until``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Select, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from megacity.db.models import Feedback, utcnow
from megacity.safety.bias import GroupCount

DIMENSIONS = ("age_band", "l1_language", "region", "gender")

_COLUMNS: dict[str, InstrumentedAttribute[str | None]] = {
    "age_band": Feedback.age_band,
    "l1_language": Feedback.l1_language,
    "region": Feedback.region,
    "gender": Feedback.gender,
}


def record_feedback(
    session: Session,
    *,
    result_id: str,
    is_correct: bool,
    engine: str | None = None,
    zone: str | None = None,
    age_band: str | None = None,
    l1_language: str | None = None,
    region: str | None = None,
    gender: str | None = None,
    owner_id: str | None = None,
    now: datetime | None = None,
) -> Feedback:
    """Store one judgement of a result (the caller has validated the buckets)."""
    row = Feedback(
        id=uuid.uuid4().hex,
        result_id=result_id,
        is_correct=is_correct,
        engine=engine,
        zone=zone,
        age_band=age_band,
        l1_language=l1_language,
        region=region,
        gender=gender,
        owner_id=owner_id,
        created_at=now or utcnow(),
    )
    session.add(row)
    session.flush()
    return row


def group_counts(
    session: Session,
    dimension: str,
    *,
    engine: str | None = None,
    zone: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[GroupCount]:
    """Rows and right answers per group of `dimension` (one of DIMENSIONS), by group name."""
    column = _COLUMNS.get(dimension)
    if column is None:
        raise ValueError(f"unknown dimension {dimension!r}: use one of {', '.join(DIMENSIONS)}")
    query = (
        select(column, func.count(), _correct())
        .where(column.is_not(None))
        .group_by(column)
        .order_by(column)
    )
    rows = session.execute(_window(query, engine, zone, since, until)).all()
    return [GroupCount(str(group), int(n), int(correct)) for group, n, correct in rows]


def overall(
    session: Session,
    *,
    engine: str | None = None,
    zone: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> GroupCount:
    """Rows and right answers in the window, whatever their buckets (group "all")."""
    query = select(func.count(), _correct())
    n, correct = session.execute(_window(query, engine, zone, since, until)).one()
    return GroupCount("all", int(n), int(correct))


def _correct() -> Any:
    # SUM of a boolean is not portable; COALESCE because SUM over no rows is NULL.
    return func.coalesce(func.sum(Feedback.is_correct.cast(Integer)), 0)


def _window(
    query: Select[Any],
    engine: str | None,
    zone: str | None,
    since: datetime | None,
    until: datetime | None,
) -> Select[Any]:
    if engine is not None:
        query = query.where(Feedback.engine == engine)
    if zone is not None:
        query = query.where(Feedback.zone == zone)
    if since is not None:
        query = query.where(Feedback.created_at >= since)
    if until is not None:
        query = query.where(Feedback.created_at < until)
    return query
