"""OpenAPI 3.0/3.1 documents → the operations a connector offers as tools.

Each operation becomes one function whose arguments are an object: its path, query and header
parameters by name, and its JSON request body under `body` (`request_body` when a parameter is already
called `body`). Local `$ref`s are inlined (a recursive schema is left open where it recurs); cookie
parameters and bodies that are not JSON are not supported, and the operations needing them are left
out with a reason (`ApiSpec.skipped`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit

import orjson
import yaml

from openfoundry.errors import InvalidRequest

Location = Literal["path", "query", "header"]
_LOCATIONS: dict[str, Location] = {"path": "path", "query": "query", "header": "header"}
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_MAX_NODES = 200_000
"""Inlining `$ref`s may copy a schema many times; a document that grows past this many nodes is refused."""
_WORD = re.compile(r"[^A-Za-z0-9]+")
_TEMPLATE = re.compile(r"\{([^}]+)\}")


def _invalid(message: str) -> InvalidRequest:
    return InvalidRequest(message, param="spec", code="invalid_openapi_spec")


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    location: Location
    required: bool


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    method: str
    url: str
    headers: dict[str, str]
    json: Any | None
    """The JSON body; None when the operation has none or the call gave none."""


@dataclass(frozen=True, slots=True)
class Operation:
    name: str
    """The operationId, or one made of the method and path."""
    method: str
    path: str
    description: str
    parameters: tuple[Parameter, ...]
    body_key: str | None
    """The argument that carries the JSON body; None when the operation takes no body."""
    schema: dict[str, Any]
    """The JSON schema of the function's arguments."""

    def request(self, base_url: str, arguments: dict[str, Any]) -> PreparedRequest:
        """The HTTP request for one call; ValueError names a missing required argument."""
        missing = [p.name for p in self.parameters if p.required and arguments.get(p.name) is None]
        if missing:
            raise ValueError(f"missing required argument(s): {', '.join(missing)}")
        given = [p for p in self.parameters if arguments.get(p.name) is not None]
        values = {p.name: arguments[p.name] for p in given}
        path = _TEMPLATE.sub(lambda m: quote(_text(values.get(m.group(1), "")), safe=""), self.path)
        query = [(p.name, item) for p in given if p.location == "query" for item in _query_values(values[p.name])]
        url = base_url + path
        if query:
            url += ("&" if "?" in url else "?") + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query)
        headers = {p.name: _text(values[p.name]) for p in given if p.location == "header"}
        body = arguments.get(self.body_key) if self.body_key else None
        return PreparedRequest(self.method, url, headers, body)


@dataclass(frozen=True, slots=True)
class ApiSpec:
    title: str
    server_url: str
    operations: tuple[Operation, ...]
    skipped: list[dict[str, str]] = field(default_factory=list)
    """Operations left out, each with the reason."""


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode()


def _query_values(value: Any) -> list[str]:
    """OpenAPI's default query style (form, exploded): a list repeats the parameter."""
    return [_text(item) for item in value] if isinstance(value, list) else [_text(value)]


def load_document(spec: dict[str, Any] | str) -> dict[str, Any]:
    """The spec as a JSON-compatible mapping, from an object or from JSON or YAML text."""
    if isinstance(spec, str):
        try:
            spec = yaml.safe_load(spec)
        except yaml.YAMLError as exc:
            raise _invalid(f"the spec is neither JSON nor YAML: {exc}") from exc
    if not isinstance(spec, dict):
        raise _invalid("the spec must be an OpenAPI document (an object)")
    try:
        document: dict[str, Any] = orjson.loads(orjson.dumps(spec, option=orjson.OPT_NON_STR_KEYS))
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise _invalid(f"the spec holds values JSON cannot carry: {exc}") from exc
    return document


def parse_spec(document: dict[str, Any], base_url: str | None = None) -> ApiSpec:
    """The operations of an OpenAPI 3.x document; InvalidRequest (400) for anything else."""
    version = document.get("openapi")
    if not isinstance(version, str) or not version.startswith("3."):
        found = "a Swagger 2.0 document" if "swagger" in document else "not an OpenAPI 3.x document"
        raise _invalid(f"the spec is {found}; connectors take OpenAPI 3.0 or 3.1 (`openapi: 3.x`)")
    paths = document.get("paths")
    if not isinstance(paths, dict):
        raise _invalid("the spec has no `paths` object")
    resolver = _Resolver(document)
    operations: list[Operation] = []
    skipped: list[dict[str, str]] = []
    for path, item in paths.items():
        resolved = resolver.resolve(item)
        if not isinstance(resolved, dict):
            raise _invalid(f"paths.{path} must be an object")
        for method in METHODS:
            if isinstance(resolved.get(method), dict):
                try:
                    operations.append(_operation(path, method, resolved))
                except _Unsupported as exc:
                    skipped.append({"operation": f"{method.upper()} {path}", "reason": str(exc)})
    if not operations:
        raise _invalid("the spec defines no operations this server can call" + _reasons(skipped))
    _check_unique(operations)
    info = document.get("info")
    title = str(info.get("title", "")) if isinstance(info, dict) else ""
    return ApiSpec(title, _server_url(document, base_url), tuple(operations), skipped)


def _reasons(skipped: list[dict[str, str]]) -> str:
    return "" if not skipped else " (" + "; ".join(f"{s['operation']}: {s['reason']}" for s in skipped[:5]) + ")"


def _check_unique(operations: list[Operation]) -> None:
    seen: set[str] = set()
    for operation in operations:
        if operation.name in seen:
            raise _invalid(f"operationId {operation.name!r} is used by more than one operation")
        seen.add(operation.name)


def _server_url(document: dict[str, Any], base_url: str | None) -> str:
    url = base_url
    servers = document.get("servers")
    if url is None and isinstance(servers, list) and servers and isinstance(servers[0], dict):
        server = servers[0]
        url = str(server.get("url", ""))
        variables = server.get("variables") if isinstance(server.get("variables"), dict) else {}
        for name, variable in (variables or {}).items():
            default = variable.get("default", "") if isinstance(variable, dict) else ""
            url = url.replace("{" + str(name) + "}", str(default))
    if not url:
        raise _invalid("the spec names no server (`servers[0].url`); give base_url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _invalid(f"the server URL {url!r} is not an absolute http(s) URL; give base_url")
    return url.rstrip("/")


class _Unsupported(Exception):
    """An operation this server cannot call; it is left out."""


def _operation(path: str, method: str, item: dict[str, Any]) -> Operation:
    spec = item[method]
    parameters, properties, required = _parameters(item.get("parameters"), spec.get("parameters"))
    declared = {p.name for p in parameters if p.location == "path"}
    undeclared = [name for name in _TEMPLATE.findall(path) if name not in declared]
    if undeclared:
        raise _Unsupported(f"path parameter(s) {', '.join(undeclared)} not declared")
    body_key = None
    body = spec.get("requestBody")
    if isinstance(body, dict):
        body_key = "request_body" if "body" in properties else "body"
        properties[body_key] = _body_schema(body)
        if body.get("required"):
            required.append(body_key)
    name = spec.get("operationId") or _WORD.sub("_", f"{method} {path}").strip("_")
    description = " — ".join(str(spec[key]) for key in ("summary", "description") if spec.get(key))
    schema = {"type": "object", "properties": properties, "required": required}
    return Operation(str(name), method.upper(), path, description[:1024], parameters, body_key, schema)


def _parameters(shared: Any, own: Any) -> tuple[tuple[Parameter, ...], dict[str, Any], list[str]]:
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for parameter in [*(shared or []), *(own or [])]:
        if isinstance(parameter, dict) and "name" in parameter and "in" in parameter:
            merged[(str(parameter["name"]), str(parameter["in"]))] = parameter
    found: list[Parameter] = []
    properties: dict[str, Any] = {}
    required: list[str] = []
    for (name, where), parameter in merged.items():
        must = where == "path" or bool(parameter.get("required"))
        location = _LOCATIONS.get(where)
        if location is None:
            if must:
                raise _Unsupported(f"{where} parameter {name!r} is not supported")
            continue
        if name in properties:
            raise _Unsupported(f"two parameters are called {name!r}")
        properties[name] = _parameter_schema(parameter)
        found.append(Parameter(name, location, must))
        if must:
            required.append(name)
    return tuple(found), properties, required


def _parameter_schema(parameter: dict[str, Any]) -> dict[str, Any]:
    found: Any = parameter.get("schema")
    content = parameter.get("content")
    if not isinstance(found, dict) and isinstance(content, dict) and content:
        entry = next(iter(content.values()))
        found = entry.get("schema") if isinstance(entry, dict) else None
    schema: dict[str, Any] = dict(found) if isinstance(found, dict) else {"type": "string"}
    if parameter.get("description") and "description" not in schema:
        schema["description"] = str(parameter["description"])
    return schema


def _body_schema(body: dict[str, Any]) -> dict[str, Any]:
    content = body.get("content") if isinstance(body.get("content"), dict) else {}
    for media_type, entry in (content or {}).items():
        if _is_json(media_type) and isinstance(entry, dict):
            schema = entry.get("schema")
            schema = dict(schema) if isinstance(schema, dict) else {}
            if body.get("description") and "description" not in schema:
                schema["description"] = str(body["description"])
            return schema
    raise _Unsupported(f"the request body is not JSON ({', '.join(content or {}) or 'no media type'})")


def _is_json(media_type: str) -> bool:
    kind = media_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or kind.endswith("+json")


class _Resolver:
    """Inlines local `$ref`s (`#/…`); a reference back into itself becomes an open schema `{}`."""

    def __init__(self, document: dict[str, Any]) -> None:
        self._document = document
        self._nodes = 0

    def resolve(self, node: Any, seen: tuple[str, ...] = ()) -> Any:
        self._nodes += 1
        if self._nodes > _MAX_NODES:
            raise _invalid(f"the spec grows past {_MAX_NODES} nodes once its $refs are inlined")
        if isinstance(node, list):
            return [self.resolve(item, seen) for item in node]
        if not isinstance(node, dict):
            return node
        reference = node.get("$ref")
        if reference is None:
            return {key: self.resolve(value, seen) for key, value in node.items()}
        if not isinstance(reference, str) or not reference.startswith("#"):
            raise _invalid(f"$ref {reference!r}: only references within the document (#/...) are supported")
        if reference in seen:
            return {}
        target = self.resolve(self._pointer(reference), (*seen, reference))
        siblings = {key: self.resolve(value, seen) for key, value in node.items() if key != "$ref"}
        return {**target, **siblings} if isinstance(target, dict) and siblings else target

    def _pointer(self, reference: str) -> Any:
        node: Any = self._document
        for token in unquote(reference[1:]).split("/")[1:]:
            key = token.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and key in node:
                node = node[key]
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            else:
                raise _invalid(f"$ref {reference!r} points to nothing in the spec")
        return node
