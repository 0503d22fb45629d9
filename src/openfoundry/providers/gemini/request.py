"""OpenAI chat completions -> Gemini GenerateContentRequest."""

from __future__ import annotations

import mimetypes
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import orjson

from openfoundry.errors import InvalidRequest
from openfoundry.wire.requests import tool_arguments

THINKING_BUDGETS = {"minimal": 512, "low": 1024, "medium": 8192, "high": 24576}
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".heic": "image/heic",
    ".heif": "image/heif",
}
_TOOL_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
_SAMPLING = {
    "temperature": "temperature",
    "top_p": "topP",
    "n": "candidateCount",
    "seed": "seed",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
}


def model_path(model: str) -> str:
    return model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"


def request_body(body: dict[str, Any]) -> dict[str, Any]:
    """The Gemini request for an OpenAI chat completions request; unknown fields are ignored."""
    system, contents = _conversation(body.get("messages") or [])
    out: dict[str, Any] = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": system}
    out.update(_tooling(body))
    config = _generation_config(body)
    if config:
        out["generationConfig"] = config
    return out


def _conversation(messages: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system parts, contents): tool results go in user turns; same-role turns are merged."""
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    """Tool call id -> function name, from the assistant turns read so far."""
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        role = message.get("role") if isinstance(message, dict) else None
        if role in ("system", "developer"):
            system.extend(_text_parts(message.get("content"), where))
            continue
        if role == "user":
            parts = _user_parts(message.get("content"), where)
        elif role == "assistant":
            role, parts = "model", _model_parts(message, where, names)
        elif role == "tool":
            role, parts = "user", [_function_response(message, where, names)]
        else:
            raise InvalidRequest(f"{where}.role: {role!r} is not supported", param=f"{where}.role")
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        elif parts:
            contents.append({"role": role, "parts": parts})
    return system, contents


def _text_parts(content: Any, where: str) -> list[dict[str, Any]]:
    if content is None or isinstance(content, str):
        return [{"text": content}] if content else []
    parts = []
    for number, part in enumerate(content if isinstance(content, list) else [None]):
        if not isinstance(part, dict) or part.get("type") != "text":
            kind = part.get("type") if isinstance(part, dict) else None
            raise InvalidRequest(f"{where}.content[{number}]: part type {kind!r} is not supported here", param=where)
        if part.get("text"):
            parts.append({"text": part["text"]})
    return parts


def _user_parts(content: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        return _text_parts(content, where)
    parts = []
    for number, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        place = f"{where}.content[{number}]"
        if kind == "text":
            if part.get("text"):
                parts.append({"text": part["text"]})
        elif kind == "image_url":
            parts.append(_image(part.get("image_url"), place))
        elif kind == "input_audio":
            parts.append(_audio(part.get("input_audio"), place))
        elif kind == "file" and isinstance((part.get("file") or {}).get("file_data"), str):
            parts.append({"inlineData": _inline(part["file"]["file_data"], place)})
        else:
            raise InvalidRequest(f"{place}: part type {kind!r} is not supported", param=where)
    return parts


def _image(image: Any, where: str) -> dict[str, Any]:
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise InvalidRequest(f"{where}.image_url.url: required", param=f"{where}.image_url")
    if url.startswith(("http://", "https://")):
        return {"fileData": {"mimeType": guess_image_type(url), "fileUri": url}}
    return {"inlineData": _inline(url, where)}


def _audio(audio: Any, where: str) -> dict[str, Any]:
    audio = audio if isinstance(audio, dict) else {}
    if not isinstance(audio.get("format"), str) or not isinstance(audio.get("data"), str):
        raise InvalidRequest(f"{where}.input_audio: data and format are required", param=where)
    return {"inlineData": {"mimeType": f"audio/{audio['format']}", "data": audio["data"]}}


def guess_image_type(url: str) -> str:
    """Gemini wants a MIME type beside a file URI; the extension is all we know. JPEG if it says nothing."""
    path = urlsplit(url).path
    suffix = PurePosixPath(path).suffix.lower()
    return IMAGE_TYPES.get(suffix) or mimetypes.guess_type(path)[0] or "image/jpeg"


def _inline(url: str, where: str) -> dict[str, Any]:
    header, comma, data = url.partition(",")
    params = header[5:].split(";") if header.startswith("data:") else []
    if not comma or not params or not params[0] or "base64" not in params[1:]:
        raise InvalidRequest(f"{where}: must be an http(s) URL or a base64 data: URL", param=where)
    return {"mimeType": params[0], "data": data}


def _model_parts(message: dict[str, Any], where: str, names: dict[str, str]) -> list[dict[str, Any]]:
    # reasoning_content is dropped: Gemini does not take thoughts back as input.
    parts = _text_parts(message.get("content"), where)
    for number, call in enumerate(message.get("tool_calls") or []):
        function, place = call.get("function") or {}, f"{where}.tool_calls[{number}].function"
        name = function.get("name")
        if not isinstance(name, str):
            raise InvalidRequest(f"{place}.name: required", param=f"{place}.name")
        part: dict[str, Any] = {
            "functionCall": {"name": name, "args": tool_arguments(function.get("arguments"), f"{place}.arguments")}
        }
        # Gemini 3 rejects a function call in the history without the signature it came with; we hand
        # it to clients where Google's own OpenAI-compatible endpoint does, and take it back from there.
        signature = ((call.get("extra_content") or {}).get("google") or {}).get("thought_signature")
        if isinstance(signature, str):
            part["thoughtSignature"] = signature
        if isinstance(call.get("id"), str):
            names[call["id"]] = name
        parts.append(part)
    return parts


def _function_response(message: dict[str, Any], where: str, names: dict[str, str]) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    name = names.get(call_id) if isinstance(call_id, str) else None
    if name is None:
        raise InvalidRequest(
            f"{where}.tool_call_id: {call_id!r} matches no tool call of an earlier assistant message",
            param=f"{where}.tool_call_id",
        )
    text = "".join(part["text"] for part in _text_parts(message.get("content"), where))
    try:
        result = orjson.loads(text)
    except orjson.JSONDecodeError:
        result = text
    return {"functionResponse": {"name": name, "response": {"result": result}}}


def _tooling(body: dict[str, Any]) -> dict[str, Any]:
    tools = body.get("tools") or []
    if not tools:
        return {}
    declarations = [_declaration(tool, number) for number, tool in enumerate(tools)]
    out: dict[str, Any] = {"tools": [{"functionDeclarations": declarations}]}
    config = _function_calling(body.get("tool_choice"))
    if config is not None:
        out["toolConfig"] = {"functionCallingConfig": config}
    return out


def _declaration(tool: Any, number: int) -> dict[str, Any]:
    function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidRequest(f"tools[{number}]: only function tools are supported", param=f"tools[{number}]")
    out: dict[str, Any] = {"name": function["name"]}
    if function.get("description"):
        out["description"] = function["description"]
    if function.get("parameters"):
        # OpenAI's parameters are JSON Schema; `parameters` takes only Gemini's OpenAPI subset and
        # refuses keys such as additionalProperties, so the schema goes as given in parametersJsonSchema.
        out["parametersJsonSchema"] = function["parameters"]
    return out


def _function_calling(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, str) and choice in _TOOL_MODES:
        return {"mode": _TOOL_MODES[choice]}
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
        if isinstance(name, str):
            return {"mode": "ANY", "allowedFunctionNames": [name]}
    raise InvalidRequest("tool_choice must be auto, none, required or a function", param="tool_choice")


def _generation_config(body: dict[str, Any]) -> dict[str, Any]:
    config = {name: body[key] for key, name in _SAMPLING.items() if body.get(key) is not None}
    limit = body.get("max_completion_tokens")
    limit = body.get("max_tokens") if limit is None else limit
    if limit is not None:
        config["maxOutputTokens"] = limit
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    config.update(_response_format(body.get("response_format")))
    effort = body.get("reasoning_effort")
    if effort == "none":
        config["thinkingConfig"] = {"thinkingBudget": 0}
    elif effort is not None:
        if effort not in THINKING_BUDGETS:
            expected = ", ".join(["none", *THINKING_BUDGETS])
            raise InvalidRequest(f"reasoning_effort must be one of {expected}", param="reasoning_effort")
        config["thinkingConfig"] = {"thinkingBudget": THINKING_BUDGETS[effort], "includeThoughts": True}
    return config


def _response_format(response_format: Any) -> dict[str, Any]:
    kind = response_format.get("type") if isinstance(response_format, dict) else response_format
    if kind is None or kind == "text":
        return {}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        out: dict[str, Any] = {"responseMimeType": "application/json"}
        if schema is not None:
            out["responseJsonSchema"] = schema
        return out
    raise InvalidRequest("response_format.type must be text, json_object or json_schema", param="response_format")
