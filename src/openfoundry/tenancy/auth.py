"""Authentication: which principal a request speaks for.

Keys come as `Authorization: Bearer KEY`, `api-key: KEY` (Azure clients) or `x-api-key: KEY`
(Anthropic clients). The admin key works everywhere; `/admin` accepts nothing else. With no key
configured the server runs open, which config.py allows only on a loopback address, and then every
request must name a loopback Host (and Origin, if any) so a rebinding DNS name cannot reach it.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from openfoundry.errors import Forbidden, Unauthorized
from openfoundry.tenancy.keys import KeyRecord, KeyRing, expired


@dataclass(frozen=True, slots=True)
class Principal:
    is_admin: bool
    project: str | None = None
    key_id: str | None = None
    deployments: frozenset[str] | None = None
    """Deployments this key may use; None means all."""

    def may_use(self, deployment: str) -> bool:
        return self.deployments is None or deployment in self.deployments


ADMIN = Principal(is_admin=True)

_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def presented_key(headers: Mapping[str, str]) -> str | None:
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return headers.get("api-key") or headers.get("x-api-key") or None


def _is_loopback(host: str) -> bool:
    if host.startswith("["):
        name = host[: host.find("]") + 1]
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    name = name.lower()
    return name in _LOOPBACK_NAMES or name.startswith("127.") or name.endswith(".localhost")


class Authenticator:
    def __init__(self, admin_key: str | None, keys: KeyRing) -> None:
        self._admin_key = admin_key.encode() if admin_key else None
        self._keys = keys
        self._principals: dict[str, tuple[KeyRecord, Principal]] = {}
        """key id -> (its record, its principal), made once per version of the record"""

    @property
    def open(self) -> bool:
        return self._admin_key is None

    def authenticate(self, headers: Mapping[str, str], *, admin_route: bool) -> Principal:
        key = presented_key(headers)
        if self._admin_key is None:
            self._check_local(headers)
            project = self._project_principal(key) if key and not admin_route else None
            return project or ADMIN
        if key is None:
            raise Unauthorized(
                "missing API key: send it as 'Authorization: Bearer KEY', 'api-key: KEY' or 'x-api-key: KEY'",
                code="missing_api_key",
            )
        if hmac.compare_digest(key.encode(), self._admin_key):
            return ADMIN
        principal = self._project_principal(key)
        if principal is None:
            raise Unauthorized("invalid API key")
        if admin_route:
            raise Forbidden("project keys cannot use the admin API; use the admin key", code="admin_key_required")
        return principal

    def _project_principal(self, key: str) -> Principal | None:
        record = self._keys.lookup(key)
        if record is None:
            return None
        if expired(record):
            raise Unauthorized("this API key has expired", code="expired_api_key")
        known = self._principals.get(record.id)
        if known is None or known[0] is not record:
            if len(self._principals) > 100_000:
                self._principals.clear()
            principal = Principal(False, record.project, record.id, record.deployments)
            known = self._principals[record.id] = (record, principal)
        return known[1]

    @staticmethod
    def _check_local(headers: Mapping[str, str]) -> None:
        host = headers.get("host", "")
        if not _is_loopback(host):
            raise Forbidden(
                f"this server runs without keys and answers only loopback names; Host {host!r} was refused "
                "(set server.admin_key to serve other names)",
                code="host_not_allowed",
            )
        origin = headers.get("origin")
        if origin and origin != "null" and not _is_loopback(urlsplit(origin).netloc):
            raise Forbidden(f"cross-origin request from {origin!r} refused", code="origin_not_allowed")
