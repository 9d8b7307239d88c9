"""Alerts: what fires now and what fired, and silences (/alerts, /api/alerts); the rules
are in alert_rules.py, the receivers in alert_receivers.py.

Forms that change something are POSTs carrying the CSRF token; every change to rules,
receivers and silences writes an audit row (in the same transaction, console/stores/alerts.py).
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

from console.alerts.evaluator import AlertEvaluator
from console.alerts.grouping import GroupTiming
from console.alerts.rules import RuleError, format_duration
from console.alerts.silences import SilenceError
from console.auth.roles import OPERATOR, VIEWER
from console.state import AppState
from console.stores import alerts as store
from console.web.endpoints import Call, Endpoint, Reply
from console.web.schema import (
    NUMBER,
    STRING,
    Schema,
    enum,
    integer,
    p,
    shape,
)

MAX_ROW_ID = 2**63 - 1
SILENCE_DURATIONS = {"1h": 3600, "4h": 14_400, "1d": 86_400, "1w": 604_800}


def epoch_ms() -> int:
    return int(time.time() * 1000)


def audit_actor(call: Call) -> store.Actor:
    return store.Actor(call.actor, call.remote)


def back_to(path: str, **query: str) -> str:
    clean = {k: v for k, v in query.items() if v}
    return path + (f"?{urlencode(clean)}" if clean else "")


def running_evaluator(state: AppState) -> AlertEvaluator | None:
    for service in state.services.services:
        if isinstance(service, AlertEvaluator):
            return service
    return None


def pairs_field(text: str, key: str) -> dict[str, str]:
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
    notifiedAtMs: int | None  # the first notification that reported it firing
    lastNotifiedAtMs: int | None
    clearedAtMs: int | None  # firing, kept by keep_firing_for since its condition cleared
    notification: str  # notified, waiting, not notified, none (pending)
    notificationNote: str | None  # why not (yet)


class AlertsJson(TypedDict):
    firing: list[AlertJson]
    pending: list[AlertJson]
    resolved: list[AlertJson]
    silences: list[dict[str, Any]]


# --- alerts and silences ----------------------------------------------------------------------


def _notification(row: Any, silenced_by: int | None, timing: GroupTiming) -> tuple[str, str | None]:
    """Whether a notification reported the alert, and if not, why (in words)."""
    if row.notified_at_ms is not None:
        return NOTIFIED, None
    if row.state == "pending":
        return "none", "pending: notifications start once it fires"
    if row.state == "resolved":
        return NOT_NOTIFIED, row.notification_note or "no notification reported it firing"
    if silenced_by is not None:
        return NOT_NOTIFIED, f"silenced (#{silenced_by})"
    wait, interval = format_duration(timing.group_wait_s), format_duration(timing.group_interval_s)
    return "waiting", (
        f"its group notifies after group_wait ({wait}), or group_interval ({interval}) after "
        "its previous notification"
    )


NOTIFIED = "notified"
NOT_NOTIFIED = "not notified"


def _alert_json(row: Any, silenced_by: int | None, timing: GroupTiming) -> AlertJson:
    notification, note = _notification(row, silenced_by, timing)
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
        notifiedAtMs=row.notified_at_ms,
        lastNotifiedAtMs=row.last_notified_at_ms,
        clearedAtMs=row.cleared_at_ms,
        notification=notification,
        notificationNote=note,
    )


def read_alerts(call: Call, now_ms: int) -> AlertsJson:
    active, history, silences = store.alerts_and_silences(call.engine, now_ms)
    live = [s for s in silences if s.active(now_ms)]

    def silence_of(row: Any) -> int | None:
        labels = json.loads(row.labels)
        return next((s.id for s in live if s.matches(labels)), None)

    timing = call.state.areas.alerts.timing
    return AlertsJson(
        firing=[_alert_json(r, silence_of(r), timing) for r in active if r.state == "firing"],
        pending=[_alert_json(r, silence_of(r), timing) for r in active if r.state == "pending"],
        resolved=[_alert_json(r, None, timing) for r in history],
        silences=[s.as_json(now_ms) for s in silences],
    )


async def alerts_page(call: Call) -> Reply:
    data = await run_in_threadpool(read_alerts, call, epoch_ms())
    page = {
        "durations": SILENCE_DURATIONS,
        "error": call.query.get("error"),
        "evaluator": running_evaluator(call.state),
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
            return Reply({}, redirect=back_to("/alerts", error=str(exc)))
    try:
        matchers, seconds, comment = _silence_request(fields)
        silence_id = await run_in_threadpool(
            store.add_silence,
            call.engine,
            matchers,
            seconds,
            comment,
            audit_actor(call),
            epoch_ms(),
        )
    except SilenceError as exc:
        if call.api:
            raise HTTPException(400, str(exc)) from None
        return Reply({}, redirect=back_to("/alerts", error=str(exc)))
    return Reply({"id": silence_id}, status=201, redirect="/alerts")


async def expire_silence_view(call: Call) -> Reply:
    silence_id = int(call.path["silence_id"])
    if silence_id > MAX_ROW_ID:  # past any id the index can hold (and its integer type)
        raise HTTPException(404, f"no active silence {silence_id}")
    done = await run_in_threadpool(
        store.end_silence, call.engine, silence_id, audit_actor(call), epoch_ms()
    )
    if not done:
        raise HTTPException(404, f"no active silence {silence_id}")
    return Reply({"id": silence_id, "status": "expired"}, redirect="/alerts")


SILENCE: Schema = {
    "type": "object",
    "properties": {
        "matchers": {"type": "object", "additionalProperties": STRING},
        "duration": {"oneOf": [enum(*SILENCE_DURATIONS), NUMBER]},
        "comment": STRING,
    },
    "required": ["matchers"],
}

SILENCE_ID = p("silence_id", integer(0), "the silence's id")

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
]  # fmt: skip
