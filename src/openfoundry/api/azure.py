"""Azure's surfaces: AI Model Inference under /models, Azure OpenAI deployment URLs, and /openai/v1.

Azure's inference bodies and answers are OpenAI's, so requests go to the gateway nearly as they come
and answers come back untouched. What differs is around them: the `api-version` query parameter, the
`extra-parameters` header, where the model is named, and the error shape. Wire format from Azure's REST
references (Model Inference: chat completions, embeddings, info) and the `azure-ai-inference` SDK.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from openfoundry.api.http import add_raw_route, answer, openai_error, parse_object, read_body, until_disconnect
from openfoundry.errors import FoundryError, InvalidRequest
from openfoundry.gateway import Gateway
from openfoundry.providers.base import Kind
from openfoundry.wire.requests import CHECKS

OLDEST_INFERENCE_VERSION = (dt.date(2024, 5, 1), False)
"""The oldest Model Inference api-version served: 2024-05-01-preview (the SDK's default)."""
SCHEMA_FIELDS: dict[Kind, frozenset[str]] = {
    "chat": frozenset(
        {
            "messages",
            "model",
            "frequency_penalty",
            "presence_penalty",
            "temperature",
            "top_p",
            "max_tokens",
            "response_format",
            "stop",
            "stream",
            "tools",
            "tool_choice",
            "seed",
        }
    ),
    "embeddings": frozenset({"input", "model", "dimensions", "encoding_format", "input_type"}),
}
"""The body fields Azure's Model Inference schema defines; any other is an "extra parameter"."""
EXTRA_PARAMETERS = ("error", "drop", "pass-through")
MODEL_TYPES = {"chat": "chat_completion", "embeddings": "embeddings", "image": "image_generation"}
"""Catalog kind -> the ModelType that /info reports (the values the azure-ai-inference SDK knows)."""
DEPLOYMENT_HEADER = "azureml-model-deployment"
"""Azure's header naming the deployment, used when the body (or /info's query) names no model."""

_VERSION = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(-preview)?$")

Prepare = Callable[[Request, Kind, dict[str, Any]], bool]
"""Checks a route's own rules and brings the body to canonical form; True if it changed the body."""


class ParameterNotSupported(FoundryError):
    """A body field outside Azure's schema while `extra-parameters` is `error` (or not sent)."""

    status = 422
    type = "invalid_request_error"
    code = "parameter_not_supported"

    def __init__(self, names: list[str], body: dict[str, Any]) -> None:
        super().__init__(
            f"Extra parameters {names} are not allowed when extra-parameters is not set or set to be 'error'. "
            "Set extra-parameters to 'pass-through' to pass them to the model, or to 'drop' to ignore them.",
            param=names[0],
        )
        self.detail = {"loc": ["body", names[0]], "input": body[names[0]]}


def azure_error(exc: FoundryError) -> Response:
    """Azure's Model Inference error shape: {"error": {"code", "message", "status", ...}}."""
    code = exc.code or exc.type
    error: dict[str, Any] = {"code": code, "message": exc.message, "status": exc.status}
    if exc.param:
        error["param"] = exc.param
    if isinstance(exc, ParameterNotSupported):
        error["detail"] = exc.detail
    headers = {**exc.headers, "x-ms-error-code": code}
    return Response(orjson.dumps({"error": error}), exc.status, headers=headers, media_type="application/json")


def check_api_version(value: str | None, oldest: tuple[dt.date, bool] | None) -> None:
    """`api-version` must be there, read YYYY-MM-DD or YYYY-MM-DD-preview, and be no older than `oldest`."""
    if value is None:
        raise InvalidRequest(
            "The api-version query parameter (?api-version=) is required for all requests.",
            param="api-version",
            code="MissingApiVersionParameter",
        )
    match = _VERSION.match(value)
    try:
        version = (dt.date(*map(int, match.groups()[:3])), match[4] is None) if match else None
    except ValueError:
        version = None
    if version is None or (oldest is not None and version < oldest):
        since = f" Use {oldest[0].isoformat()}{'' if oldest[1] else '-preview'} or later." if oldest else ""
        raise InvalidRequest(
            f"The api-version '{value}' is not supported.{since}", param="api-version", code="UnsupportedApiVersion"
        )


def apply_extra_parameters(mode: str | None, kind: Kind, body: dict[str, Any]) -> bool:
    """Enforce the `extra-parameters` header on the body; True if fields were dropped."""
    mode = mode or "error"
    if mode not in EXTRA_PARAMETERS:
        raise InvalidRequest(
            f"extra-parameters must be one of {', '.join(EXTRA_PARAMETERS)}; got {mode!r}",
            param="extra-parameters",
            code="invalid_header",
        )
    extra = [name for name in body if name not in SCHEMA_FIELDS[kind]]
    if not extra or mode == "pass-through":
        return False
    if mode == "error":
        raise ParameterNotSupported(extra, body)
    for name in extra:
        del body[name]
    return True


def _inference(request: Request, kind: Kind, body: dict[str, Any]) -> bool:
    """/models: api-version checked, the model from the body (or Azure's deployment header), extras handled."""
    check_api_version(request.query_params.get("api-version"), OLDEST_INFERENCE_VERSION)
    changed = False
    if body.get("model") is None and request.headers.get(DEPLOYMENT_HEADER):
        body["model"], changed = request.headers[DEPLOYMENT_HEADER], True
    if body.get("model") is None:
        raise InvalidRequest("missing required parameter: 'model'", param="model", code="missing_required_parameter")
    changed |= apply_extra_parameters(request.headers.get("extra-parameters"), kind, body)
    if kind == "embeddings" and "input_type" in body:
        # Azure's input_type (text, query, document) is a hint the canonical request has no field for.
        del body["input_type"]
        changed = True
    return changed


def _deployment(request: Request, kind: Kind, body: dict[str, Any]) -> bool:
    """/openai/deployments/{deployment}: the URL names the deployment; any dated api-version is accepted."""
    check_api_version(request.query_params.get("api-version"), None)
    deployment = request.path_params["deployment"]
    if body.get("model") == deployment:
        return False
    body["model"] = deployment
    return True


def _as_sent(request: Request, kind: Kind, body: dict[str, Any]) -> bool:
    """/openai/v1: OpenAI's API as it is; the api-version Azure's v1 routes take is optional and unchecked."""
    return False


def _body_schema(required: list[str]) -> dict[str, Any]:
    return {"type": "object", "required": required, "additionalProperties": True}


ROUTES: list[tuple[str, Kind, Prepare, Callable[[FoundryError], Response]]] = [
    ("/models/chat/completions", "chat", _inference, azure_error),
    ("/models/embeddings", "embeddings", _inference, azure_error),
    ("/openai/deployments/{deployment}/chat/completions", "chat", _deployment, openai_error),
    ("/openai/deployments/{deployment}/completions", "completions", _deployment, openai_error),
    ("/openai/deployments/{deployment}/embeddings", "embeddings", _deployment, openai_error),
    ("/openai/v1/chat/completions", "chat", _as_sent, openai_error),
    ("/openai/v1/embeddings", "embeddings", _as_sent, openai_error),
]
_REQUIRED = {"chat": ["messages"], "completions": ["prompt"], "embeddings": ["input"]}


def add_routes(app: FastAPI, gateway: Gateway, max_body_bytes: int) -> None:
    def endpoint(
        path: str, kind: Kind, prepare: Prepare, render: Callable[[FoundryError], Response]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            started = time.perf_counter()
            try:
                principal = gateway.authenticate(request.headers)
                raw = await read_body(request, max_body_bytes)
                body = parse_object(raw)
                if prepare(request, kind, body):
                    raw = orjson.dumps(body)
                CHECKS[kind](body)
                outcome = await until_disconnect(request, gateway.call(principal, kind, body, raw, started))
            except FoundryError as exc:
                return render(exc)
            return answer(outcome)

        serve.__name__ = "azure" + re.sub(r"\W+", "_", path.replace("{deployment}", "by_deployment"))
        return serve

    async def azure_model_info(request: Request) -> Response:
        try:
            principal = gateway.authenticate(request.headers)
            check_api_version(request.query_params.get("api-version"), OLDEST_INFERENCE_VERSION)
            model = request.query_params.get("model") or request.headers.get(DEPLOYMENT_HEADER)
            if not model:
                raise InvalidRequest("this endpoint serves many models: name one with ?model=DEPLOYMENT", param="model")
            deployment = gateway.resolve(principal, model)
        except FoundryError as exc:
            return azure_error(exc)
        card = deployment.card
        info = {
            "model_name": card.short_name,
            "model_type": MODEL_TYPES[card.kind],
            "model_provider_name": card.publisher,
        }
        return Response(orjson.dumps(info), media_type="application/json")

    async def azure_list_models(request: Request) -> Response:
        try:
            principal = gateway.authenticate(request.headers)
        except FoundryError as exc:
            return openai_error(exc)
        data = [
            {"id": d.name, "object": "model", "created": 0, "owned_by": d.card.publisher}
            for d in gateway.deployments
            if principal.may_use(d.name)
        ]
        return Response(orjson.dumps({"object": "list", "data": data}), media_type="application/json")

    for path, kind, prepare, render in ROUTES:
        body = _body_schema(_REQUIRED[kind])
        add_raw_route(app, path, endpoint(path, kind, prepare, render), "POST", tag="azure", body=body)
    add_raw_route(app, "/models/info", azure_model_info, "GET", tag="azure")
    add_raw_route(app, "/openai/v1/models", azure_list_models, "GET", tag="azure")
