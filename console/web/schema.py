"""JSON shapes of the API: query parameters, and request/response bodies.

Bodies are declared as TypedDicts (from typing_extensions, which pydantic needs before
Python 3.12) or, where a TypedDict cannot say it, as JSON Schema mappings. `json_schema`
turns either into JSON Schema, with nested TypedDicts as shared components.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter
from typing_extensions import TypedDict

Schema = dict[str, Any]

STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
NUMBER: Schema = {"type": "number"}
BOOLEAN: Schema = {"type": "boolean"}
OBJECT: Schema = {"type": "object"}
ARRAY: Schema = {"type": "array"}

COMPONENT_REF = "#/components/schemas/{model}"


def text(max_length: int, **extra: Any) -> Schema:
    return {"type": "string", "maxLength": max_length, **extra}


def integer(minimum: int | None = None, maximum: int | None = None) -> Schema:
    schema: Schema = {"type": "integer"}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def enum(*values: str) -> Schema:
    return {"type": "string", "enum": list(values)}


def array_of(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def shape(required: bool = True, **properties: Schema) -> Schema:
    """An object with these properties (all required unless told otherwise)."""
    schema: Schema = {"type": "object", "properties": properties}
    if required and properties:
        schema["required"] = list(properties)
    return schema


def ref(name: str) -> Schema:
    return {"$ref": COMPONENT_REF.format(model=name)}


class SelfLink(TypedDict):
    """`links` of an item in a list: where its own JSON lives."""

    self: str


@dataclass(frozen=True)
class Param:
    name: str
    schema: Schema
    description: str = ""
    where: str = "query"  # "query" or "path"
    required: bool = False


def q(name: str, schema: Schema, description: str = "", required: bool = False) -> Param:
    return Param(name, schema, description, "query", required)


def p(name: str, schema: Schema, description: str = "") -> Param:
    return Param(name, schema, description, "path", True)


def json_schema(shape_or_type: Any, components: dict[str, Schema]) -> Schema:
    """JSON Schema of a TypedDict (its nested TypedDicts added to `components`) or a
    JSON Schema mapping given as is."""
    if isinstance(shape_or_type, dict):
        return shape_or_type
    schema = TypeAdapter(shape_or_type).json_schema(ref_template=COMPONENT_REF)
    for name, definition in schema.pop("$defs", {}).items():
        _add(components, name, _untitled(definition))
    name = getattr(shape_or_type, "__name__", None)
    if name and schema.get("type") == "object":
        _add(components, name, _untitled(schema))
        return ref(name)
    untitled: Schema = _untitled(schema)
    return untitled


def _add(components: dict[str, Schema], name: str, schema: Schema) -> None:
    """A component by its TypedDict's name: two different shapes of one name (in two
    modules) would otherwise share one, and every answer of the first would be described
    by the second."""
    if components.get(name, schema) != schema:
        raise ValueError(f"two different response shapes are named {name}: rename one")
    components[name] = schema


def _untitled(schema: Any) -> Any:
    """pydantic titles every property after its name: noise in the document."""
    if isinstance(schema, dict):
        return {k: _untitled(v) for k, v in schema.items() if k != "title" or
                not isinstance(v, str)}  # fmt: skip
    if isinstance(schema, list):
        return [_untitled(item) for item in schema]
    return schema
