"""The database schema (SQLAlchemy Core; migrations in migrations/versions mirror it)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("limits", sa.JSON, nullable=True),
    sa.Column("budget_usd", sa.Float, nullable=True),
    sa.Column("budget_period", sa.String(10), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column(
        "project", sa.String(200), sa.ForeignKey("projects.name", ondelete="CASCADE"), nullable=False, index=True
    ),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("prefix", sa.String(20), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False, unique=True),
    sa.Column("deployments", sa.JSON, nullable=True),
    sa.Column("limits", sa.JSON, nullable=True),
    sa.Column("budget_usd", sa.Float, nullable=True),
    sa.Column("budget_period", sa.String(10), nullable=True),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, index=True),
)

usage = sa.Table(
    "usage",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False, index=True),
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
    sa.Index("ix_usage_project_ts", "project", "ts"),
    sa.Index("ix_usage_key_id_ts", "key_id", "ts"),
    sa.Index("ix_usage_deployment_ts", "deployment", "ts"),
)

responses = sa.Table(
    "responses",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("project", sa.String(200), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("body", sa.JSON, nullable=False),
    sa.Column("previous_response_id", sa.String(64), nullable=True),
    sa.Column("background", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

response_items = sa.Table(
    "response_items",
    metadata,
    sa.Column("response_id", sa.String(64), sa.ForeignKey("responses.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("kind", sa.String(10), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("item_id", sa.String(128), nullable=False),
    sa.Column("item", sa.JSON, nullable=False),
)

conversations = sa.Table(
    "conversations",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("project", sa.String(200), nullable=False),
    sa.Column("meta", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

conversation_items = sa.Table(
    "conversation_items",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("conversation_id", sa.String(64), sa.ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False),
    sa.Column("item_id", sa.String(128), nullable=False),
    sa.Column("item", sa.JSON, nullable=False),
    sa.Index("ix_conversation_items_conversation_seq", "conversation_id", "seq"),
)

files = sa.Table(
    "files",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("project", sa.String(200), nullable=False),
    sa.Column("filename", sa.String(1024), nullable=False),
    sa.Column("purpose", sa.String(40), nullable=False),
    sa.Column("bytes", sa.BigInteger, nullable=False),
    sa.Column("content", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_files_project_created_at", "project", "created_at"),
)

vector_stores = sa.Table(
    "vector_stores",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("project", sa.String(200), nullable=False),
    sa.Column("name", sa.String(1024), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("meta", sa.JSON, nullable=True),
    sa.Column("expires_after", sa.JSON, nullable=True),
    sa.Column("embedding_deployment", sa.String(200), nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_active_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_vector_stores_project_created_at", "project", "created_at"),
)

vector_store_files = sa.Table(
    "vector_store_files",
    metadata,
    sa.Column(
        "vector_store_id", sa.String(40), sa.ForeignKey("vector_stores.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("file_id", sa.String(40), sa.ForeignKey("files.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("project", sa.String(200), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("last_error", sa.JSON, nullable=True),
    sa.Column("usage_bytes", sa.BigInteger, nullable=False),
    sa.Column("attributes", sa.JSON, nullable=True),
    sa.Column("chunking_strategy", sa.JSON, nullable=False),
    sa.Column("batch_id", sa.String(40), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_vector_store_files_store_created_at", "vector_store_id", "created_at"),
    sa.Index("ix_vector_store_files_file_id", "file_id"),
    sa.Index("ix_vector_store_files_batch_id", "batch_id"),
)

vector_store_file_batches = sa.Table(
    "vector_store_file_batches",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("vector_store_id", sa.String(40), sa.ForeignKey("vector_stores.id", ondelete="CASCADE"), nullable=False),
    sa.Column("project", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

vector_store_chunks = sa.Table(
    "vector_store_chunks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("vector_store_id", sa.String(40), nullable=False),
    sa.Column("file_id", sa.String(40), nullable=False),
    sa.Column("project", sa.String(200), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("embedding", sa.LargeBinary, nullable=False),
    sa.ForeignKeyConstraint(
        ["vector_store_id", "file_id"],
        ["vector_store_files.vector_store_id", "vector_store_files.file_id"],
        ondelete="CASCADE",
    ),
    sa.Index("ix_vector_store_chunks_store_file", "vector_store_id", "file_id"),
)

connectors = sa.Table(
    "connectors",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("base_url", sa.String(2048), nullable=True),
    # {"type": "none" | "api_key" | "bearer", …} with the credential itself: it must stay usable.
    sa.Column("auth", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
