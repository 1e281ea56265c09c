"""Voice references for sing-along and shadowing: text here, pitch contour in the store.

Revision ID: 0005_voice_references
Revises: 0004_safety
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_voice_references"
down_revision: str | None = "0004_safety"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "voice_references",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.String(128), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("voiced_s", sa.Float(), nullable=False),
        sa.Column("median_f0_hz", sa.Float(), nullable=False),
        sa.Column("words", sa.Integer(), nullable=False),
        sa.Column("features_key", sa.String(1024), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["features_key"],
            ["stored_objects.key"],
            name=op.f("fk_voice_references_features_key_stored_objects"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_voice_references")),
        sa.UniqueConstraint("features_key", name=op.f("uq_voice_references_features_key")),
    )
    op.create_index(op.f("ix_voice_references_created_at"), "voice_references", ["created_at"])
    op.create_index(
        op.f("ix_voice_references_owner_id_created_at"),
        "voice_references",
        ["owner_id", "created_at"],
    )


def downgrade() -> None:
    op.drop_table("voice_references")
