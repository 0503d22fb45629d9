"""One error hierarchy for the whole gateway; each HTTP surface renders it in its own shape."""

from __future__ import annotations

from typing import Any

import orjson


class FoundryError(Exception):
    """An error a client should see: an HTTP status plus the OpenAI error fields."""

    status = 500
    type = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if type is not None:
            self.type = type
        if code is not None:
            self.code = code
        self.param = param
        self.headers = headers or {}

    def to_openai(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "code": self.code, "param": self.param}}

    def openai_body(self) -> bytes:
        return orjson.dumps(self.to_openai())


class InvalidRequest(FoundryError):
    status = 400
    type = "invalid_request_error"


class Unauthorized(FoundryError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class Forbidden(FoundryError):
    status = 403
    type = "permission_error"
    code = "forbidden"


class NotFound(FoundryError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class Conflict(FoundryError):
    status = 409
    type = "invalid_request_error"
    code = "conflict"


class PayloadTooLarge(FoundryError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class RateLimited(FoundryError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class UpstreamError(FoundryError):
    """An upstream answered with an error; status and fields come from its body, mapped to OpenAI's."""

    status = 502
    type = "upstream_error"
    upstream_status: int | None = None
    """The status the upstream itself answered with, when it answered."""


class UpstreamUnavailable(FoundryError):
    """The upstream could not be reached (refused, reset, DNS)."""

    status = 502
    type = "upstream_error"
    code = "upstream_unavailable"


class Unavailable(FoundryError):
    """No backend of a deployment could serve the call."""

    status = 503
    type = "server_error"
    code = "deployment_unavailable"


class UpstreamTimeout(FoundryError):
    status = 504
    type = "timeout_error"
    code = "upstream_timeout"


_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def error_type_for_status(status: int) -> str:
    """The OpenAI error `type` that matches an HTTP status."""
    return _TYPE_BY_STATUS.get(status, "server_error" if status >= 500 else "invalid_request_error")
