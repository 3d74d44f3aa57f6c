"""Dialpad's OpenAPI excerpt as a validator: the subset of OpenAPI 3.0 / JSON Schema the excerpt uses.

Keywords read: $ref (local), type, format (int64, double, date-time), nullable, enum, properties, items.
Objects are checked strictly: a property the schema does not name is an error, since a sandbox that invents
fields teaches the code to read what the API never sends. Two wire rules the spec leaves unsaid (see
references/dialpad/SOURCE.md): int64 as a JSON string or number (proto3's JSON mapping, and the spec's own
examples), and date-time with or without an offset (the spec's transcript example has none).
"""
from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

SPEC_PATH = Path(__file__).parent / "references" / "dialpad" / "dialpad-calls-openapi.json"
_INT64 = re.compile(r"-?\d+")
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})?")
_DOUBLE_WORDS = {"NaN", "Infinity", "-Infinity"}  # proto3 JSON writes these non-finite doubles as strings
_INT64_RANGE = range(-(2**63), 2**63)


@cache
def spec() -> dict[str, Any]:
    """The excerpt as stored in references/dialpad."""
    return json.loads(SPEC_PATH.read_text(encoding="utf-8"))


def operation(path: str, method: str = "get") -> dict[str, Any]:
    """The spec's operation for a path template such as /api/v2/transcripts/{call_id}."""
    return spec()["paths"][path][method]


def _json_200(path: str) -> dict[str, Any]:
    return operation(path)["responses"]["200"]["content"]["application/json"]


def response_schema(path: str) -> dict[str, Any]:
    """The schema of the operation's 200 answer."""
    return _json_200(path)["schema"]


def response_examples(path: str) -> list[Any]:
    """The example bodies the spec gives for the operation's 200 answer."""
    return [example["value"] for example in _json_200(path).get("examples", {}).values()]


def parameters(path: str) -> dict[str, dict[str, Any]]:
    """The operation's query and path parameters by name."""
    return {parameter["name"]: parameter for parameter in operation(path).get("parameters", [])}


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    """A schema with its local $ref followed; siblings of the $ref (nullable) kept over the target."""
    if "$ref" not in schema:
        return schema
    target: Any = spec()
    for part in schema["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    return {**resolve(target), **{k: v for k, v in schema.items() if k in ("nullable",)}}


def errors(value: Any, schema: dict[str, Any], where: str = "$") -> list[str]:
    """What in value the schema does not allow, one line per problem (empty: valid)."""
    schema = resolve(schema)
    if value is None:
        return [] if schema.get("nullable") else [f"{where}: null where the spec does not allow it"]
    problem = _scalar_problem(value, schema)
    if problem:
        return [f"{where}: {problem}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {value!r} is not one of {schema['enum']}"]
    if schema.get("type") == "array":
        return [e for n, item in enumerate(value) for e in errors(item, schema.get("items", {}), f"{where}[{n}]")]
    if schema.get("type") == "object" and "properties" in schema:
        return _object_errors(value, schema["properties"], where)
    return []


def _object_errors(value: dict[str, Any], properties: dict[str, Any], where: str) -> list[str]:
    found = [f"{where}.{key}: not in the spec" for key in value if key not in properties]
    for key, item in value.items():
        if key in properties:
            found += errors(item, properties[key], f"{where}.{key}")
    return found


def _scalar_problem(value: Any, schema: dict[str, Any]) -> str | None:
    kind, fmt = schema.get("type"), schema.get("format")
    if kind == "integer":
        if fmt == "int64" and isinstance(value, str) and _INT64.fullmatch(value) and int(value) in _INT64_RANGE:
            return None
        ok = isinstance(value, int) and not isinstance(value, bool) and value in _INT64_RANGE
        return None if ok else f"{value!r} is not an {fmt or 'integer'}"
    if kind == "number":
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool)) or value in _DOUBLE_WORDS
        return None if ok else f"{value!r} is not a number"
    if kind == "boolean":
        return None if isinstance(value, bool) else f"{value!r} is not a boolean"
    if kind == "string":
        if not isinstance(value, str):
            return f"{value!r} is not a string"
        return None if fmt != "date-time" or _DATE_TIME.fullmatch(value) else f"{value!r} is not a date-time"
    if kind == "array":
        return None if isinstance(value, list) else f"{value!r} is not an array"
    if kind == "object":
        return None if isinstance(value, dict) else f"{value!r} is not an object"
    return None


def query_errors(path: str, query: dict[str, list[str]]) -> list[str]:
    """What in a request's query string the operation does not declare or allow (values arrive as text)."""
    declared = {name: p for name, p in parameters(path).items() if p["in"] == "query"}
    found = []
    for name, values in query.items():
        if name not in declared:
            found.append(f"?{name}: not a parameter of {path}")
            continue
        schema = resolve(declared[name]["schema"])
        for text in values:
            value: Any = text if schema.get("type") == "string" else _number(text)
            found += errors(value, schema, f"?{name}")
    return found


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        return text
