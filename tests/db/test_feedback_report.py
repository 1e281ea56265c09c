"""Feedback counts per group (what the bias report reads) on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from megacity.db import Database
from megacity.db.feedback import group_counts, overall, record_feedback
from megacity.safety.bias import GroupCount

T0 = datetime(2025, 5, 1, tzinfo=UTC)


def _seed(db: Database) -> None:
    rows = [
        # (l1, correct, engine, zone, hours after T0)
        ("ko", True, "speech", "ktube", 0),
        ("ko", True, "speech", "ktube", 1),
        ("ko", False, "llm", "edu", 2),
        ("vi", False, "speech", "ktube", 3),
        ("vi", True, "speech", "ktube", 4),
        (None, True, "speech", "ktube", 5),
        (None, False, None, None, 6),
    ]
    with db.session() as session:
        for l1, correct, engine, zone, hours in rows:
            record_feedback(
                session,
                result_id=f"job-{hours}",
                is_correct=correct,
                engine=engine,
                zone=zone,
                age_band="13-15" if l1 == "ko" else None,
                l1_language=l1,
                region=None,
                gender=None,
                owner_id="learner-1",
                now=T0 + timedelta(hours=hours),
            )


def test_counts_per_group_leave_out_unknown_buckets(db: Database) -> None:
    _seed(db)
    with db.session() as session:
        assert group_counts(session, "l1_language") == [
            GroupCount("ko", 3, 2),
            GroupCount("vi", 2, 1),
        ]
        assert group_counts(session, "age_band") == [GroupCount("13-15", 3, 2)]
        assert group_counts(session, "gender") == []
        assert overall(session) == GroupCount("all", 7, 4)


def test_filters_and_half_open_window(db: Database) -> None:
    _seed(db)
    with db.session() as session:
        speech = group_counts(session, "l1_language", engine="speech", zone="ktube")
        assert speech == [GroupCount("ko", 2, 2), GroupCount("vi", 2, 1)]
        since, until = T0 + timedelta(hours=1), T0 + timedelta(hours=4)
        assert group_counts(session, "l1_language", since=since, until=until) == [
            GroupCount("ko", 2, 1),
            GroupCount("vi", 1, 0),
        ]
        assert overall(session, since=since, until=until) == GroupCount("all", 3, 1)
        assert overall(session, zone="nowhere") == GroupCount("all", 0, 0)
        assert group_counts(session, "region", engine="pose") == []


def test_a_row_round_trips_with_its_fields(db: Database) -> None:
    with db.session() as session:
        row = record_feedback(
            session,
            result_id="answer-9",
            is_correct=False,
            engine="llm",
            zone="edu",
            age_band="65+",
            l1_language="vie",
            region="kr-seoul",
            gender="undisclosed",
            owner_id=None,
        )
        row_id = row.id
    with db.session() as session:
        assert [g.group for g in group_counts(session, "region")] == ["kr-seoul"]
        assert group_counts(session, "age_band") == [GroupCount("65+", 1, 0)]
        assert len(row_id) == 32


def test_unknown_dimension_is_refused(db: Database) -> None:
    with db.session() as session, pytest.raises(ValueError, match="unknown dimension"):
        group_counts(session, "owner_id")
