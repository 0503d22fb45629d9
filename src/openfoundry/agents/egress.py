"""Where server-side tools may connect: `agents.tool_hosts_allowlist`, checked after DNS resolution.

A URL passes when its host matches an entry (`host`, `host:port`, `*.domain` for subdomains, `*` for
any host) and every address the host resolves to is public. Private, loopback, link-local, unspecified,
multicast and reserved addresses (IPv6 forms embedding such an IPv4 address included) pass only when
the host is listed exactly: a wildcard never opens the inside network. Callers connect to the address
that was checked (`Destination.address`), so a name cannot resolve once for the check and again,
differently, for the connection; they check every redirect hop again.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from openfoundry.errors import InvalidRequest

Resolve = Callable[[str, int], Awaitable[list[str]]]
"""A host name and port to the IP addresses it resolves to."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
CONFIG_KEY = "agents.tool_hosts_allowlist"
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Destination:
    """A URL that passed the check, and the address to connect to for it."""

    scheme: str
    host: str
    port: int
    address: str


@dataclass(frozen=True, slots=True)
class _Entry:
    host: str
    """An exact host (IP addresses in their canonical form), "*" or "*.domain"."""
    port: int | None

    @property
    def exact(self) -> bool:
        return not self.host.startswith("*")

    def matches(self, host: str, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.host == "*":
            return True
        if self.host.startswith("*."):
            return host.endswith(self.host[1:])
        return self.host == host


def parse_entry(entry: str) -> tuple[str, int | None]:
    """An allowlist entry as (host, port); ValueError for one that is neither `host` nor `host:port`."""
    text = entry.strip().lower()
    host, port = text, None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            port = _port(rest.removeprefix(":"), entry)
    elif text.count(":") == 1:
        host, _, number = text.partition(":")
        port = _port(number, entry)
    if not host or any(c in host for c in "/@?#[] ") or ("*" in host and host != "*" and not host.startswith("*.")):
        raise ValueError(f"{entry!r} is not a host, host:port, *.domain or *")
    return _canonical(host), port


def _port(text: str, entry: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"{entry!r}: the port must be a number from 1 to 65535")
    return int(text)


def _canonical(host: str) -> str:
    host = host.rstrip(".")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def is_public(address: str) -> bool:
    """Whether an IP address is on the public internet (not private, loopback, link-local, …)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return all(_public(candidate) for candidate in _embedded(ip))


def _public(ip: IPAddress) -> bool:
    site_local = isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or site_local)


def _embedded(ip: IPAddress) -> Iterator[IPAddress]:
    """The address and every IPv4 address it carries (mapped, 6to4, Teredo, NAT64)."""
    if isinstance(ip, ipaddress.IPv4Address):
        yield ip
        return
    if ip in _NAT64:
        yield ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        return
    yield ip
    if ip.ipv4_mapped is not None:
        yield ip.ipv4_mapped
    if ip.sixtofour is not None:
        yield ip.sixtofour
    if ip.teredo is not None:
        yield from ip.teredo


async def resolve_host(host: str, port: int) -> list[str]:
    """The system resolver's addresses for a host name."""
    found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


def _refused(message: str) -> InvalidRequest:
    return InvalidRequest(message, code="tool_host_not_allowed", param="tools")


class Egress:
    """The allowlist of one gateway; `check` a URL before every request a server-side tool makes."""

    def __init__(self, allowlist: Sequence[str], resolve: Resolve = resolve_host) -> None:
        self._entries = [_Entry(*parse_entry(entry)) for entry in allowlist]
        self._resolve = resolve

    async def check(self, url: str) -> Destination:
        """The destination of `url`, or InvalidRequest (400, `tool_host_not_allowed`) naming the host."""
        scheme, host, port = _split(url)
        shown = f"{host}:{port}"
        entries = [entry for entry in self._entries if entry.matches(host, port)]
        if not entries:
            raise _refused(f"server-side tools may not connect to {shown}: it is not listed in {CONFIG_KEY}")
        addresses = await self._addresses(host, port, shown)
        if not any(entry.exact for entry in entries) and not all(is_public(a) for a in addresses):
            raise _refused(
                f"server-side tools may not connect to {shown}: it resolves to a private, loopback or "
                f"link-local address, which is allowed only when {CONFIG_KEY} lists the host itself"
            )
        return Destination(scheme, host, port, addresses[0])

    async def _addresses(self, host: str, port: int, shown: str) -> list[str]:
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            pass
        try:
            addresses = await self._resolve(host, port)
        except OSError as exc:
            raise InvalidRequest(
                f"server-side tools cannot connect to {shown}: the name does not resolve",
                code="tool_host_unresolvable",
                param="tools",
            ) from exc
        if not addresses:
            raise InvalidRequest(
                f"server-side tools cannot connect to {shown}: the name has no addresses",
                code="tool_host_unresolvable",
                param="tools",
            )
        return addresses


def _split(url: str) -> tuple[str, str, int]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidRequest(f"{url!r} is not a valid URL", code="invalid_url", param="tools") from exc
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidRequest(
            f"server-side tools connect over http or https only, not {scheme or 'a URL without a scheme'}",
            code="invalid_url",
            param="tools",
        )
    if not parts.hostname:
        raise InvalidRequest(f"{url!r} has no host", code="invalid_url", param="tools")
    return scheme, _canonical(parts.hostname), port or _DEFAULT_PORTS[scheme]


async def check_url(url: str, allowlist: Sequence[str], resolve: Resolve = resolve_host) -> Destination:
    """Check one URL against an allowlist (see `Egress.check`)."""
    return await Egress(allowlist, resolve).check(url)
