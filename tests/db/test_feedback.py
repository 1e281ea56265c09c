"""The feedback table (what the bias report reads): a row round-trips on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

from sqlalchemy import Integer, func, select

from megacity.db import Database
from megacity.db.models import Feedback


def test_feedback_rows_round_trip_and_group(db: Database) -> None:
    rows = [
        ("ko", True),
        ("ko", True),
        ("en", False),
        ("en", True),
    ]
    with db.session() as session:
        for l1, correct in rows:
            session.add(
                Feedback(
                    id=uuid.uuid4().hex,
                    result_id="job-1",
                    engine="speech",
                    zone="ktube",
                    is_correct=correct,
                    age_band="13-15",
                    l1_language=l1,
                )
            )
    with db.session() as session:
        by_l1 = session.execute(
            select(Feedback.l1_language, func.count(), func.sum(Feedback.is_correct.cast(Integer)))
            .group_by(Feedback.l1_language)
            .order_by(Feedback.l1_language)
        ).all()
        one = session.scalars(select(Feedback).limit(1)).one()
    assert [tuple(r) for r in by_l1] == [("en", 2, 1), ("ko", 2, 2)]
    assert one.created_at.tzinfo is not None and one.gender is None
