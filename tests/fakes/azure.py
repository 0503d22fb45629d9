"""A fake Azure upstream: the AI Foundry models endpoint and Azure OpenAI deployment URLs.

From Azure's REST references: `POST {endpoint}/models/chat/completions?api-version=2024-05-01-preview`
(model chosen by the body's `model`) and `POST {resource}/openai/deployments/{deployment}/chat/completions
?api-version=...` (model chosen by the URL); both take the key in an `api-key` header and answer errors
as {"error": {"code", "message"}}. The bodies are OpenAI's, so the OpenAI fake's handlers answer them.
"""

from __future__ import annotations

import json

from aiohttp import web

from tests.fakes import openai
from tests.fakes.server import new_app


def create(api_key: str = "azure-upstream-key") -> web.Application:
    app = new_app()
    app["key"] = api_key
    app["flavour"] = "openai"
    app.router.add_post("/models/chat/completions", _endpoint(openai.answer_chat, by_deployment=False))
    app.router.add_post("/models/embeddings", _endpoint(openai.answer_embeddings, by_deployment=False))
    deployment = "/openai/deployments/{deployment}"
    app.router.add_post(f"{deployment}/chat/completions", _endpoint(openai.answer_chat, by_deployment=True))
    app.router.add_post(f"{deployment}/embeddings", _endpoint(openai.answer_embeddings, by_deployment=True))
    return app


def _azure_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _check(request: web.Request) -> web.Response | None:
    if request.headers.get("api-key") != request.app["key"]:
        return _azure_error(401, "401", "Access denied due to invalid subscription key or wrong API endpoint.")
    if "api-version" not in request.query:
        return _azure_error(
            400, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required."
        )
    return None


def _endpoint(answerer: openai.Answerer, by_deployment: bool) -> web.Handler:
    async def serve(request: web.Request) -> web.StreamResponse:
        refused = _check(request)
        if refused is not None:
            return refused
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _azure_error(400, "BadRequest", "The request body is not valid JSON.")
        if by_deployment:
            deployment = request.match_info["deployment"]
            if deployment.startswith("missing"):
                return _azure_error(404, "DeploymentNotFound", f"The API deployment {deployment} does not exist.")
            body["model"] = deployment
        elif not isinstance(body.get("model"), str):
            return _azure_error(400, "BadRequest", "model is required")
        return await answerer(request, body)

    return serve
