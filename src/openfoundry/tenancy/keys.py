"""API keys: made once, shown once, stored as a SHA-256 hash, looked up in memory.

Keys carry 256 random bits, so a fast hash is enough (no password-style stretching needed) and a
lookup stays one hash and one dict read. The ring reloads from the database when the keys table
changes, checked every `interval` seconds, so a revocation reaches every process within ~0.5 s.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

from openfoundry.store.tenancy import TenancyStore

log = logging.getLogger("openfoundry")
KEY_PREFIX = "of-"


def new_key() -> tuple[str, str, str]:
    """(id, secret, prefix): the id names the key, the secret is the key, the prefix is safe to show."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    return "key_" + secrets.token_hex(8), secret, secret[:10]


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Policy:
    """The limits and budget of a key or a project."""

    rpm: int | None = None
    tpm: int | None = None
    concurrency: int | None = None
    budget_usd: float | None = None
    budget_period: str = "month"


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: str
    project: str
    deployments: frozenset[str] | None
    expires_at: float | None
    """Epoch seconds, or None for never."""
    policy: Policy


class KeyRing:
    def __init__(self, store: TenancyStore, interval: float = 0.5) -> None:
        self.store = store
        self.interval = interval
        self._by_hash: dict[str, KeyRecord] = {}
        self._by_id: dict[str, KeyRecord] = {}
        self._projects: dict[str, Policy] = {}
        self._version: tuple[Any, ...] | None = None
        self.generation = 0
        """Counts the reloads: what was worked out from the keys and projects is stale once it moves."""

    def lookup(self, secret: str) -> KeyRecord | None:
        return self._by_hash.get(digest(secret))

    def key(self, key_id: str) -> KeyRecord | None:
        return self._by_id.get(key_id)

    def project(self, name: str) -> Policy | None:
        return self._projects.get(name)

    async def refresh(self) -> None:
        version = await self.store.version()
        if version == self._version:
            return
        rows = await self.store.live_keys()
        self._by_hash = {row["hash"]: _record(row) for row in rows}
        self._by_id = {record.id: record for record in self._by_hash.values()}
        self._projects = {row["name"]: policy(row) for row in await self.store.projects()}
        self._version = version
        self.generation += 1

    async def watch(self) -> None:
        """Refresh forever; a failed refresh keeps the last keys and is tried again."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.refresh()
            except Exception:
                log.exception("refreshing API keys failed; keeping the previous set")


def policy(row: dict[str, Any]) -> Policy:
    limits = row.get("limits") or {}
    return Policy(
        limits.get("rpm"),
        limits.get("tpm"),
        limits.get("concurrency"),
        row.get("budget_usd"),
        row.get("budget_period") or "month",
    )


def _record(row: dict[str, Any]) -> KeyRecord:
    expires: dt.datetime | None = row["expires_at"]
    if expires is not None and expires.tzinfo is None:
        expires = expires.replace(tzinfo=dt.UTC)
    deployments = row["deployments"]
    return KeyRecord(
        row["id"],
        row["project"],
        frozenset(deployments) if deployments is not None else None,
        expires.timestamp() if expires is not None else None,
        policy(row),
    )


def expired(record: KeyRecord) -> bool:
    return record.expires_at is not None and record.expires_at <= time.time()
