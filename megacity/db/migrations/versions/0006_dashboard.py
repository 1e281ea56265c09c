"""Jobs finished in a time window, per status: the dashboard's queue panel reads them by index.

Revision ID: 0006_dashboard
Revises: 0005_voice_references
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0006_dashboard"
down_revision: str | None = "0005_voice_references"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_jobs_status_finished_at"), "jobs", ["status", "finished_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_jobs_status_finished_at"), table_name="jobs")
