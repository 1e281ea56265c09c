"""A service API key may name the user group its requests count under (the dashboard's
usage by group), as a token's `group` claim does. Nullable: older keys have none.

Revision ID: 0008_api_key_group
Revises: 0007_scale
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_api_key_group"
down_revision: str | None = "0007_scale"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("group_name", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("group_name")
