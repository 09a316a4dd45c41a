"""Event data schemas: the definition format and validation of data against it.

A schema, registered per event type::

    {"properties": {"amount": {"type": "number", "required": true}, ...},
     "allowAdditionalProperties": false, "required": ["amount"]}

``type`` is one of ``string number integer boolean object array null`` (or a list of them);
``required`` may be given per property or as a top-level list. Violations name fields and the
expected types, never the values (which may be personal data).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from genesisdb.exceptions import BadRequestError

JSON_TYPES = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})

__all__ = ["JSON_TYPES", "check_schema", "violations"]


def check_schema(schema: object) -> dict[str, Any]:
    """Validate a schema definition; returns it, or raises BadRequestError naming the problem."""
    if not isinstance(schema, dict):
        raise BadRequestError("schema must be a JSON object")
    properties = schema.get("properties", {})
    if not isinstance(properties, dict):
        raise BadRequestError("schema.properties must be an object")
    for name, spec in properties.items():
        if not isinstance(spec, dict):
            raise BadRequestError(f"schema.properties.{name} must be an object")
        declared = spec.get("type")
        if declared is not None and not _valid_type_declaration(declared):
            raise BadRequestError(
                f"schema.properties.{name}.type must be one of {', '.join(sorted(JSON_TYPES))}"
            )
        if not isinstance(spec.get("required", False), bool):
            raise BadRequestError(f"schema.properties.{name}.required must be a boolean")
    additional = schema.get("allowAdditionalProperties", True)
    if not isinstance(additional, bool):
        raise BadRequestError("schema.allowAdditionalProperties must be a boolean")
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(name, str) for name in required):
        raise BadRequestError("schema.required must be an array of property names")
    return schema


def _valid_type_declaration(declared: object) -> bool:
    if isinstance(declared, str):
        return declared in JSON_TYPES
    return (
        isinstance(declared, list)
        and bool(declared)
        and all(isinstance(name, str) and name in JSON_TYPES for name in declared)
    )


def _json_type_matches(value: Any, name: str) -> bool:
    match name:
        case "string":
            return isinstance(value, str)
        case "integer":
            return (isinstance(value, int) and not isinstance(value, bool)) or (
                isinstance(value, float) and value.is_integer()
            )
        case "number":
            return isinstance(value, int | float) and not isinstance(value, bool)
        case "boolean":
            return isinstance(value, bool)
        case "object":
            return isinstance(value, dict)
        case "array":
            return isinstance(value, list)
        case "null":
            return value is None
    return False


def violations(schema: Mapping[str, Any], data: Any) -> list[str]:
    """Everything about ``data`` that breaks ``schema`` (an empty list when it conforms)."""
    if not isinstance(data, dict):
        return ["data must be a JSON object"]
    found: list[str] = []
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))
    required.update(name for name, spec in properties.items() if spec.get("required"))
    for name in sorted(required):
        if name not in data:
            found.append(f"{name} is required")
    for name, spec in properties.items():
        if name not in data or spec.get("type") is None:
            continue
        declared = spec["type"]
        names = [declared] if isinstance(declared, str) else list(declared)
        if not any(_json_type_matches(data[name], type_name) for type_name in names):
            found.append(f"{name} must be of type {' or '.join(names)}")
    if not schema.get("allowAdditionalProperties", True):
        found.extend(f"{name} is not allowed" for name in data if name not in properties)
    return found
