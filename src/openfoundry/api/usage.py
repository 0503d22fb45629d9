"""Admin API for usage: requests, tokens, cost and errors, filtered and grouped (admin key only)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, FastAPI, Query, Request

from openfoundry.errors import InvalidRequest
from openfoundry.store.usage import GROUPS, GroupBy, UsageFilter, UsageStore, utc
from openfoundry.tenancy.auth import Authenticator


def parse_time(value: str, param: str) -> dt.datetime:
    """ISO-8601 (a time without a zone is UTC) or epoch seconds; anything else is a 400."""
    try:
        return dt.datetime.fromtimestamp(float(value), dt.UTC)
    except (ValueError, OverflowError, OSError):
        pass
    # an unencoded '+' of a zone offset arrives as a space: "2026-01-01T00:00:00 02:00"
    for text in (value, value[::-1].replace(" ", "+", 1)[::-1]):
        try:
            return utc(dt.datetime.fromisoformat(text))
        except ValueError:
            continue
    raise InvalidRequest(
        f"{param} must be an ISO-8601 time or epoch seconds, not {value!r}", param=param, code="invalid_value"
    )


def parse_groups(values: list[str] | None) -> list[GroupBy]:
    """group_by values, repeated (`group_by=a&group_by=b`) or comma-separated (`group_by=a,b`)."""
    names = [name.strip() for value in values or () for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in GROUPS]
    if unknown:
        raise InvalidRequest(
            f"group_by must be among {', '.join(GROUPS)}; got {', '.join(map(repr, unknown))}",
            param="group_by",
            code="invalid_value",
        )
    return [cast(GroupBy, name) for name in names]


def add_routes(app: FastAPI, auth: Authenticator, store: UsageStore) -> None:
    def require_admin(request: Request) -> None:
        auth.authenticate(request.headers, admin_route=True)

    admin = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])

    @admin.get("/usage")
    async def usage(
        project: str | None = None,
        key: Annotated[str | None, Query(description="An API key id.")] = None,
        deployment: str | None = None,
        since: Annotated[str | None, Query(description="ISO-8601 or epoch seconds; inclusive.")] = None,
        until: Annotated[str | None, Query(description="ISO-8601 or epoch seconds; exclusive.")] = None,
        group_by: Annotated[list[str] | None, Query(description="project, key, deployment or day.")] = None,
    ) -> dict[str, Any]:
        """Sums per group of calls (one total row without group_by); columns not grouped on are null."""
        where = UsageFilter(
            project=project,
            key_id=key,
            deployment=deployment,
            since=None if since is None else parse_time(since, "since"),
            until=None if until is None else parse_time(until, "until"),
        )
        return {"object": "list", "data": await store.summary(where, parse_groups(group_by))}

    app.include_router(admin)
