"""The OpenAI-compatible surface under /v1: chat/completions, completions, embeddings, models."""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from openfoundry.api.http import add_raw_route, answer, openai_error, parse_object, read_body, until_disconnect
from openfoundry.errors import FoundryError
from openfoundry.gateway import Gateway
from openfoundry.providers.base import Kind
from openfoundry.wire.requests import CHECKS


def _body_schema(required: list[str]) -> dict[str, Any]:
    return {"type": "object", "required": required, "additionalProperties": True}


def add_routes(app: FastAPI, gateway: Gateway, max_body_bytes: int) -> None:
    async def serve(request: Request, kind: Kind) -> Response:
        started = time.perf_counter()
        try:
            principal = gateway.authenticate(request.headers)
            raw = await read_body(request, max_body_bytes)
            body = parse_object(raw)
            CHECKS[kind](body)
            outcome = await until_disconnect(request, gateway.call(principal, kind, body, raw, started))
        except FoundryError as exc:
            return openai_error(exc)
        return answer(outcome)

    async def chat_completions(request: Request) -> Response:
        return await serve(request, "chat")

    async def completions(request: Request) -> Response:
        return await serve(request, "completions")

    async def embeddings(request: Request) -> Response:
        return await serve(request, "embeddings")

    async def list_models(request: Request) -> Response:
        try:
            principal = gateway.authenticate(request.headers)
        except FoundryError as exc:
            return openai_error(exc)
        data = [_model(d.name, d.card.publisher) for d in gateway.deployments if principal.may_use(d.name)]
        return Response(orjson.dumps({"object": "list", "data": data}), media_type="application/json")

    async def get_model(request: Request) -> Response:
        try:
            principal = gateway.authenticate(request.headers)
            deployment = gateway.resolve(principal, request.path_params["model"])
        except FoundryError as exc:
            return openai_error(exc)
        body = _model(deployment.name, deployment.card.publisher)
        return Response(orjson.dumps(body), media_type="application/json")

    for path, endpoint, required in (
        ("/v1/chat/completions", chat_completions, ["model", "messages"]),
        ("/v1/completions", completions, ["model", "prompt"]),
        ("/v1/embeddings", embeddings, ["model", "input"]),
    ):
        add_raw_route(app, path, endpoint, "POST", tag="openai", body=_body_schema(required))
    add_raw_route(app, "/v1/models", list_models, "GET", tag="openai")
    add_raw_route(app, "/v1/models/{model:path}", get_model, "GET", tag="openai")


def _model(name: str, publisher: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": publisher}
