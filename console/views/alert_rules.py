"""Alert rules: the configured and console rules, the editor with its live preview
(/alerts/rules, /api/alerts/rules)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from typing_extensions import TypedDict

from console.alerts.evaluator import AlertEvaluator, preview
from console.alerts.rules import KINDS, SEVERITIES, Rule, RuleError, rule_from_mapping
from console.alerts.settings import (
    AlertSettings,
    external_url,
)
from console.auth.roles import ADMIN, VIEWER
from console.state import AppState
from console.stores import alerts as store
from console.views.alerts import audit_actor, epoch_ms, pairs_field, running_evaluator
from console.web.endpoints import Call, Endpoint, Reply
from console.web.schema import (
    BOOLEAN,
    NUMBER,
    STRING,
    Schema,
    array_of,
    enum,
    p,
    q,
    shape,
    text,
)

RULE_FORM_FIELDS = (
    "name",
    "kind",
    "cluster",
    "group",
    "topic",
    "saga_type",
    "connector",
    "threshold",
    "window",
    "statuses",
    "for",
    "keep_firing_for",
    "severity",
    "receivers",
)


class RuleJson(TypedDict, total=False):
    """A rule as written (its keys depend on its kind), where it comes from, in words."""

    name: str
    kind: str
    source: str
    describes: str


class RuleWithCountsJson(RuleJson, total=False):
    firing: int
    pending: int


class BrokenRuleJson(TypedDict):
    name: str
    error: str | None


class RulesJson(TypedDict):
    rules: list[RuleWithCountsJson]
    broken: list[BrokenRuleJson]
    kinds: dict[str, str]


class PreviewJson(TypedDict):
    rule: RuleJson
    alerts: list[dict[str, Any]]


def _rule_json(rule: Rule) -> RuleJson:
    return rule.to_mapping() | {  # type: ignore[return-value]
        "source": rule.source,
        "describes": rule.describe(),
    }


def read_rules(call: Call, settings: AlertSettings) -> RulesJson:
    stored, counts = store.rules_with_counts(call.engine)
    rules = [*settings.rules, *(rule for rule, _, _ in stored if rule)]
    broken = [BrokenRuleJson(name=name, error=error) for rule, name, error in stored if not rule]
    return RulesJson(
        rules=[
            RuleWithCountsJson(
                **_rule_json(rule),
                firing=counts.get((rule.name, "firing"), 0),
                pending=counts.get((rule.name, "pending"), 0),
            )
            for rule in rules
        ],
        broken=broken,
        kinds={kind: spec[0] for kind, spec in KINDS.items()},
    )


EVERY_KIND_FIELDS = ("name", "kind", "cluster", "for", "keep_firing_for", "severity", "receivers")


def rule_from_form(form: FormData) -> dict[str, Any]:
    """The editor's fields as a rule mapping (fields the kind does not use are dropped)."""
    kind = str(form.get("kind", "")).strip()
    used = set(KINDS[kind][1] + KINDS[kind][2]) if kind in KINDS else set()
    data: dict[str, Any] = {}
    for key in RULE_FORM_FIELDS:
        value = str(form.get(key, "")).strip()
        if not value or (key not in EVERY_KIND_FIELDS and key not in used):
            continue
        if key in ("statuses", "receivers"):
            data[key] = [part.strip() for part in value.split(",") if part.strip()]
        else:
            data[key] = value
    data["labels"] = pairs_field(str(form.get("labels", "")), "labels")
    data["annotations"] = pairs_field(str(form.get("annotations", "")), "annotations")
    data["enabled"] = form.get("enabled") is not None
    return data


async def _probes_for(state: AppState, rule: Rule) -> Any:
    evaluator = running_evaluator(state)
    if evaluator is None:
        evaluator = AlertEvaluator(
            state.engine,
            state.areas.alerts,
            state.settings.clusters,
            external_url(state.settings),
            event_health=state.areas.event_health,
        )
    return await evaluator.probes([rule])


async def rules_page(
    call: Call,
    form_values: Mapping[str, Any] | None = None,
    error: str | None = None,
    previewed: list[dict[str, Any]] | None = None,
    status: int = 200,
) -> Reply:
    """The rules (JSON), or the page with the editor (filled after a failed save)."""
    settings = call.state.areas.alerts
    data = await run_in_threadpool(read_rules, call, settings)
    edit = call.query.get("edit")
    values: Mapping[str, Any] = form_values or {}
    if form_values is None and edit and not call.api:
        found = next(
            (r for r in data["rules"] if r["name"] == edit and r["source"] == "console"), None
        )
        if found is None:
            raise HTTPException(404, f"no console rule named {edit!r}")
        values = _form_values(found) | {"original": edit}
    evaluator = running_evaluator(call.state)
    page = {
        "severities": SEVERITIES,
        "values": values,
        "error": error or call.query.get("error"),
        "previewed": previewed,
        "rule_errors": evaluator.last_report.rule_errors
        if evaluator and evaluator.last_report
        else {},
    }
    return Reply(data, page=page, status=status, template="alerts_rules.html")


def _form_values(rule: Mapping[str, Any]) -> dict[str, Any]:
    values = {key: rule.get(key, "") for key in RULE_FORM_FIELDS}
    values["statuses"] = ", ".join(rule.get("statuses", []))
    values["receivers"] = ", ".join(rule.get("receivers", []))
    values["labels"] = "\n".join(f"{k}={v}" for k, v in rule.get("labels", {}).items())
    values["annotations"] = "\n".join(f"{k}={v}" for k, v in rule.get("annotations", {}).items())
    values["enabled"] = rule.get("enabled", True)
    return values


def _form_dict(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {key: str(form.get(key, ""))[:4000] for key in RULE_FORM_FIELDS}
    values |= {key: str(form.get(key, ""))[:20_000] for key in ("labels", "annotations")}
    values["enabled"] = form.get("enabled") is not None
    values["original"] = str(form.get("original", ""))[:200]
    return values


async def save_rule_view(call: Call) -> Reply:
    settings = call.state.areas.alerts
    if call.api:
        data = await call.json_object()
        replaces = call.query.get("replaces") or None
        form_values: dict[str, Any] = {}
    else:
        form = await call.request.form()
        form_values = _form_dict(form)
        replaces = form_values["original"] or None
        try:
            data = rule_from_form(form)
        except RuleError as exc:
            return await rules_page(call, form_values, str(exc), status=400)
    try:
        rule = await run_in_threadpool(
            store.save_rule_audited,
            call.engine,
            data,
            settings,
            audit_actor(call),
            epoch_ms(),
            replaces,
        )
    except RuleError as exc:
        if call.api:
            raise HTTPException(400, str(exc)) from None
        return await rules_page(call, form_values, str(exc), status=400)
    return Reply(_rule_json(rule), status=201, redirect="/alerts/rules")


async def delete_rule_view(call: Call) -> Reply:
    name = call.path["name"]
    done = await run_in_threadpool(store.delete_rule_audited, call.engine, name, audit_actor(call))
    if not done:
        raise HTTPException(404, f"no console rule named {name!r}")
    return Reply({"deleted": name}, redirect="/alerts/rules")


async def preview_rule_view(call: Call) -> Reply:
    form_values: dict[str, Any] = {}
    try:
        if call.api:
            data = await call.json_object()
        else:
            form = await call.request.form()
            form_values = _form_dict(form)
            data = rule_from_form(form)
        rule = rule_from_mapping(data, source="console")
    except RuleError as exc:
        if call.api:
            raise HTTPException(400, str(exc)) from None
        return await rules_page(call, form_values, str(exc), status=400)
    probes = await _probes_for(call.state, rule)
    found = await run_in_threadpool(preview, call.engine, rule, probes, epoch_ms())
    if call.api:
        return Reply(PreviewJson(rule=_rule_json(rule), alerts=found))
    return await rules_page(call, form_values, previewed=found)


RULE: Schema = {
    "type": "object",
    "description": "an alert rule; which keys apply depends on `kind` (see /api/alerts/rules)",
    "properties": {
        "name": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$", "maxLength": 100},
        "kind": enum(*KINDS),
        "cluster": STRING,
        "group": STRING,
        "topic": STRING,
        "saga_type": STRING,
        "connector": STRING,
        "threshold": NUMBER,
        "window": {"type": ["string", "number"], "description": "30s, 5m, 2h, 1d or seconds"},
        "statuses": array_of(STRING),
        "for": {"type": ["string", "number"], "description": "30s, 5m, 2h, 1d or seconds"},
        "keep_firing_for": {
            "type": ["string", "number"],
            "description": "a firing alert stays firing this long after its condition clears",
        },
        "severity": enum(*SEVERITIES),
        "labels": {"type": "object", "additionalProperties": STRING},
        "annotations": {"type": "object", "additionalProperties": STRING},
        "receivers": array_of(STRING),
        "enabled": BOOLEAN,
    },
    "required": ["name", "kind"],
}

NAME = p("name", STRING, "the rule's name")
DELETED = shape(deleted=STRING)

ENDPOINTS = [
    Endpoint(
        rules_page, VIEWER, path="/alerts/rules", api="/api/alerts/rules",
        template="alerts_rules.html",
        summary="Alert rules (configured and console), broken ones, and the rule kinds.",
        params=(q("edit", text(100), "the page opens this console rule in the editor"),),
        response=RulesJson,
    ),
    Endpoint(
        save_rule_view, ADMIN, path="/alerts/rules/save", api="/api/alerts/rules",
        method="POST", summary="Save a console rule.",
        params=(q("replaces", text(100), "the name of the rule this one replaces"),),
        body=RULE, status=201, response=RuleJson, errors=(400,),
    ),
    Endpoint(
        preview_rule_view, VIEWER, path="/alerts/rules/preview",
        api="/api/alerts/rules/preview", method="POST",
        summary="What a rule would fire right now, without saving it.", body=RULE,
        response=PreviewJson, errors=(400,),
    ),
    Endpoint(
        delete_rule_view, ADMIN, path="/alerts/rules/{name}/delete",
        api="/api/alerts/rules/{name}", method="POST", api_method="DELETE",
        summary="Delete a console rule.", params=(NAME,), response=DELETED, errors=(404,),
    ),
]  # fmt: skip
