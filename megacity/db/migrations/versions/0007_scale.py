"""Scale-out: model activations shared by every replica, and the region of each job.

Revision ID: 0007_scale
Revises: 0006_dashboard
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_scale"
down_revision: str | None = "0006_dashboard"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "model_activations",
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("activated_by", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("model", name=op.f("pk_model_activations")),
    )
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("region", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("region")
    op.drop_table("model_activations")
