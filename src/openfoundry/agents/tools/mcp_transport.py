"""The HTTP transport under the MCP client: every request checked by the egress rules, sent to the
checked address, and its answer cut off past a size limit.

The `mcp` SDK sends each request, and each redirect hop it follows, through `client.send`, so checking
here covers them all. A refusal or an oversized answer is raised as an httpx2 error (the SDK reports
those as failed messages) and kept in `problem`, where the tool finds the real reason afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2

from openfoundry.agents.egress import Destination, Egress
from openfoundry.errors import InvalidRequest


class _CappedStream(httpx2.AsyncByteStream):
    def __init__(self, stream: httpx2.AsyncByteStream, limit: int, transport: EgressTransport) -> None:
        self._stream = stream
        self._limit = limit
        self._transport = transport

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = 0
        async for part in self._stream:
            seen += len(part)
            if seen > self._limit:
                self._transport.problem = f"the MCP server's answer passed {self._limit} bytes"
                raise httpx2.ReadError(self._transport.problem)
            yield part

    async def aclose(self) -> None:
        await self._stream.aclose()


class EgressTransport(httpx2.AsyncBaseTransport):
    def __init__(self, egress: Egress, max_answer_bytes: int) -> None:
        self._egress = egress
        self._max_answer_bytes = max_answer_bytes
        self._inner = httpx2.AsyncHTTPTransport(trust_env=False)
        self.problem: str | None = None
        """Why the last request failed here, if it did."""
        self.refusal: InvalidRequest | None = None
        """The egress refusal, when a request was refused."""
        self.http_problem: str | None = None
        """The error status of the last answer, if it was one."""

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            destination = await self._egress.check(str(request.url))
        except InvalidRequest as exc:
            self.refusal, self.problem = exc, exc.message
            raise httpx2.ConnectError(exc.message, request=request) from exc
        response = await self._inner.handle_async_request(_pinned(request, destination))
        failed = response.status_code >= 400
        self.http_problem = f"the MCP server answered HTTP {response.status_code}" if failed else None
        assert isinstance(response.stream, httpx2.AsyncByteStream)
        return httpx2.Response(
            response.status_code,
            headers=response.headers,
            stream=_CappedStream(response.stream, self._max_answer_bytes, self),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


def _pinned(request: httpx2.Request, destination: Destination) -> httpx2.Request:
    """The same request, addressed to the checked IP; Host and TLS name stay those of the URL."""
    extensions = dict(request.extensions)
    if destination.scheme == "https":
        extensions["sni_hostname"] = destination.host
    return httpx2.Request(
        request.method,
        request.url.copy_with(host=destination.address),
        headers=request.headers,
        stream=request.stream,
        extensions=extensions,
    )
