"""Attribute filters on vector store files, as OpenAI documents them.

A comparison `{"type": "eq"|"ne"|"gt"|"gte"|"lt"|"lte"|"in"|"nin", "key", "value"}` tests one attribute;
a compound `{"type": "and"|"or", "filters": [...]}` combines filters. A file without the attribute
fails every comparison, `ne` and `nin` included (there is nothing to compare).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

from openfoundry.errors import InvalidRequest

Attributes = Mapping[str, str | float | bool]
Filter = Callable[[Attributes], bool]

_ORDERED: dict[str, Callable[[Any, Any], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}
_MAX_DEPTH = 8


def parse_filter(raw: Any, param: str = "filters", depth: int = 0) -> Filter:
    """A checked filter as a predicate over a file's attributes; InvalidRequest says what is wrong."""
    if not isinstance(raw, dict):
        raise InvalidRequest(f"'{param}' must be a comparison or compound filter object", param=param)
    kind = raw.get("type")
    if kind in ("and", "or"):
        return _compound(raw, kind, param, depth)
    if kind in ("eq", "ne", "in", "nin") or kind in _ORDERED:
        return _comparison(raw, kind, param)
    raise InvalidRequest(
        f"'{param}.type' must be one of eq, ne, gt, gte, lt, lte, in, nin, and, or; got {kind!r}",
        param=f"{param}.type",
    )


def _compound(raw: dict[str, Any], kind: str, param: str, depth: int) -> Filter:
    filters = raw.get("filters")
    if not isinstance(filters, list) or not filters:
        raise InvalidRequest(f"'{param}.filters' must be a non-empty array of filters", param=f"{param}.filters")
    if depth >= _MAX_DEPTH:
        raise InvalidRequest(f"'{param}' nests compound filters deeper than {_MAX_DEPTH}", param=param)
    parts = [parse_filter(item, f"{param}.filters[{i}]", depth + 1) for i, item in enumerate(filters)]
    if kind == "and":
        return lambda attributes: all(part(attributes) for part in parts)
    return lambda attributes: any(part(attributes) for part in parts)


def _comparison(raw: dict[str, Any], kind: str, param: str) -> Filter:
    key, value = raw.get("key"), raw.get("value")
    if not isinstance(key, str) or not key:
        raise InvalidRequest(f"'{param}.key' must be a non-empty string", param=f"{param}.key")
    if kind in ("in", "nin"):
        if not isinstance(value, list) or not all(_is_scalar(item) for item in value):
            raise InvalidRequest(
                f"'{param}.value' must be an array of strings and numbers for '{kind}'", param=f"{param}.value"
            )
        allowed = list(value)
        if kind == "in":
            return lambda attributes: key in attributes and _member(attributes[key], allowed)
        return lambda attributes: key in attributes and not _member(attributes[key], allowed)
    if not _is_scalar(value):
        raise InvalidRequest(f"'{param}.value' must be a string, number or boolean", param=f"{param}.value")
    if kind == "eq":
        return lambda attributes: key in attributes and _equal(attributes[key], value)
    if kind == "ne":
        return lambda attributes: key in attributes and not _equal(attributes[key], value)
    compare = _ORDERED[kind]
    return lambda attributes: key in attributes and _ordered(compare, attributes[key], value)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(left: Any, right: Any) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    return bool(left == right)


def _member(value: Any, allowed: list[Any]) -> bool:
    return any(_equal(value, item) for item in allowed)


def _ordered(compare: Callable[[Any, Any], bool], left: Any, right: Any) -> bool:
    """Numbers compare with numbers and strings with strings; anything else does not match."""
    if (_number(left) and _number(right)) or (isinstance(left, str) and isinstance(right, str)):
        return compare(left, right)
    return False
