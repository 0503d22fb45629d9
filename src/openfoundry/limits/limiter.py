"""Admission: the rate limits, concurrency limits and budgets that apply to a call, checked at arrival.

Scopes are the key, its project and the deployment, each with optional requests/min, tokens/min and
concurrency, and (key and project) a budget in USD per day or month. Tokens are estimated at arrival
from the prompt size plus max_tokens, as Azure does, and reconciled with the real count at the end.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from openfoundry.config import LimitSettings
from openfoundry.deployments import Deployment
from openfoundry.errors import RateLimited, Unavailable
from openfoundry.limits.store import Level, LimitStore, Take
from openfoundry.tenancy.auth import Principal
from openfoundry.tenancy.keys import KeyRing, Policy

log = logging.getLogger("openfoundry")

DEFAULT_MAX_TOKENS = 1000
"""Output tokens assumed at arrival when a request names no max_tokens."""

LoadSpend = Callable[[str, str, dt.datetime], Awaitable[float]]
"""(scope "project"|"key", name, period start) -> USD already spent in the database."""


@dataclass(slots=True)
class Ticket:
    """What an admitted call holds until it is settled."""

    id: str
    estimate: int
    token_takes: list[Take] = field(default_factory=list)
    flights: list[str] = field(default_factory=list)
    budgets: list[tuple[str, float]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)


def estimate_tokens(kind: str, body: dict[str, Any], raw: bytes) -> int:
    """Prompt tokens (about 4 bytes each) plus the output the request allows."""
    prompt = len(raw) // 4
    if kind == "embeddings":
        return prompt
    asked = body.get("max_completion_tokens") or body.get("max_tokens")
    return prompt + (asked if isinstance(asked, int) and asked > 0 else DEFAULT_MAX_TOKENS)


def period_start(period: str, now: float) -> dt.datetime:
    day = dt.datetime.fromtimestamp(now, dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day.replace(day=1) if period == "month" else day


def period_end(period: str, start: dt.datetime) -> dt.datetime:
    if period == "day":
        return start + dt.timedelta(days=1)
    return (start + dt.timedelta(days=32)).replace(day=1)


class Limiter:
    def __init__(
        self,
        store: LimitStore,
        keys: KeyRing,
        load_spend: LoadSpend,
        fail_open: bool = True,
        on_store_failure: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.keys = keys
        self.load_spend = load_spend
        self.fail_open = fail_open
        self.on_store_failure = on_store_failure

    def _scopes(self, principal: Principal, deployment: Deployment) -> list[tuple[str, str, Policy]]:
        scopes = []
        if principal.key_id is not None:
            record = self.keys.key(principal.key_id)
            if record is not None:
                scopes.append(("key", record.id, record.policy))
        if principal.project is not None:
            project = self.keys.project(principal.project)
            if project is not None:
                scopes.append(("project", principal.project, project))
        limits: LimitSettings | None = deployment.settings.limits
        if limits is not None:
            scopes.append(("deployment", deployment.name, Policy(limits.rpm, limits.tpm, limits.concurrency)))
        return scopes

    async def admit(self, principal: Principal, deployment: Deployment, estimate: int) -> Ticket:
        ticket = Ticket(uuid.uuid4().hex, estimate)
        scopes = self._scopes(principal, deployment)
        if not scopes:
            return ticket
        now = time.time()
        try:
            await self._check_budgets(ticket, scopes, now)
            await self._enter(ticket, scopes, now)
            await self._take(ticket, scopes, now)
        except RateLimited:
            await self.settle(ticket, None, 0.0)
            raise
        except Exception as exc:  # the shared store is unreachable: apply the configured policy
            self.on_store_failure()
            log.warning("limit store unavailable (%s): %s", exc.__class__.__name__, exc)
            if not self.fail_open:
                raise Unavailable("rate limits cannot be checked right now; try again shortly") from exc
            return Ticket(ticket.id, estimate)
        return ticket

    async def _check_budgets(self, ticket: Ticket, scopes: list[tuple[str, str, Policy]], now: float) -> None:
        for scope, name, policy in scopes:
            if policy.budget_usd is None or scope == "deployment":
                continue
            start = period_start(policy.budget_period, now)
            key = f"spend:{scope}:{name}:{start.date().isoformat()}"
            spent = await self.store.spent(key)
            ttl = (period_end(policy.budget_period, start) - start).total_seconds() + 86400
            if spent is None:
                spent = await self.load_spend(scope, name, start)
                await self.store.spend(key, 0.0, spent, ttl)
            if spent >= policy.budget_usd:
                wait = math.ceil(period_end(policy.budget_period, start).timestamp() - now)
                raise RateLimited(
                    f"the {scope} {name!r} has spent its {_period(policy.budget_period)} budget of "
                    f"${policy.budget_usd:.2f} (spent ${spent:.2f})",
                    code="budget_exceeded",
                    headers={"Retry-After": str(wait)},
                )
            ticket.budgets.append((key, ttl))

    async def _enter(self, ticket: Ticket, scopes: list[tuple[str, str, Policy]], now: float) -> None:
        for scope, name, policy in scopes:
            if policy.concurrency is None:
                continue
            key = f"flight:{scope}:{name}"
            if not await self.store.enter(key, policy.concurrency, ticket.id, now):
                raise RateLimited(
                    f"the {scope} {name!r} has {policy.concurrency} requests in flight, its limit",
                    code="concurrency_limit_exceeded",
                    headers={"Retry-After": "1"},
                )
            ticket.flights.append(key)

    async def _take(self, ticket: Ticket, scopes: list[tuple[str, str, Policy]], now: float) -> None:
        takes: list[tuple[str, str, str, Take]] = []
        for scope, name, policy in scopes:
            if policy.rpm is not None:
                takes.append((scope, name, "requests", Take(f"rpm:{scope}:{name}", policy.rpm, 1)))
            if policy.tpm is not None:
                takes.append((scope, name, "tokens", Take(f"tpm:{scope}:{name}", policy.tpm, ticket.estimate)))
        if not takes:
            return
        allowed, levels = await self.store.take([t for *_, t in takes], now)
        ticket.headers = _headers(takes, levels)
        if not allowed:
            raise self._refusal(takes, levels, ticket.headers)
        ticket.token_takes = [t for _, _, unit, t in takes if unit == "tokens"]

    @staticmethod
    def _refusal(takes: list[tuple[str, str, str, Take]], levels: list[Level], headers: dict[str, str]) -> RateLimited:
        short = [(level.seconds_until(t.cost), s, n, u, t) for (s, n, u, t), level in zip(takes, levels, strict=True)]
        wait, scope, name, unit, take = max(short, key=lambda item: item[0])
        if take.cost > take.capacity:
            message = (
                f"this request needs about {take.cost:.0f} tokens, more than the {scope} {name!r} "
                f"allows per minute ({take.capacity:.0f})"
            )
        else:
            message = f"rate limit of the {scope} {name!r} reached: {take.capacity:.0f} {unit} per minute"
        retry = str(max(1, math.ceil(min(wait, 60.0))))
        return RateLimited(f"{message}; retry after {retry} s", headers=headers | {"Retry-After": retry})

    async def settle(self, ticket: Ticket, used_tokens: int | None, cost: float) -> None:
        """Reconcile the token estimate, leave the concurrency slots and add the cost to the budgets."""
        try:
            now = time.time()
            if used_tokens is not None:
                for take in ticket.token_takes:
                    await self.store.adjust(take.key, take.capacity, ticket.estimate - used_tokens, now)
            for key in ticket.flights:
                await self.store.leave(key, ticket.id)
            if cost:
                for key, ttl in ticket.budgets:
                    await self.store.spend(key, cost, 0.0, ttl)
        except Exception as exc:
            self.on_store_failure()
            log.warning("limit store unavailable while settling (%s): %s", exc.__class__.__name__, exc)


def _period(period: str) -> str:
    return "daily" if period == "day" else "monthly"


def _headers(takes: list[tuple[str, str, str, Take]], levels: list[Level]) -> dict[str, str]:
    """OpenAI's x-ratelimit-* headers from the tightest requests and tokens buckets."""
    headers: dict[str, str] = {}
    for unit in ("requests", "tokens"):
        found = [(level, take) for (_, _, u, take), level in zip(takes, levels, strict=True) if u == unit]
        if not found:
            continue
        level, take = min(found, key=lambda pair: pair[0].remaining / pair[1].capacity)
        headers[f"x-ratelimit-limit-{unit}"] = str(int(take.capacity))
        headers[f"x-ratelimit-remaining-{unit}"] = str(max(0, math.floor(level.remaining)))
        headers[f"x-ratelimit-reset-{unit}"] = f"{level.seconds_to_full():.3f}s"
    return headers
