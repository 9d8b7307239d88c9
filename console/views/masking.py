"""Administration of masking rules: /admin/masking and its JSON twin /api/admin/masking.

Rules from the configuration file are listed read-only; rules made here are stored in the
index, can be switched off and deleted, and every change is written to the audit log.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from typing_extensions import TypedDict

from console.auth.roles import ADMIN
from console.masking import KINDS, MaskingRuleError
from console.masking_rules import rule_from_mapping
from console.stores import masking as store
from console.web.endpoints import Call, Endpoint, Reply
from console.web.schema import BOOLEAN, STRING, integer, p, shape


class MaskingRuleJson(TypedDict, total=False):
    """A rule: configured ones have no id; console ones add who made them and when."""

    id: int | None
    name: str
    kind: str
    pattern: str
    topics: str | None
    replacement: str | None
    enabled: bool
    source: str  # config | console
    created_by: str
    created_at_ms: int
    updated_at_ms: int


class MaskingJson(TypedDict):
    apply_to: str
    rules: list[MaskingRuleJson]


def _stored_json(row: dict[str, Any]) -> MaskingRuleJson:
    return MaskingRuleJson(
        id=row["id"], name=row["name"], kind=row["kind"], pattern=row["pattern"],
        topics=row["topics"], replacement=row["replacement"], enabled=row["enabled"],
        source="console", created_by=row["created_by"],
        created_at_ms=row["created_at_ms"], updated_at_ms=row["updated_at_ms"],
    )  # fmt: skip


def _overview(call: Call) -> MaskingJson:
    configured = call.state.areas.masking
    return MaskingJson(
        apply_to=configured.apply_to,
        rules=[
            MaskingRuleJson(**rule.as_json(), id=None, enabled=True, source="config")  # type: ignore[typeddict-item]
            for rule in configured.rules
        ]
        + [_stored_json(row) for row in store.list_rules(call.engine)],
    )


def _back(error: str | None = None) -> str:
    return "/admin/masking" + (f"?{urlencode({'error': error})}" if error else "")


async def masking_page(call: Call) -> Reply:
    overview = await run_in_threadpool(_overview, call)
    return Reply(overview, page={"kinds": KINDS, "error": call.query.get("error")})


def _enabled_of(body: dict[str, Any]) -> bool:
    enabled = body.get("enabled", True)
    if isinstance(enabled, str):
        return enabled.lower() in ("1", "true", "on", "yes")
    if not isinstance(enabled, bool):
        raise MaskingRuleError("enabled", "must be true or false")
    return enabled


async def create_rule(call: Call) -> Reply | Response:
    if call.api:
        body = await call.json_object()
    else:
        form = await call.request.form()
        body = {k: str(v) for k, v in form.items() if k != "csrf_token" and str(v) != ""}
    try:
        enabled = _enabled_of(body)
        rule = rule_from_mapping({k: v for k, v in body.items() if k != "enabled"})
    except MaskingRuleError as exc:
        if call.api:
            return JSONResponse({"error": str(exc), "field": exc.field}, status_code=400)
        return Reply({}, redirect=_back(str(exc)))
    try:
        rule_id = await run_in_threadpool(
            store.create_rule_audited, call.engine, rule, enabled, call.actor, call.remote
        )
    except ValueError as exc:
        if call.api:
            return JSONResponse({"error": str(exc), "field": "name"}, status_code=409)
        return Reply({}, redirect=_back(str(exc)))
    created = {"id": rule_id, **rule.as_json(), "enabled": enabled}
    return Reply(created, status=201, redirect=_back())


async def change_rule(call: Call) -> Reply:
    """PATCH {"enabled": bool} (API) or the form's enable/disable button."""
    rule_id = int(call.path["rule_id"])
    if call.api:
        body = await call.json_object()
        if set(body) != {"enabled"}:
            raise HTTPException(400, 'give {"enabled": true|false}')
    else:
        form = await call.request.form()
        body = {"enabled": str(form.get("enabled", ""))}
    try:
        enabled = _enabled_of(body)
    except MaskingRuleError as exc:
        raise HTTPException(400, str(exc)) from None
    found = await run_in_threadpool(
        store.set_enabled_audited, call.engine, rule_id, enabled, call.actor, call.remote
    )
    if not found:
        raise HTTPException(404, f"no masking rule {rule_id}")
    return Reply({"id": rule_id, "enabled": enabled}, redirect=_back())


async def delete_rule(call: Call) -> Reply:
    rule_id = int(call.path["rule_id"])
    found = await run_in_threadpool(
        store.delete_rule_audited, call.engine, rule_id, call.actor, call.remote
    )
    if not found:
        raise HTTPException(404, f"no masking rule {rule_id}")
    return Reply({"deleted": rule_id}, redirect=_back())


NEW_RULE = {
    "type": "object",
    "description": "one of header, json_path or regex; or kind with pattern",
    "properties": {
        name: BOOLEAN if name == "enabled" else STRING
        for name in ("name", "header", "json_path", "regex", "kind", "pattern", "topics",
                     "replacement", "enabled")
    },
}  # fmt: skip
RULE_ID = p("rule_id", integer(0), "a console rule's id")

ENDPOINTS = [
    Endpoint(
        masking_page, ADMIN, path="/admin/masking", api="/api/admin/masking",
        template="admin_masking.html",
        summary="Masking rules (configured and console) for payloads and headers.",
        response=MaskingJson,
    ),
    Endpoint(
        create_rule, ADMIN, path="/admin/masking", api="/api/admin/masking", method="POST",
        summary="Create a console masking rule.", body=NEW_RULE, status=201,
        response=MaskingRuleJson, errors=(400, 409),
    ),
    Endpoint(
        change_rule, ADMIN, path="/admin/masking/{rule_id:int}/enable",
        api="/api/admin/masking/{rule_id:int}", method="POST", api_method="PATCH",
        summary="Enable or disable a console masking rule.", params=(RULE_ID,),
        body=shape(enabled=BOOLEAN), response=shape(id=integer(), enabled=BOOLEAN),
        errors=(400, 404),
    ),
    Endpoint(
        delete_rule, ADMIN, path="/admin/masking/{rule_id:int}/delete",
        api="/api/admin/masking/{rule_id:int}", method="POST", api_method="DELETE",
        summary="Delete a console masking rule.", params=(RULE_ID,),
        response=shape(deleted=integer()), errors=(404,),
    ),
]  # fmt: skip
