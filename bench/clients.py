"""Choose the HTTP client by measuring: one minimal Starlette pass-through proxy, forwarding with each client.

`python bench/clients.py` starts the fake upstream (bench/upstream.py), then for each client runs the
proxy below in its own uvicorn process and drives it with bench/load.py at concurrency 64, and prints
requests/s for each:
- in the main venv (uvicorn with uvloop + httptools): aiohttp's ClientSession and httpx2's AsyncClient
  (the only httpx-family module installed there);
- in bench/.litellm-venv, when it exists (bench/litellm.sh makes it): aiohttp and httpx 0.28's
  AsyncClient, the client LiteLLM uses (that venv has no httptools, so uvicorn parses with h11 there:
  compare clients within one venv, not across).
Both pools get the same size (1024 connections, all kept alive).

`python bench/clients.py serve --client aiohttp|httpx|httpx2 --port P --upstream URL` runs one proxy;
bench/gateway.py uses it as the "bare pass-through" reference.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
LITELLM_PYTHON = BENCH / ".litellm-venv" / "bin" / "python"
POOL = 1024


def create_proxy(client: str, upstream: str) -> Any:
    """The Starlette app: POST /v1/chat/completions forwarded to `upstream`, streamed or whole."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response, StreamingResponse
    from starlette.routing import Route

    url = upstream.rstrip("/") + "/chat/completions"
    headers = {"Content-Type": "application/json"}
    state: dict[str, Any] = {}

    if client == "aiohttp":
        import aiohttp

        async def start() -> None:
            state["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=POOL))

        async def stop() -> None:
            await state["session"].close()

        async def forward(body: bytes, stream: bool) -> Response:
            session: aiohttp.ClientSession = state["session"]
            if not stream:
                async with session.post(url, data=body, headers=headers) as answer:
                    return Response(await answer.read(), answer.status, media_type="application/json")
            answer = await session.post(url, data=body, headers=headers)

            async def chunks() -> AsyncIterator[bytes]:
                try:
                    async for chunk in answer.content.iter_any():
                        yield chunk
                finally:
                    answer.release()

            return StreamingResponse(chunks(), answer.status, media_type="text/event-stream")

    else:
        httpx: Any = __import__(client)  # "httpx" or "httpx2": the same AsyncClient API

        async def start() -> None:
            limits = httpx.Limits(max_connections=POOL, max_keepalive_connections=POOL)
            state["client"] = httpx.AsyncClient(limits=limits, timeout=60)

        async def stop() -> None:
            await state["client"].aclose()

        async def forward(body: bytes, stream: bool) -> Response:
            http = state["client"]
            if not stream:
                answer = await http.post(url, content=body, headers=headers)
                return Response(answer.content, answer.status_code, media_type="application/json")
            answer = await http.send(http.build_request("POST", url, content=body, headers=headers), stream=True)

            async def chunks() -> AsyncIterator[bytes]:
                try:
                    async for chunk in answer.aiter_raw():
                        yield chunk
                finally:
                    await answer.aclose()

            return StreamingResponse(chunks(), answer.status_code, media_type="text/event-stream")

    async def chat(request: Request) -> Response:
        body = await request.body()
        return await forward(body, b'"stream":true' in body.replace(b" ", b""))

    async def health(_: Request) -> Response:
        return PlainTextResponse("ok")

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await start()
        yield
        await stop()

    routes = [Route("/v1/chat/completions", chat, methods=["POST"]), Route("/health", health)]
    return Starlette(routes=routes, lifespan=lifespan)


def serve(client: str, port: int, upstream: str) -> None:
    import uvicorn

    loop = "uvloop"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        loop = "asyncio"
    app = create_proxy(client, upstream)
    uvicorn.run(app, host="127.0.0.1", port=port, loop=loop, access_log=False, log_level="warning")


# ---- comparison -------------------------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} not ready after {timeout} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def load(url: str, concurrency: int, duration: float, warmup: float, stream: bool) -> dict[str, Any]:
    command = [sys.executable, str(BENCH / "load.py"), "--url", url, "-c", str(concurrency)]
    command += ["--duration", str(duration), "--warmup", str(warmup)] + (["--stream"] if stream else [])
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration + warmup + 60, check=True)
    return dict(json.loads(done.stdout))


def compare(duration: float, warmup: float, concurrency: int, stream: bool) -> list[dict[str, Any]]:
    variants: list[tuple[str, str, str]] = []  # (label, python, client)
    main_python = sys.executable
    for client in ("aiohttp", "httpx", "httpx2"):
        found = subprocess.run([main_python, "-c", f"import {client}"], capture_output=True).returncode == 0
        if found:
            variants.append((f"main venv, httptools: {client}", main_python, client))
    if LITELLM_PYTHON.exists():
        for client in ("aiohttp", "httpx"):
            variants.append((f".litellm-venv, h11: {client}", str(LITELLM_PYTHON), client))
    else:
        print("(bench/.litellm-venv is missing: run bench/litellm.sh to add httpx 0.28 to the comparison)")
    upstream_port = free_port()
    upstream = subprocess.Popen([main_python, str(BENCH / "upstream.py"), "--port", str(upstream_port)])
    results = []
    try:
        wait_ready(f"http://127.0.0.1:{upstream_port}/health", upstream)
        base = f"http://127.0.0.1:{upstream_port}"
        alone = load(base + "/v1/chat/completions", concurrency, duration, warmup, stream)
        results.append({"variant": "fake upstream alone", "rps": alone["rps"], "errors": alone["errors"]})
        for label, python, client in variants:
            port = free_port()
            command = [python, str(Path(__file__).resolve()), "serve", "--client", client, "--port", str(port)]
            proxy = subprocess.Popen([*command, "--upstream", base + "/v1"])
            try:
                wait_ready(f"http://127.0.0.1:{port}/health", proxy)
                result = load(f"http://127.0.0.1:{port}/v1/chat/completions", concurrency, duration, warmup, stream)
            finally:
                stop(proxy)
            results.append(
                {
                    "variant": label,
                    "rps": result["rps"],
                    "errors": result["errors"],
                    "p50_ms": result["latency_ms"]["p50"] if result["latency_ms"] else None,
                    "p99_ms": result["latency_ms"]["p99"] if result["latency_ms"] else None,
                }
            )
    finally:
        stop(upstream)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    one = sub.add_parser("serve", help="run one proxy")
    one.add_argument("--client", choices=("aiohttp", "httpx", "httpx2"), required=True)
    one.add_argument("--port", type=int, required=True)
    one.add_argument("--upstream", required=True, help="base URL, e.g. http://127.0.0.1:9000/v1")
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("-c", "--concurrency", type=int, default=64)
    parser.add_argument("--stream", action="store_true", help="streamed answers instead of whole ones")
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.client, args.port, args.upstream)
        return
    os.environ["NO_PROXY"] = "127.0.0.1,localhost"  # loopback only, never through a proxy
    results = compare(args.duration, args.warmup, args.concurrency, args.stream)
    kind = "streaming" if args.stream else "non-streaming"
    print(f"\nStarlette pass-through proxy, {kind}, concurrency {args.concurrency}, {args.duration:g} s each\n")
    print("| proxy forwarding with | requests/s | p50 ms | p99 ms | errors |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for row in results:
        p50, p99 = row.get("p50_ms"), row.get("p99_ms")
        cells = [row["variant"], f"{row['rps']:,.0f}", "" if p50 is None else f"{p50:.2f}"]
        cells += ["" if p99 is None else f"{p99:.2f}", str(row["errors"])]
        print("| " + " | ".join(cells) + " |")
    out = BENCH / "results" / f"clients-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"kind": kind, "concurrency": args.concurrency, "results": results}, indent=2))
    print(f"\nwritten: {out.relative_to(BENCH.parent)}")


if __name__ == "__main__":
    main()
