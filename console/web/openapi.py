"""The OpenAPI 3.1 document of the JSON twins, built from the endpoint declarations.

Every endpoint with a JSON path is an operation: its parameters (path parameters and
their types come from the path template), request body, response shapes, the role it
needs and its error answers. Nothing is written twice, so the document cannot drift
from the routes; tests check real answers against it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from console.auth.roles import PUBLIC
from console.web.endpoints import PATH_PARAMETER, Endpoint
from console.web.schema import STRING, Param, Schema, integer, json_schema, p, ref

TITLE = "eventscope API"
VERSION = "1"

ERROR_DESCRIPTIONS = {
    400: "The request is not valid (a bad value, or a query parameter the operation does not "
    "take); `error` says which field and why.",
    401: "No credentials, or an invalid or revoked API token.",
    403: "The caller's role is too low, or a browser request failed the CSRF/Origin check.",
    404: "Nothing of that name or at those coordinates.",
    409: "The name is taken.",
    413: "The request body is too large.",
    422: "An upstream service (the schema registry) refused what was sent; `error` says why.",
    429: "Too many searches at once; try again after `Retry-After` seconds.",
    502: "An upstream service (the schema registry) failed to answer.",
    503: "The Kafka cluster or the index cannot be reached right now.",
}

ERROR_SCHEMA: Schema = {
    "type": "object",
    "properties": {
        "error": {"type": ["string", "null"], "description": "what went wrong"},
        "field": {"type": "string", "description": "the query parameter at fault"},
    },
    "required": ["error"],
}


def openapi_path(template: str) -> str:
    """Starlette's `{name:convertor}` -> OpenAPI's `{name}`."""
    return PATH_PARAMETER.sub(lambda m: "{" + m.group(1) + "}", template)


def _path_parameters(template: str, declared: tuple[Param, ...]) -> list[Param]:
    by_name = {param.name: param for param in declared if param.where == "path"}
    found = []
    for name, convertor in PATH_PARAMETER.findall(template):
        default = integer(0) if convertor == "int" else STRING
        found.append(by_name.get(name) or p(name, default))
    return found


def _parameter_json(param: Param) -> Schema:
    body: Schema = {"name": param.name, "in": param.where, "schema": param.schema}
    if param.required or param.where == "path":
        body["required"] = True
    if param.description:
        body["description"] = param.description
    return body


def _json_content(schema: Schema) -> Schema:
    return {"application/json": {"schema": schema}}


def operation_id(method: str, path: str) -> str:
    return f"{method.lower()}{re.sub(r'[^A-Za-z0-9]+', '_', openapi_path(path))}"


def _who(role: str) -> str:
    return "No login needed." if role == PUBLIC else f"Needs the **{role}** role."


def _operation(endpoint: Endpoint, components: dict[str, Schema]) -> Schema:
    assert endpoint.api is not None
    method, path = endpoint.json_method, endpoint.api
    params = _path_parameters(path, endpoint.params)
    params += [param for param in endpoint.params if param.where == "query"]
    ok = json_schema(endpoint.response, components) if endpoint.response is not None else {}
    responses: Schema = {
        str(endpoint.status): {"description": "success", "content": _json_content(ok)},
    }
    for status, description, answer in endpoint.other_responses:
        responses[str(status)] = {
            "description": description,
            "content": _json_content(json_schema(answer, components)),
        }
    refused: tuple[int, ...] = () if endpoint.role == PUBLIC else (401, 403)
    if endpoint.checks_query:
        refused += (400,)  # an unknown query parameter
    for status in sorted({*endpoint.errors, *refused}):
        responses[str(status)] = {"$ref": f"#/components/responses/E{status}"}
    parts = [part for part in path.split("/") if part and not part.startswith("{")]
    tag = parts[1] if len(parts) > 1 and parts[0] == "api" else parts[0]
    body: Schema = {
        "summary": endpoint.summary,
        "operationId": operation_id(method, path),
        "tags": [tag],
        "parameters": [_parameter_json(param) for param in params],
        "responses": responses,
        "description": (endpoint.description + "\n\n" if endpoint.description else "")
        + (
            "No login needed."
            if endpoint.role == PUBLIC
            else f"Needs the **{endpoint.role}** role."
        ),
        "x-required-role": endpoint.role,
    }
    if endpoint.body is not None:
        body["requestBody"] = {
            "required": True,
            "content": _json_content(json_schema(endpoint.body, components)),
        }
    return body


def build_document(endpoints: Iterable[Endpoint], server_url: str | None = None) -> Schema:
    components: dict[str, Schema] = {"Error": ERROR_SCHEMA}
    paths: dict[str, Any] = {}
    for endpoint in endpoints:
        if endpoint.api is None:
            continue
        item = paths.setdefault(openapi_path(endpoint.api), {})
        item[endpoint.json_method.lower()] = _operation(endpoint, components)
    document: Schema = {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "description": "The JSON twins of the eventscope console's pages. Authenticate "
            "with an API token: `Authorization: Bearer esk_...` (eventscope tokens create).",
        },
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.items())),
            "responses": {
                f"E{status}": {
                    "description": description,
                    "content": _json_content(ref("Error")),
                }
                for status, description in ERROR_DESCRIPTIONS.items()
            },
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "an eventscope API token (esk_...)",
                },
            },
        },
        "security": [{"bearer": []}],
    }
    if server_url:
        document["servers"] = [{"url": server_url}]
    return document
