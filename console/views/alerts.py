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
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Engine, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from collectors.config import Settings
from collectors.index.alert_models import alert_deliveries_table, alerts_table
from console.alerts.delivery import send_test
from console.alerts.evaluator import ACTIVE_STATES, AlertEvaluator, preview
from console.alerts.rules import KINDS, SEVERITIES, Rule, RuleError, rule_from_mapping
from console.alerts.settings import AlertConfigError, AlertSettings, Receiver, alert_settings
from console.alerts.signing import generate_secret
from console.alerts.silences import SilenceError, create_silence, expire_silence, load_silences
from console.state import AppState, app_state
from console.stores import audit as audit_store
from console.stores.alerts import (
    console_rules,
    create_receiver,
    delete_receiver,
    delete_rule,
    receivers_with_config,
    save_rule,
    set_receiver_enabled,
)
from console.views.auth import principal_of, remote_of
from console.views.requests import is_api, json_object

HISTORY_LIMIT = 200
DELIVERIES_LIMIT = 200
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


def alerts_settings_of(settings: Settings) -> AlertSettings:
    return alert_settings(settings.alerts)  # validated at load time; cheap to rebuild


def external_url(settings: Settings) -> str:
    configured = settings.alerts.get("external_url") or settings.server.external_url
    return str(configured or f"http://{settings.server.host}:{settings.server.port}")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _actor(request: Request) -> str:
    principal = principal_of(request)
    return principal.name if principal else "anonymous"


def _audit(request: Request, connection: Any, action: str, target: str, detail: dict) -> None:
    audit_store.record(connection, _actor(request), action, target, detail, remote_of(request))


def _back(path: str, **query: str) -> RedirectResponse:
    clean = {k: v for k, v in query.items() if v}
    return RedirectResponse(path + (f"?{urlencode(clean)}" if clean else ""), 303)


# --- alerts and silences ----------------------------------------------------------------------


def _alert_json(row: Any, silenced_by: int | None) -> dict[str, Any]:
    return {
        "fingerprint": row.fingerprint,
        "rule": row.rule_name,
        "state": row.state,
        "severity": row.severity,
        "labels": json.loads(row.labels),
        "annotations": json.loads(row.annotations),
        "value": row.value,
        "activeSinceMs": row.active_since_ms,
        "startsAtMs": row.starts_at_ms,
        "endsAtMs": row.ends_at_ms,
        "generatorURL": row.generator_url,
        "silencedBy": silenced_by,
    }


def read_alerts(engine: Engine, now_ms: int) -> dict[str, Any]:
    c = alerts_table.c
    with engine.connect() as connection:
        active = connection.execute(
            select(alerts_table).where(c.state.in_(ACTIVE_STATES)).order_by(c.active_since_ms)
        ).all()
        history = connection.execute(
            select(alerts_table)
            .where(c.state == "resolved")
            .order_by(c.ends_at_ms.desc())
            .limit(HISTORY_LIMIT)
        ).all()
        silences = load_silences(connection, now_ms, expired_within_ms=86_400_000)
    live = [s for s in silences if s.active(now_ms)]

    def silence_of(row: Any) -> int | None:
        labels = json.loads(row.labels)
        return next((s.id for s in live if s.matches(labels)), None)

    return {
        "firing": [_alert_json(r, silence_of(r)) for r in active if r.state == "firing"],
        "pending": [_alert_json(r, silence_of(r)) for r in active if r.state == "pending"],
        "resolved": [_alert_json(r, None) for r in history],
        "silences": [s.as_json(now_ms) for s in silences],
    }


async def alerts_page(request: Request) -> Response:
    state = app_state(request)
    data = await run_in_threadpool(read_alerts, state.engine, _now_ms())
    if is_api(request):
        return JSONResponse(data)
    context = {
        **data,
        "durations": SILENCE_DURATIONS,
        "error": request.query_params.get("error"),
        "evaluator": _evaluator(state),
    }
    return state.templates.TemplateResponse(request, "alerts.html", context)


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


async def create_silence_view(request: Request) -> Response:
    state = app_state(request)
    if is_api(request):
        fields: dict[str, Any] = await json_object(request)
    else:
        form = await request.form()
        try:
            fields = {
                "matchers": _form_matchers(form),
                "duration": str(form.get("duration", "1h")),
                "comment": str(form.get("comment", "")),
            }
        except SilenceError as exc:
            return _back("/alerts", error=str(exc))
    try:
        matchers, seconds, comment = _silence_request(fields)
    except SilenceError as exc:
        if is_api(request):
            raise HTTPException(400, str(exc)) from None
        return _back("/alerts", error=str(exc))

    def write() -> int:
        with state.engine.begin() as connection:
            silence_id = create_silence(
                connection, matchers, seconds, comment, _actor(request), _now_ms()
            )
            _audit(
                request,
                connection,
                "alerts.silence.create",
                str(silence_id),
                {"matchers": matchers, "seconds": seconds, "comment": comment},
            )
            return silence_id

    try:
        silence_id = await run_in_threadpool(write)
    except SilenceError as exc:
        if is_api(request):
            raise HTTPException(400, str(exc)) from None
        return _back("/alerts", error=str(exc))
    if is_api(request):
        return JSONResponse({"id": silence_id}, status_code=201)
    return _back("/alerts")


async def expire_silence_view(request: Request) -> Response:
    state = app_state(request)
    silence_id = int(request.path_params["silence_id"])
    if silence_id > MAX_ROW_ID:  # past any id the index can hold (and its integer type)
        raise HTTPException(404, f"no active silence {silence_id}")

    def write() -> bool:
        with state.engine.begin() as connection:
            done = expire_silence(connection, silence_id, _now_ms())
            if done:
                _audit(request, connection, "alerts.silence.expire", str(silence_id), {})
            return done

    if not await run_in_threadpool(write):
        raise HTTPException(404, f"no active silence {silence_id}")
    if is_api(request):
        return JSONResponse({"id": silence_id, "status": "expired"})
    return _back("/alerts")


# --- rules ------------------------------------------------------------------------------------


def _rule_json(rule: Rule) -> dict[str, Any]:
    return rule.to_mapping() | {"source": rule.source, "describes": rule.describe()}


def read_rules(engine: Engine, settings: AlertSettings) -> dict[str, Any]:
    with engine.connect() as connection:
        stored = console_rules(connection)
        counts: dict[tuple[str, str], int] = {}
        for name, state in connection.execute(
            select(alerts_table.c.rule_name, alerts_table.c.state).where(
                alerts_table.c.state.in_(ACTIVE_STATES)
            )
        ):
            counts[(name, state)] = counts.get((name, state), 0) + 1
    rules = [*settings.rules, *(rule for rule, _, _ in stored if rule)]
    broken = [{"name": name, "error": error} for rule, name, error in stored if rule is None]
    return {
        "rules": [
            _rule_json(rule)
            | {
                "firing": counts.get((rule.name, "firing"), 0),
                "pending": counts.get((rule.name, "pending"), 0),
            }
            for rule in rules
        ],
        "broken": broken,
        "kinds": {kind: spec[0] for kind, spec in KINDS.items()},
    }


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
            alerts_settings_of(state.settings),
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
    request: Request,
    form_values: Mapping[str, Any] | None = None,
    error: str | None = None,
    previewed: list[dict[str, Any]] | None = None,
    status_code: int = 200,
) -> Response:
    state = app_state(request)
    settings = alerts_settings_of(state.settings)
    data = await run_in_threadpool(read_rules, state.engine, settings)
    if is_api(request):
        return JSONResponse(data)
    edit = request.query_params.get("edit")
    values: Mapping[str, Any] = form_values or {}
    if form_values is None and edit:
        found = next(
            (r for r in data["rules"] if r["name"] == edit and r["source"] == "console"), None
        )
        if found is None:
            raise HTTPException(404, f"no console rule named {edit!r}")
        values = _form_values(found) | {"original": edit}
    evaluator = _evaluator(state)
    context = {
        **data,
        "severities": SEVERITIES,
        "values": values,
        "error": error or request.query_params.get("error"),
        "previewed": previewed,
        "rule_errors": evaluator.last_report.rule_errors
        if evaluator and evaluator.last_report
        else {},
    }
    return state.templates.TemplateResponse(
        request, "alerts_rules.html", context, status_code=status_code
    )


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


async def save_rule_view(request: Request) -> Response:
    state = app_state(request)
    settings = alerts_settings_of(state.settings)
    if is_api(request):
        data = await json_object(request)
        replaces = request.query_params.get("replaces") or None
        form_values: dict[str, Any] = {}
    else:
        form = await request.form()
        form_values = _form_dict(form)
        replaces = form_values["original"] or None
        try:
            data = rule_from_form(form)
        except RuleError as exc:
            return await rules_page(request, form_values, str(exc), status_code=400)

    def write() -> Rule:
        with state.engine.begin() as connection:
            rule = save_rule(
                connection, data, settings, _now_ms(), _actor(request), replaces=replaces
            )
            _audit(
                request,
                connection,
                "alerts.rule.save",
                rule.name,
                {"rule": rule.to_mapping(), "replaces": replaces},
            )
            return rule

    try:
        rule = await run_in_threadpool(write)
    except RuleError as exc:
        if is_api(request):
            raise HTTPException(400, str(exc)) from None
        return await rules_page(request, form_values, str(exc), status_code=400)
    if is_api(request):
        return JSONResponse(_rule_json(rule), status_code=201)
    return _back("/alerts/rules")


async def delete_rule_view(request: Request) -> Response:
    state = app_state(request)
    name = request.path_params["name"]

    def write() -> bool:
        with state.engine.begin() as connection:
            done = delete_rule(connection, name)
            if done:
                _audit(request, connection, "alerts.rule.delete", name, {})
            return done

    if not await run_in_threadpool(write):
        raise HTTPException(404, f"no console rule named {name!r}")
    if is_api(request):
        return JSONResponse({"deleted": name})
    return _back("/alerts/rules")


async def preview_rule_view(request: Request) -> Response:
    state = app_state(request)
    form_values: dict[str, Any] = {}
    try:
        if is_api(request):
            data = await json_object(request)
        else:
            form = await request.form()
            form_values = _form_dict(form)
            data = rule_from_form(form)
        rule = rule_from_mapping(data, source="console")
    except RuleError as exc:
        if is_api(request):
            raise HTTPException(400, str(exc)) from None
        return await rules_page(request, form_values, str(exc), status_code=400)
    probes = await _probes_for(state, rule)
    found = await run_in_threadpool(preview, state.engine, rule, probes, _now_ms())
    if is_api(request):
        return JSONResponse({"rule": _rule_json(rule), "alerts": found})
    return await rules_page(request, form_values, previewed=found)


# --- receivers --------------------------------------------------------------------------------


def read_receivers(
    engine: Engine, configured: Sequence[Receiver], name: str | None = None
) -> dict[str, Any]:
    c = alert_deliveries_table.c
    with engine.connect() as connection:
        receivers = receivers_with_config(connection, configured)
        query = select(alert_deliveries_table).order_by(c.id.desc()).limit(DELIVERIES_LIMIT)
        if name is not None:
            query = query.where(c.receiver == name)
        deliveries = connection.execute(query).all()
    return {
        "receivers": [stored.as_json() for stored in receivers.values()],
        "deliveries": [
            {
                "id": row.id,
                "receiver": row.receiver,
                "webhookId": row.webhook_id,
                "notification": row.outbox_id,
                "test": row.outbox_id is None,
                "attempt": row.attempt,
                "attemptedAtMs": row.attempted_at_ms,
                "status": row.status_code,
                "latencyMs": row.latency_ms,
                "outcome": row.outcome,
                "error": row.error,
            }
            for row in deliveries
        ],
    }


async def receivers_page(
    request: Request,
    created: Mapping[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    state = app_state(request)
    name = request.query_params.get("receiver") or None
    configured = alerts_settings_of(state.settings).receivers
    data = await run_in_threadpool(read_receivers, state.engine, configured, name)
    if is_api(request):
        return JSONResponse(data)
    context = {
        **data,
        "created": created,
        "selected": name,
        "error": error or request.query_params.get("error"),
        "notice": request.query_params.get("notice"),
    }
    return state.templates.TemplateResponse(
        request, "alerts_receivers.html", context, status_code=status_code
    )


async def create_receiver_view(request: Request) -> Response:
    state = app_state(request)
    if is_api(request):
        body = await json_object(request)
        sign = body.pop("sign", True)
    else:
        form = await request.form()
        body = {"name": str(form.get("name", "")).strip(), "url": str(form.get("url", "")).strip()}
        timeout = str(form.get("timeout", "")).strip()
        if timeout:
            body["timeout"] = timeout
        try:
            headers = _pairs_field(str(form.get("headers", "")), "headers")
        except RuleError as exc:
            return await receivers_page(request, error=str(exc), status_code=400)
        if headers:
            body["headers"] = headers
        sign = form.get("sign") is not None
    if "secret" in body:
        message = "secrets are generated by eventscope; omit 'secret'"
        if is_api(request):
            raise HTTPException(400, message)
        return await receivers_page(request, error=message, status_code=400)
    secret = generate_secret() if sign else None
    if secret:
        body["secret"] = secret

    def write() -> None:
        with state.engine.begin() as connection:
            receiver = create_receiver(connection, body, _now_ms())
            _audit(
                request,
                connection,
                "alerts.receiver.create",
                receiver.name,
                {
                    "url": receiver.url,
                    "signed": secret is not None,
                    "headers": sorted(receiver.headers),
                },
            )

    try:
        await run_in_threadpool(write)
    except (AlertConfigError, ValueError) as exc:
        if is_api(request):
            raise HTTPException(400, str(exc)) from None
        return await receivers_page(request, error=str(exc), status_code=400)
    created = {"name": str(body["name"]), "secret": secret or ""}
    if is_api(request):
        return JSONResponse({"name": body["name"], "secret": secret}, status_code=201)
    return await receivers_page(request, created=created, status_code=201)


async def delete_receiver_view(request: Request) -> Response:
    state = app_state(request)
    name = request.path_params["name"]

    def write() -> bool:
        with state.engine.begin() as connection:
            done = delete_receiver(connection, name)
            if done:
                _audit(request, connection, "alerts.receiver.delete", name, {})
            return done

    if not await run_in_threadpool(write):
        raise HTTPException(404, f"no console receiver named {name!r}")
    if is_api(request):
        return JSONResponse({"deleted": name})
    return _back("/alerts/receivers")


async def enable_receiver_view(request: Request) -> Response:
    state = app_state(request)
    name = request.path_params["name"]

    def write() -> bool:
        with state.engine.begin() as connection:
            done = set_receiver_enabled(connection, name, True, None, _now_ms())
            if done:
                _audit(request, connection, "alerts.receiver.enable", name, {})
            return done

    if not await run_in_threadpool(write):
        raise HTTPException(404, f"no receiver named {name!r}")
    if is_api(request):
        return JSONResponse({"enabled": name})
    return _back("/alerts/receivers")


async def test_receiver_view(request: Request) -> Response:
    state = app_state(request)
    name = request.path_params["name"]

    configured = alerts_settings_of(state.settings).receivers

    def find() -> Any:
        with state.engine.connect() as connection:
            return receivers_with_config(connection, configured).get(name)

    stored = await run_in_threadpool(find)
    if stored is None:
        raise HTTPException(404, f"no receiver named {name!r}")
    result = await send_test(state.engine, stored.receiver, external_url(state.settings))
    await run_in_threadpool(
        audit_store.record,
        state.engine,
        _actor(request),
        "alerts.receiver.test",
        name,
        {"status": result.status_code, "error": result.error},
        remote_of(request),
    )
    answer = {
        "receiver": name,
        "delivered": result.ok,
        "status": result.status_code,
        "latencyMs": result.latency_ms,
        "error": result.error,
    }
    if is_api(request):
        return JSONResponse(answer)
    if result.ok:
        notice = f"test delivered to {name}: HTTP {result.status_code}"
        return _back("/alerts/receivers", notice=notice)
    return _back("/alerts/receivers", error=f"test to {name} failed: {result.error}")


routes = [
    Route("/alerts", alerts_page),
    Route("/api/alerts", alerts_page),
    Route("/alerts/silences", create_silence_view, methods=["POST"]),
    Route("/api/alerts/silences", create_silence_view, methods=["POST"]),
    Route("/alerts/silences/{silence_id:int}/expire", expire_silence_view, methods=["POST"]),
    Route("/api/alerts/silences/{silence_id:int}/expire", expire_silence_view, methods=["POST"]),
    Route("/alerts/rules", rules_page),
    Route("/api/alerts/rules", rules_page),
    Route("/alerts/rules/save", save_rule_view, methods=["POST"]),
    Route("/api/alerts/rules", save_rule_view, methods=["POST"]),
    Route("/alerts/rules/preview", preview_rule_view, methods=["POST"]),
    Route("/api/alerts/rules/preview", preview_rule_view, methods=["POST"]),
    Route("/alerts/rules/{name}/delete", delete_rule_view, methods=["POST"]),
    Route("/api/alerts/rules/{name}", delete_rule_view, methods=["DELETE"]),
    Route("/alerts/receivers", receivers_page),
    Route("/api/alerts/receivers", receivers_page),
    Route("/alerts/receivers/create", create_receiver_view, methods=["POST"]),
    Route("/api/alerts/receivers", create_receiver_view, methods=["POST"]),
    Route("/alerts/receivers/{name}/test", test_receiver_view, methods=["POST"]),
    Route("/api/alerts/receivers/{name}/test", test_receiver_view, methods=["POST"]),
    Route("/alerts/receivers/{name}/enable", enable_receiver_view, methods=["POST"]),
    Route("/api/alerts/receivers/{name}/enable", enable_receiver_view, methods=["POST"]),
    Route("/alerts/receivers/{name}/delete", delete_receiver_view, methods=["POST"]),
    Route("/api/alerts/receivers/{name}", delete_receiver_view, methods=["DELETE"]),
]
