"""Admission: the rate limits, concurrency limits and budgets that apply to a call, checked at arrival.

Scopes are the key, its project and the deployment, each with optional requests/min, tokens/min and
concurrency, and (key and project) a budget in USD per day or month. Tokens are estimated at arrival
from the prompt size plus max_tokens, as Azure does, and reconciled with the real count at the end.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from openfoundry.config import LimitSettings
from openfoundry.deployments import Deployment
from openfoundry.errors import RateLimited, Unavailable
from openfoundry.limits.store import (
    ADMITTED,
    OVER_BUDGET,
    TOO_MANY_IN_FLIGHT,
    UNSEEDED,
    Admission,
    LimitStore,
    Settlement,
    Verdict,
)
from openfoundry.tenancy.auth import Principal
from openfoundry.tenancy.keys import KeyRecord, KeyRing, Policy

log = logging.getLogger("openfoundry")

DEFAULT_MAX_TOKENS = 1000
"""Output tokens assumed at arrival when a request names no max_tokens."""

Headers = list[tuple[bytes, bytes]]
"""HTTP headers as sent: (name, value) in bytes."""

LoadSpend = Callable[[str, str, dt.datetime], Awaitable[float]]
"""(scope "project"|"key", name, period start) -> USD already spent in the database."""


@dataclass(frozen=True, slots=True)
class Bucket:
    key: str
    capacity: int
    tokens: bool
    """A tokens-per-minute bucket (else requests per minute)."""
    scope: str
    name: str


@dataclass(frozen=True, slots=True)
class Budget:
    scope: str
    name: str
    limit: float
    period: str


@dataclass(slots=True)
class Plan:
    """Every limit on one (key, project, deployment), worked out once and kept until the key ring reloads or
    the deployment changes."""

    generation: int
    """The key ring's generation it was made from."""
    deployment: Deployment
    """The deployment it was made from (compared by identity)."""
    buckets: tuple[Bucket, ...]
    """Requests buckets first, then tokens buckets, in the order of the admission's takes."""
    flights: tuple[tuple[str, int], ...]
    budgets: tuple[Budget, ...]
    header_units: tuple[tuple[bytes, bytes, int, int, tuple[tuple[int, tuple[bytes, bytes], float], ...]], ...] = ()
    """Per unit (requests, tokens) with buckets: its remaining and reset header names, where its buckets
    start and end in `buckets`, and (capacity, limit header, capacity per second) of each of them."""
    day: int = -1
    limits: tuple[Admission, Settlement] | None = None
    """The admission and settlement for `day`'s budget periods."""

    def __post_init__(self) -> None:
        units = []
        start = 0
        for tokens in (False, True):
            limit, remaining, reset = HEADERS[tokens]
            members = tuple(
                (b.capacity, (limit, b"%d" % b.capacity), b.capacity / 60.0) for b in self.buckets if b.tokens == tokens
            )
            if members:
                units.append((remaining, reset, start, start + len(members), members))
            start += len(members)
        self.header_units = tuple(units)

    @property
    def empty(self) -> bool:
        return not (self.buckets or self.flights or self.budgets)

    def current(self, now: float) -> tuple[Admission, Settlement]:
        """The admission and settlement for the budget periods holding `now` (worked out once a day)."""
        day = int(now // 86400)
        if day == self.day and self.limits is not None:
            return self.limits
        spends = []
        for budget in self.budgets:
            start, _, ttl = _period_of_day(budget.period, day)
            spends.append((f"spend:{budget.scope}:{budget.name}:{start.date().isoformat()}", ttl))
        group = next(_GROUPS)
        requests = tuple((b.key, float(b.capacity)) for b in self.buckets if not b.tokens)
        token_buckets = tuple((b.key, float(b.capacity)) for b in self.buckets if b.tokens)
        self.limits = (
            Admission(
                tuple((key, b.limit) for (key, _), b in zip(spends, self.budgets, strict=True)),
                self.flights,
                requests,
                token_buckets,
                group,
            ),
            Settlement(token_buckets, tuple(key for key, _ in self.flights), tuple(spends), group),
        )
        self.day = day
        return self.limits


@dataclass(slots=True)
class Ticket:
    """What an admitted call holds until it is settled."""

    id: str
    estimate: int
    settlement: Settlement | None = None
    """None when no limit applies (or the limit store was unreachable and the policy let the call in), and
    once settled."""
    headers: Headers = field(default_factory=list)
    """The rate-limit headers, as the HTTP layer sends them."""


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


_GROUPS = itertools.count(1)
_NOBODY = Principal(is_admin=False)
"""No key and no project: a plan for it holds the deployment's limits alone."""


@functools.lru_cache(maxsize=64)
def _period_of_day(period: str, day: int) -> tuple[dt.datetime, float, float]:
    """(start, end as epoch seconds, seconds to keep its spend) of the budget period holding a UTC day."""
    start = period_start(period, day * 86400.0)
    end = period_end(period, start)
    return start, end.timestamp(), (end - start).total_seconds() + 86400


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
        self._plans: dict[tuple[str | None, str | None, str], Plan] = {}

    def plan(self, principal: Principal, deployment: Deployment) -> Plan | None:
        """The limits on a call, or None when there are none."""
        cache_key = (principal.key_id, principal.project, deployment.name)
        plan = self._plans.get(cache_key)
        keys = self.keys
        if plan is None or plan.generation != keys.generation or plan.deployment is not deployment:
            if len(self._plans) > 10_000:
                self._plans.clear()
            record = keys.key(principal.key_id) if principal.key_id is not None else None
            project = keys.project(principal.project) if principal.project is not None else None
            plan = _make_plan(keys.generation, record, principal.project, project, deployment)
            self._plans[cache_key] = plan
        return None if plan.empty else plan

    async def admit(self, principal: Principal, deployment: Deployment, estimate: int) -> Ticket:
        ticket = Ticket(os.urandom(16).hex(), estimate)
        plan = self.plan(principal, deployment)
        if plan is None:
            return ticket
        now = time.time()
        admission, settlement = plan.current(now)
        try:
            verdict = self.store.admit_now(admission, estimate, now) or await self.store.admit(admission, estimate, now)
            while verdict.outcome == UNSEEDED:
                budget = plan.budgets[verdict.which]
                start = _period_of_day(budget.period, int(now // 86400))[0]
                key, ttl = settlement.spends[verdict.which]
                await self.store.seed(key, await self.load_spend(budget.scope, budget.name, start), ttl)
                verdict = await self.store.admit(admission, estimate, now)
        except Exception as exc:  # the shared store is unreachable: apply the configured policy
            self.on_store_failure()
            log.warning("limit store unavailable (%s): %s", exc.__class__.__name__, exc)
            if not self.fail_open:
                raise Unavailable("rate limits cannot be checked right now; try again shortly") from exc
            return ticket
        if verdict.refills:
            ticket.headers = _headers(plan, verdict.refills)
        if verdict.outcome != ADMITTED:
            raise _refusal(plan, estimate, verdict, now, ticket.headers)
        ticket.settlement = settlement
        return ticket

    async def admit_fallback(self, deployment: Deployment, estimate: int) -> Ticket:
        """Admit a call that falls back to `deployment` against that deployment's own limits only: its key's
        and project's counted it when it arrived."""
        return await self.admit(_NOBODY, deployment, estimate)

    def settle(self, ticket: Ticket, used_tokens: int | None, cost: float) -> None:
        """Reconcile the token estimate, leave the concurrency slots and add the cost to the budgets
        (once: settling a ticket again does nothing)."""
        settlement = ticket.settlement
        if settlement is None:
            return
        ticket.settlement = None
        back = ticket.estimate - used_tokens if used_tokens is not None else 0
        try:
            self.store.settle(settlement, back, cost, time.time())
        except Exception as exc:
            self.on_store_failure()
            log.warning("limit store unavailable while settling (%s): %s", exc.__class__.__name__, exc)


def _make_plan(
    generation: int, record: KeyRecord | None, project_name: str | None, project: Policy | None, deployment: Deployment
) -> Plan:
    scopes: list[tuple[str, str, Policy]] = []
    if record is not None:
        scopes.append(("key", record.id, record.policy))
    if project is not None and project_name is not None:
        scopes.append(("project", project_name, project))
    limits: LimitSettings | None = deployment.settings.limits
    if limits is not None:
        scopes.append(("deployment", deployment.name, Policy(limits.rpm, limits.tpm, limits.concurrency)))
    buckets, flights, budgets = [], [], []
    for scope, name, policy in scopes:
        if policy.rpm is not None:
            buckets.append(Bucket(f"rpm:{scope}:{name}", policy.rpm, False, scope, name))
        if policy.tpm is not None:
            buckets.append(Bucket(f"tpm:{scope}:{name}", policy.tpm, True, scope, name))
        if policy.concurrency is not None:
            flights.append((f"flight:{scope}:{name}", policy.concurrency))
        if policy.budget_usd is not None and scope != "deployment":
            budgets.append(Budget(scope, name, policy.budget_usd, policy.budget_period))
    buckets.sort(key=lambda bucket: bucket.tokens)
    return Plan(generation, deployment, tuple(buckets), tuple(flights), tuple(budgets))


def _refusal(plan: Plan, estimate: int, verdict: Verdict, now: float, headers: Headers) -> RateLimited:
    if verdict.outcome == OVER_BUDGET:
        budget = plan.budgets[verdict.which]
        until_next_period = math.ceil(_period_of_day(budget.period, int(now // 86400))[1] - now)
        return RateLimited(
            f"the {budget.scope} {budget.name!r} has spent its {_period(budget.period)} budget of "
            f"${budget.limit:.2f} (spent ${verdict.spent:.2f})",
            code="budget_exceeded",
            headers={"Retry-After": str(until_next_period)},
        )
    if verdict.outcome == TOO_MANY_IN_FLIGHT:
        key, slots = plan.flights[verdict.which]
        _, scope, name = key.split(":", 2)
        return RateLimited(
            f"the {scope} {name!r} has {slots} requests in flight, its limit",
            code="concurrency_limit_exceeded",
            headers={"Retry-After": "1"},
        )
    costs = [estimate if b.tokens else 1 for b in plan.buckets]
    short = [  # when each bucket holds the call's cost
        (max(0.0, refill + cost * 60.0 / b.capacity - 60.0), b, cost)
        for b, cost, refill in zip(plan.buckets, costs, verdict.refills, strict=True)
    ]
    wait, bucket, cost = max(short, key=lambda item: item[0])
    unit = "tokens" if bucket.tokens else "requests"
    if cost > bucket.capacity:
        message = (
            f"this request needs about {cost:.0f} tokens, more than the {bucket.scope} {bucket.name!r} "
            f"allows per minute ({bucket.capacity})"
        )
    else:
        message = f"rate limit of the {bucket.scope} {bucket.name!r} reached: {bucket.capacity} {unit} per minute"
    retry = str(max(1, math.ceil(min(wait, 60.0))))
    return RateLimited(f"{message}; retry after {retry} s", headers=as_text(headers) | {"Retry-After": retry})


def _period(period: str) -> str:
    return "daily" if period == "day" else "monthly"


def _headers(plan: Plan, refills: tuple[float, ...]) -> Headers:
    """OpenAI's x-ratelimit-* headers from the tightest requests and tokens buckets, ready to send. The
    tightest bucket is the one that needs longest to fill again: the smallest share left."""
    headers: Headers = []
    for remaining, reset, start, end, members in plan.header_units:
        if len(members) == 1:  # the usual case: skipping the search saves ~2k instructions
            refill = refills[start]
            capacity, limit, per_second = members[0]
        else:
            unit = refills[start:end]
            refill = max(unit)
            capacity, limit, per_second = members[unit.index(refill)]
        ms = int(refill * 1000.0)
        headers += (
            limit,
            (remaining, b"%d" % (capacity - refill * per_second)),
            (reset, b"%dms" % ms if ms < 1000 else _duration(ms)),
        )
    return headers


def as_text(headers: Headers) -> dict[str, str]:
    """Headers ready to send as a dict of text, for the errors that carry them."""
    return {name.decode(): value.decode() for name, value in headers}


HEADERS = {
    tokens: (b"x-ratelimit-limit-" + unit, b"x-ratelimit-remaining-" + unit, b"x-ratelimit-reset-" + unit)
    for tokens, unit in ((False, b"requests"), (True, b"tokens"))
}
"""Header names (limit, remaining, reset) for requests (False) and tokens (True) buckets."""


def _duration(ms: int) -> bytes:
    """A reset time of a second or more as OpenAI writes it: "1.500s", "6m0s"."""
    if ms < 60_000:
        return b"%d.%03ds" % divmod(ms, 1000)
    return b"%dm%ds" % (ms // 60_000, ms % 60_000 // 1000)
