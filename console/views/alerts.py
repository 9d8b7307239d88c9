"""Alerts: what fires now and what fired, silences, rules with a live preview, receivers
with their delivery log.

Pages: /alerts, /alerts/rules, /alerts/receivers. JSON twins under /api/alerts.
Forms that change something are POSTs carrying the CSRF token; every change to rules,
receivers and silences writes an audit row. A receiver's signing secret is shown once,
in the answer that created it, and never again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from typing_extensions import TypedDict

from console.alerts.delivery import send_test
from console.alerts.evaluator import AlertEvaluator, preview
from console.alerts.rules import KINDS, SEVERITIES, Rule, RuleError, rule_from_mapping
from console.alerts.settings import (
    AlertConfigError,
    AlertSettings,
    external_url,
)
from console.alerts.signing import generate_secret
from console.alerts.silences import SilenceError
from console.auth.roles import ADMIN, OPERATOR, VIEWER
from console.state import AppState
from console.stores import alerts as store
from console.stores import audit as audit_store
from console.web.endpoints import Call, Endpoint, Reply
from console.web.schema import (
    BOOLEAN,
    NUMBER,
    STRING,
    Schema,
    array_of,
    enum,
    integer,
    p,
    q,
    shape,
    text,
)

MAX_ROW_ID = 2**63 - 1
SILENCE_DURATIONS = {"1h": 3600, "4h": 14_400, "1d": 86_400, "1w": 604_800}
RULE_FORM_FIELDS = (
    "name",
    "kind",
    "cluster",
    "group",
    "topic",
    "saga_type",
    "threshold",
    "window",
    "statuses",
    "for",
    "severity",
    "receivers",
)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _actor(call: Call) -> store.Actor:
    return store.Actor(call.actor, call.remote)


def _back(path: str, **query: str) -> str:
    clean = {k: v for k, v in query.items() if v}
    return path + (f"?{urlencode(clean)}" if clean else "")


# --- JSON shapes -------------------------------------------------------------------------------


class AlertJson(TypedDict):
    fingerprint: str
    rule: str
    state: str
    severity: str
    labels: dict[str, str]
    annotations: dict[str, str]
    value: float | None
    activeSinceMs: int | None
    startsAtMs: int | None
    endsAtMs: int | None
    generatorURL: str | None
    silencedBy: int | None


class AlertsJson(TypedDict):
    firing: list[AlertJson]
    pending: list[AlertJson]
    resolved: list[AlertJson]
    silences: list[dict[str, Any]]


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


class DeliveryJson(TypedDict):
    id: int
    receiver: str
    webhookId: str
    notification: int | None
    test: bool
    attempt: int
    attemptedAtMs: int
    status: int | None
    latencyMs: float | None
    outcome: str
    error: str | None


class ReceiversJson(TypedDict):
    receivers: list[dict[str, Any]]
    deliveries: list[DeliveryJson]


class CreatedReceiverJson(TypedDict):
    name: str
    secret: str | None  # shown here only


class TestSendJson(TypedDict):
    receiver: str
    delivered: bool
    status: int | None
    latencyMs: float | None
    error: str | None


# --- alerts and silences ----------------------------------------------------------------------


def _alert_json(row: Any, silenced_by: int | None) -> AlertJson:
    return AlertJson(
        fingerprint=row.fingerprint,
        rule=row.rule_name,
        state=row.state,
        severity=row.severity,
        labels=json.loads(row.labels),
        annotations=json.loads(row.annotations),
        value=row.value,
        activeSinceMs=row.active_since_ms,
        startsAtMs=row.starts_at_ms,
        endsAtMs=row.ends_at_ms,
        generatorURL=row.generator_url,
        silencedBy=silenced_by,
    )


def read_alerts(call: Call, now_ms: int) -> AlertsJson:
    active, history, silences = store.alerts_and_silences(call.engine, now_ms)
    live = [s for s in silences if s.active(now_ms)]

    def silence_of(row: Any) -> int | None:
        labels = json.loads(row.labels)
        return next((s.id for s in live if s.matches(labels)), None)

    return AlertsJson(
        firing=[_alert_json(r, silence_of(r)) for r in active if r.state == "firing"],
        pending=[_alert_json(r, silence_of(r)) for r in active if r.state == "pending"],
        resolved=[_alert_json(r, None) for r in history],
        silences=[s.as_json(now_ms) for s in silences],
    )


async def alerts_page(call: Call) -> Reply:
    data = await run_in_threadpool(read_alerts, call, _now_ms())
    page = {
        "durations": SILENCE_DURATIONS,
        "error": call.query.get("error"),
        "evaluator": _evaluator(call.state),
    }
    return Reply(data, page=page)


def _silence_request(fields: Mapping[str, Any]) -> tuple[dict[str, str], float, str]:
    matchers = fields.get("matchers")
    if not isinstance(matchers, Mapping):
        raise SilenceError("matchers must be an object of label names to values")
    duration = fields.get("duration", "1h")
    if isinstance(duration, str) and duration in SILENCE_DURATIONS:
        seconds = float(SILENCE_DURATIONS[duration])
    elif isinstance(duration, int | float) and not isinstance(duration, bool):
        seconds = float(duration)
    else:
        raise SilenceError(f"duration must be seconds or one of {', '.join(SILENCE_DURATIONS)}")
    comment = fields.get("comment", "")
    if not isinstance(comment, str):
        raise SilenceError("comment must be text")
    return dict(matchers), seconds, comment


def _form_matchers(form: FormData) -> dict[str, str]:
    """Matchers arrive as repeated ``matcher`` fields written ``name=value``."""
    out: dict[str, str] = {}
    for item in form.getlist("matcher"):
        name, sep, value = str(item).partition("=")
        if not sep:
            raise SilenceError(f"matcher {str(item)[:100]!r} is not name=value")
        out[name.strip()] = value
    return out


async def create_silence_view(call: Call) -> Reply:
    if call.api:
        fields: dict[str, Any] = await call.json_object()
    else:
        form = await call.request.form()
        try:
            fields = {
                "matchers": _form_matchers(form),
                "duration": str(form.get("duration", "1h")),
                "comment": str(form.get("comment", "")),
            }
        except SilenceError as exc:
            return Reply({}, redirect=_back("/alerts", error=str(exc)))
    try:
        matchers, seconds, comment = _silence_request(fields)
        silence_id = await run_in_threadpool(
            store.add_silence, call.engine, matchers, seconds, comment, _actor(call), _now_ms()
        )
    except SilenceError as exc:
        if call.api:
            raise HTTPException(400, str(exc)) from None
        return Reply({}, redirect=_back("/alerts", error=str(exc)))
    return Reply({"id": silence_id}, status=201, redirect="/alerts")


async def expire_silence_view(call: Call) -> Reply:
    silence_id = int(call.path["silence_id"])
    if silence_id > MAX_ROW_ID:  # past any id the index can hold (and its integer type)
        raise HTTPException(404, f"no active silence {silence_id}")
    done = await run_in_threadpool(
        store.end_silence, call.engine, silence_id, _actor(call), _now_ms()
    )
    if not done:
        raise HTTPException(404, f"no active silence {silence_id}")
    return Reply({"id": silence_id, "status": "expired"}, redirect="/alerts")


# --- rules ------------------------------------------------------------------------------------


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


def rule_from_form(form: FormData) -> dict[str, Any]:
    """The editor's fields as a rule mapping (fields the kind does not use are dropped)."""
    kind = str(form.get("kind", "")).strip()
    used = set(KINDS[kind][1] + KINDS[kind][2]) if kind in KINDS else set()
    data: dict[str, Any] = {}
    for key in RULE_FORM_FIELDS:
        value = str(form.get(key, "")).strip()
        if not value or (
            key not in ("name", "kind", "cluster", "for", "severity", "receivers")
            and key not in used
        ):
            continue
        if key in ("statuses", "receivers"):
            data[key] = [part.strip() for part in value.split(",") if part.strip()]
        else:
            data[key] = value
    data["labels"] = _pairs_field(str(form.get("labels", "")), "labels")
    data["annotations"] = _pairs_field(str(form.get("annotations", "")), "annotations")
    data["enabled"] = form.get("enabled") is not None
    return data


def _pairs_field(text: str, key: str) -> dict[str, str]:
    """``name=value`` lines (the editor's labels and annotations)."""
    out: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep:
            raise RuleError(key, f"line {number} is not name=value")
        out[name.strip()] = value.strip()
    return out


async def _probes_for(state: AppState, rule: Rule) -> Any:
    evaluator = _evaluator(state)
    if evaluator is None:
        evaluator = AlertEvaluator(
            state.engine,
            state.areas.alerts,
            state.settings.clusters,
            external_url(state.settings),
        )
    return await evaluator.probes([rule])


def _evaluator(state: AppState) -> AlertEvaluator | None:
    for service in state.services.services:
        if isinstance(service, AlertEvaluator):
            return service
    return None


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
    evaluator = _evaluator(call.state)
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
            store.save_rule_audited, call.engine, data, settings, _actor(call), _now_ms(), replaces
        )
    except RuleError as exc:
        if call.api:
            raise HTTPException(400, str(exc)) from None
        return await rules_page(call, form_values, str(exc), status=400)
    return Reply(_rule_json(rule), status=201, redirect="/alerts/rules")


async def delete_rule_view(call: Call) -> Reply:
    name = call.path["name"]
    done = await run_in_threadpool(store.delete_rule_audited, call.engine, name, _actor(call))
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
    found = await run_in_threadpool(preview, call.engine, rule, probes, _now_ms())
    if call.api:
        return Reply(PreviewJson(rule=_rule_json(rule), alerts=found))
    return await rules_page(call, form_values, previewed=found)


# --- receivers --------------------------------------------------------------------------------


def read_receivers(call: Call, name: str | None = None) -> ReceiversJson:
    configured = call.state.areas.alerts.receivers
    receivers, deliveries = store.receivers_and_deliveries(call.engine, configured, name)
    return ReceiversJson(
        receivers=[stored.as_json() for stored in receivers.values()],
        deliveries=[
            DeliveryJson(
                id=row.id,
                receiver=row.receiver,
                webhookId=row.webhook_id,
                notification=row.outbox_id,
                test=row.outbox_id is None,
                attempt=row.attempt,
                attemptedAtMs=row.attempted_at_ms,
                status=row.status_code,
                latencyMs=row.latency_ms,
                outcome=row.outcome,
                error=row.error,
            )
            for row in deliveries
        ],
    )


async def receivers_page(
    call: Call,
    created: Mapping[str, str] | None = None,
    error: str | None = None,
    status: int = 200,
) -> Reply:
    name = call.query.get("receiver") or None
    data = await run_in_threadpool(read_receivers, call, name)
    page = {
        "created": created,
        "selected": name,
        "error": error or call.query.get("error"),
        "notice": call.query.get("notice"),
    }
    return Reply(data, page=page, status=status, template="alerts_receivers.html")


async def create_receiver_view(call: Call) -> Reply:
    if call.api:
        body = await call.json_object()
        sign = body.pop("sign", True)
    else:
        form = await call.request.form()
        body = {"name": str(form.get("name", "")).strip(), "url": str(form.get("url", "")).strip()}
        timeout = str(form.get("timeout", "")).strip()
        if timeout:
            body["timeout"] = timeout
        try:
            headers = _pairs_field(str(form.get("headers", "")), "headers")
        except RuleError as exc:
            return await receivers_page(call, error=str(exc), status=400)
        if headers:
            body["headers"] = headers
        sign = form.get("sign") is not None
    if "secret" in body:
        message = "secrets are generated by eventscope; omit 'secret'"
        if call.api:
            raise HTTPException(400, message)
        return await receivers_page(call, error=message, status=400)
    secret = generate_secret() if sign else None
    if secret:
        body["secret"] = secret
    try:
        await run_in_threadpool(
            store.create_receiver_audited, call.engine, body, _actor(call), _now_ms()
        )
    except (AlertConfigError, ValueError) as exc:
        if call.api:
            raise HTTPException(400, str(exc)) from None
        return await receivers_page(call, error=str(exc), status=400)
    if call.api:
        return Reply(CreatedReceiverJson(name=str(body["name"]), secret=secret), status=201)
    created = {"name": str(body["name"]), "secret": secret or ""}
    return await receivers_page(call, created=created, status=201)


async def delete_receiver_view(call: Call) -> Reply:
    name = call.path["name"]
    done = await run_in_threadpool(store.delete_receiver_audited, call.engine, name, _actor(call))
    if not done:
        raise HTTPException(404, f"no console receiver named {name!r}")
    return Reply({"deleted": name}, redirect="/alerts/receivers")


async def enable_receiver_view(call: Call) -> Reply:
    name = call.path["name"]
    done = await run_in_threadpool(
        store.enable_receiver_audited, call.engine, name, _actor(call), _now_ms()
    )
    if not done:
        raise HTTPException(404, f"no receiver named {name!r}")
    return Reply({"enabled": name}, redirect="/alerts/receivers")


async def test_receiver_view(call: Call) -> Reply:
    name = call.path["name"]
    configured = call.state.areas.alerts.receivers
    stored = await run_in_threadpool(store.find_receiver, call.engine, configured, name)
    if stored is None:
        raise HTTPException(404, f"no receiver named {name!r}")
    result = await send_test(call.engine, stored.receiver, external_url(call.settings))
    await run_in_threadpool(
        audit_store.record, call.engine, call.actor, "alerts.receiver.test", name,
        {"status": result.status_code, "error": result.error}, call.remote,
    )  # fmt: skip
    answer = TestSendJson(
        receiver=name,
        delivered=result.ok,
        status=result.status_code,
        latencyMs=result.latency_ms,
        error=result.error,
    )
    if result.ok:
        notice = f"test delivered to {name}: HTTP {result.status_code}"
        back = _back("/alerts/receivers", notice=notice)
    else:
        back = _back("/alerts/receivers", error=f"test to {name} failed: {result.error}")
    return Reply(answer, redirect=back)


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
        "threshold": NUMBER,
        "window": {"type": ["string", "number"], "description": "30s, 5m, 2h, 1d or seconds"},
        "statuses": array_of(STRING),
        "for": {"type": ["string", "number"], "description": "30s, 5m, 2h, 1d or seconds"},
        "severity": enum(*SEVERITIES),
        "labels": {"type": "object", "additionalProperties": STRING},
        "annotations": {"type": "object", "additionalProperties": STRING},
        "receivers": array_of(STRING),
        "enabled": BOOLEAN,
    },
    "required": ["name", "kind"],
}

RECEIVER: Schema = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"},
        "url": {"type": "string", "format": "uri", "maxLength": 2000},
        "headers": {"type": "object", "additionalProperties": STRING},
        "timeout": {"type": ["string", "number"], "description": "at most 2m"},
        "max_alerts": integer(0),
        "enabled": BOOLEAN,
        "sign": {"type": "boolean", "description": "generate a signing secret (default true)"},
    },
    "required": ["name", "url"],
}

SILENCE: Schema = {
    "type": "object",
    "properties": {
        "matchers": {"type": "object", "additionalProperties": STRING},
        "duration": {"oneOf": [enum(*SILENCE_DURATIONS), NUMBER]},
        "comment": STRING,
    },
    "required": ["matchers"],
}

NAME = p("name", STRING, "the rule's or receiver's name")
SILENCE_ID = p("silence_id", integer(0), "the silence's id")
DELETED = shape(deleted=STRING)

ENDPOINTS = [
    Endpoint(
        alerts_page, VIEWER, path="/alerts", api="/api/alerts", template="alerts.html",
        summary="Firing, pending and resolved alerts, and silences.", response=AlertsJson,
    ),
    Endpoint(
        create_silence_view, OPERATOR, path="/alerts/silences", api="/api/alerts/silences",
        method="POST", summary="Silence the alerts whose labels match.", body=SILENCE,
        status=201, response=shape(id=integer()), errors=(400,),
    ),
    Endpoint(
        expire_silence_view, OPERATOR, path="/alerts/silences/{silence_id:int}/expire",
        api="/api/alerts/silences/{silence_id:int}/expire", method="POST",
        summary="End a silence now.", params=(SILENCE_ID,),
        response=shape(id=integer(), status=STRING), errors=(404,),
    ),
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
    Endpoint(
        receivers_page, VIEWER, path="/alerts/receivers", api="/api/alerts/receivers",
        template="alerts_receivers.html", summary="Webhook receivers and the delivery log.",
        params=(q("receiver", STRING, "only this receiver's deliveries"),),
        response=ReceiversJson,
    ),
    Endpoint(
        create_receiver_view, ADMIN, path="/alerts/receivers/create",
        api="/api/alerts/receivers", method="POST",
        summary="Create a webhook receiver; its signing secret is in this answer only.",
        body=RECEIVER, status=201, response=CreatedReceiverJson, errors=(400,),
    ),
    Endpoint(
        test_receiver_view, OPERATOR, path="/alerts/receivers/{name}/test",
        api="/api/alerts/receivers/{name}/test", method="POST",
        summary="Send a test notification to a receiver now.", params=(NAME,),
        response=TestSendJson, errors=(404,),
    ),
    Endpoint(
        enable_receiver_view, ADMIN, path="/alerts/receivers/{name}/enable",
        api="/api/alerts/receivers/{name}/enable", method="POST",
        summary="Enable a receiver again (after a 410 Gone disabled it).", params=(NAME,),
        response=shape(enabled=STRING), errors=(404,),
    ),
    Endpoint(
        delete_receiver_view, ADMIN, path="/alerts/receivers/{name}/delete",
        api="/api/alerts/receivers/{name}", method="POST", api_method="DELETE",
        summary="Delete a console receiver.", params=(NAME,), response=DELETED, errors=(404,),
    ),
]  # fmt: skip
