"""usage records

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "usage",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("project", sa.String, nullable=True),
        sa.Column("key_id", sa.String, nullable=True),
        sa.Column("deployment", sa.String, nullable=False),
        sa.Column("backend", sa.String, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("cached_tokens", sa.Integer, nullable=False),
        sa.Column("reasoning_tokens", sa.Integer, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("ttft_ms", sa.Float, nullable=True),
    )
    op.create_index("ix_usage_ts", "usage", ["ts"])
    op.create_index("ix_usage_project_ts", "usage", ["project", "ts"])
    op.create_index("ix_usage_key_id_ts", "usage", ["key_id", "ts"])
    op.create_index("ix_usage_deployment_ts", "usage", ["deployment", "ts"])


def downgrade() -> None:
    op.drop_table("usage")
