"""Feedback on AI results, with coarse demographic buckets (the bias report reads it).

Revision ID: 0003_feedback
Revises: 0002_jobs
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_feedback"
down_revision: str | None = "0002_jobs"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("result_id", sa.String(128), nullable=False),
        sa.Column("engine", sa.String(32), nullable=True),
        sa.Column("zone", sa.String(128), nullable=True),
        sa.Column("is_correct", sa.Boolean(), nullable=False),
        sa.Column("age_band", sa.String(16), nullable=True),
        sa.Column("l1_language", sa.String(16), nullable=True),
        sa.Column("region", sa.String(64), nullable=True),
        sa.Column("gender", sa.String(16), nullable=True),
        sa.Column("owner_id", sa.String(128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
    )
    op.create_index(op.f("ix_feedback_created_at"), "feedback", ["created_at"])
    op.create_index(op.f("ix_feedback_result_id"), "feedback", ["result_id"])


def downgrade() -> None:
    op.drop_table("feedback")
