"""Check real JSON answers against the shapes their endpoints declare (the OpenAPI document)."""

from __future__ import annotations

import re
from typing import Any

import jsonschema_rs

from console.views.openapi import build_document

DOCUMENT = build_document()


def operation_for(path: str, method: str = "get") -> dict[str, Any] | None:
    """The operation whose path template matches this concrete path (query ignored)."""
    bare = path.split("?", 1)[0]
    # A parameter is one path segment, unless no template matches so (`{name:path}` ones).
    for segment in ("[^/]+", ".+"):
        for template, item in DOCUMENT["paths"].items():
            pattern = "^" + re.sub(r"\\{\w+\\}", segment, re.escape(template)) + "$"
            if re.match(pattern, bare) and method in item:
                operation: dict[str, Any] = item[method]
                return operation
    return None


def shape_problems(path: str, status: int, body: Any, method: str = "get") -> list[str]:
    """Why the answer does not match its declared shape ([] when it does)."""
    operation = operation_for(path, method)
    if operation is None:
        return [f"no operation for {method.upper()} {path}"]
    declared = operation["responses"].get(str(status))
    if declared is None:
        return [f"{method.upper()} {path}: status {status} is not declared"]
    if "$ref" in declared:  # a shared error answer
        name = declared["$ref"].rsplit("/", 1)[1]
        declared = DOCUMENT["components"]["responses"][name]
    schema = declared["content"]["application/json"]["schema"]
    validator = jsonschema_rs.Draft202012Validator({**schema, "components": DOCUMENT["components"]})
    return [
        f"{path}: {'/'.join(map(str, error.instance_path))}: {error.message[:300]}"
        for error in validator.iter_errors(body)
    ]
