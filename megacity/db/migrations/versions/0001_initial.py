"""Initial schema: stored_objects and dance_references.

Revision ID: 0001_initial
Revises:
Create Date: 2025-06-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "stored_objects",
        sa.Column("key", sa.String(1024), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("owner_id", sa.String(128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_stored_objects")),
    )
    op.create_index(op.f("ix_stored_objects_expires_at"), "stored_objects", ["expires_at"])
    op.create_index(
        op.f("ix_stored_objects_kind_created_at"), "stored_objects", ["kind", "created_at"]
    )
    op.create_index(op.f("ix_stored_objects_owner_id"), "stored_objects", ["owner_id"])

    op.create_table(
        "dance_references",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("bpm", sa.Float(), nullable=True),
        sa.Column("owner_id", sa.String(128), nullable=True),
        sa.Column("fps", sa.Float(), nullable=False),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("keypoints_key", sa.String(1024), nullable=False),
        sa.Column("video_key", sa.String(1024), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dance_references")),
        sa.ForeignKeyConstraint(
            ["keypoints_key"],
            ["stored_objects.key"],
            name=op.f("fk_dance_references_keypoints_key_stored_objects"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["video_key"],
            ["stored_objects.key"],
            name=op.f("fk_dance_references_video_key_stored_objects"),
            ondelete="RESTRICT",
        ),
        sa.UniqueConstraint("keypoints_key", name=op.f("uq_dance_references_keypoints_key")),
        sa.UniqueConstraint("video_key", name=op.f("uq_dance_references_video_key")),
    )
    op.create_index(op.f("ix_dance_references_created_at"), "dance_references", ["created_at"])
    op.create_index(
        op.f("ix_dance_references_owner_id_created_at"),
        "dance_references",
        ["owner_id", "created_at"],
    )


def downgrade() -> None:
    op.drop_table("dance_references")
    op.drop_table("stored_objects")
