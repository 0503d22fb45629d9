"""The database: one async engine (SQLite with WAL, or PostgreSQL), migrated to head at start."""

from __future__ import annotations

import datetime as dt
import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from openfoundry.store import tables

MIGRATIONS = Path(__file__).parent / "migrations"


def async_url(url: str) -> str:
    """The SQLAlchemy async URL for a configured database URL; `~` in a SQLite path is expanded."""
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :]).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{path}"
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    return url


class Database:
    def __init__(self, url: str) -> None:
        self.url = async_url(url)
        self.engine: AsyncEngine = create_async_engine(self.url, pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)

    async def migrate(self) -> None:
        """Bring the schema to head; concurrent processes (`--workers`) take turns."""
        if self.engine.dialect.name == "sqlite":
            with _file_lock(Path(self.engine.url.database or "foundry.db").with_suffix(".migrate.lock")):
                async with self.engine.begin() as connection:
                    await connection.run_sync(_upgrade)
            return
        async with self.engine.begin() as connection:
            await connection.execute(sa.text("SELECT pg_advisory_xact_lock(7468243)"))
            await connection.run_sync(_upgrade)

    async def close(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(sa.text("SELECT 1"))

    async def deployments_version(self) -> tuple[Any, int]:
        """Changes to the stored deployments show here: (latest update, row count)."""
        table = tables.deployments
        async with self.engine.connect() as connection:
            row = (await connection.execute(sa.select(sa.func.max(table.c.updated_at), sa.func.count()))).one()
            return row[0], int(row[1])

    async def list_deployments(self) -> list[tuple[str, dict[str, Any]]]:
        async with self.engine.connect() as connection:
            rows = await connection.execute(sa.select(tables.deployments.c.name, tables.deployments.c.spec))
            return [(row.name, row.spec) for row in rows]

    async def insert_deployment(self, name: str, spec: dict[str, Any]) -> bool:
        """Store a new deployment; False when the name is taken."""
        now = dt.datetime.now(dt.UTC)
        try:
            async with self.engine.begin() as connection:
                await connection.execute(
                    tables.deployments.insert().values(name=name, spec=spec, created_at=now, updated_at=now)
                )
        except sa.exc.IntegrityError:
            return False
        return True

    async def delete_deployment(self, name: str) -> bool:
        async with self.engine.begin() as connection:
            result = await connection.execute(tables.deployments.delete().where(tables.deployments.c.name == name))
            return bool(result.rowcount)


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _upgrade(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
