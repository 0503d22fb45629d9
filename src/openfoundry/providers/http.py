"""One aiohttp connection pool per provider, with its timeouts mapped to gateway errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any

import aiohttp

from openfoundry.config import ProviderSettings
from openfoundry.errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable, error_type_for_status


class Http:
    """The HTTP side of one provider: a pooled session and error mapping for transport failures."""

    def __init__(self, name: str, settings: ProviderSettings, headers: Mapping[str, str]) -> None:
        self.name = name
        self.settings = settings
        self.headers = {"Content-Type": "application/json", **headers, **settings.headers}
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        timeout = self.settings.timeout
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.settings.max_connections, ttl_dns_cache=300),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout.connect, sock_read=timeout.read),
            headers=self.headers,
            skip_auto_headers=("User-Agent",),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError(f"provider {self.name!r} used before start()")
        return self._session

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str] | None = None, params: Mapping[str, str] | None = None
    ) -> tuple[int, bytes, Mapping[str, str]]:
        """POST and read the whole answer: (status, body, headers)."""
        try:
            async with self.session.post(url, data=body, headers=headers, params=params) as response:
                return response.status, await response.read(), response.headers
        except Exception as exc:
            raise self.transport_error(exc) from exc

    async def open(
        self, url: str, body: bytes, headers: Mapping[str, str] | None = None, params: Mapping[str, str] | None = None
    ) -> aiohttp.ClientResponse:
        """POST and return once the headers are in; the caller reads and releases the response."""
        try:
            return await self.session.post(url, data=body, headers=headers, params=params)
        except Exception as exc:
            raise self.transport_error(exc) from exc

    async def open_stream(
        self,
        url: str,
        body: bytes,
        error: Callable[[int, bytes, Mapping[str, str]], BaseException],
        params: Mapping[str, str] | None = None,
    ) -> AsyncGenerator[bytes, None]:
        """POST for a stream: an error status is read and raised through `error`; otherwise the body's
        chunks as they arrive (see `chunks`)."""
        response = await self.open(url, body, params=params)
        if response.status >= 400:
            try:
                data = await response.read()
            except Exception as exc:
                raise self.transport_error(exc) from exc
            finally:
                response.release()
            raise error(response.status, data, response.headers)
        return self.chunks(response)

    async def chunks(self, response: aiohttp.ClientResponse) -> AsyncGenerator[bytes, None]:
        """The response body as it arrives; transport failures become FoundryErrors; always released."""
        try:
            async for chunk in response.content.iter_any():
                yield chunk
        except Exception as exc:
            raise self.transport_error(exc) from exc
        finally:
            response.release()

    def transport_error(self, exc: BaseException) -> BaseException:
        """Map a transport exception to the error a client should see; others pass unchanged."""
        timeout = self.settings.timeout
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            return UpstreamTimeout(f"provider {self.name!r} could not be reached within {timeout.connect:g} s")
        if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
            return UpstreamTimeout(f"provider {self.name!r} sent nothing for {timeout.read:g} s (read timeout)")
        if isinstance(exc, aiohttp.ClientPayloadError):
            return UpstreamUnavailable(f"provider {self.name!r} broke off its answer: {exc}")
        if isinstance(exc, aiohttp.ClientError | OSError):
            return UpstreamUnavailable(f"provider {self.name!r} is unreachable: {exc.__class__.__name__}: {exc}")
        return exc


def upstream_failure(
    provider: str,
    status: int,
    message: str,
    headers: Mapping[str, str],
    *,
    type: str | None = None,
    code: str | None = None,
    param: str | None = None,
    auth_refused: bool = False,
) -> UpstreamError:
    """The error a client gets for an upstream's error answer, whatever protocol it came in.

    `auth_refused` marks answers that mean the upstream refused the gateway's own credentials even
    though their status says otherwise (xAI and Gemini answer a bad key with 400).
    """
    if status in (401, 403) or auth_refused:
        error = UpstreamError(
            f"provider {provider!r} rejected the gateway's credentials: {message}",
            status=502,
            code="upstream_auth_error",
        )
    else:
        client_status = upstream_status(status)
        error = UpstreamError(
            message if client_status < 500 else f"provider {provider!r} failed: {message}",
            status=client_status,
            type=type or error_type_for_status(client_status),
            code=code or (f"upstream_{status}" if client_status >= 500 else None),
            param=param,
            headers=retry_after(headers),
        )
    error.upstream_status = status
    return error


def malformed(provider: str, what: str = "answered with malformed JSON") -> UpstreamError:
    """An upstream answer we cannot read: a bad gateway, so another backend may be tried."""
    error = UpstreamError(f"provider {provider!r} {what}", code="upstream_malformed")
    error.upstream_status = 502
    return error


def upstream_status(status: int) -> int:
    """The status a client gets for an upstream error status.

    Request problems keep their status; the upstream refusing *our* credentials is a gateway fault (502),
    not the client's; an overloaded upstream (Anthropic's 529) is 503; other 5xx become 502.
    """
    if status in (401, 403, 407):
        return 502
    if status == 529:
        return 503
    if 400 <= status < 500 or status in (503, 504):
        return status
    return 502


def retry_after(headers: Mapping[str, str]) -> dict[str, str]:
    value = headers.get("Retry-After")
    return {"Retry-After": value} if value else {}


def error_fields(payload: Any) -> tuple[str | None, str | None, str | None, str | None]:
    """(message, type, code, param) from an OpenAI-shaped error body, or Nones."""
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        error = payload["error"]
        code = error.get("code")
        return (
            _text(error.get("message")),
            _text(error.get("type")),
            None if code is None else str(code),
            _text(error.get("param")),
        )
    return None, None, None, None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
