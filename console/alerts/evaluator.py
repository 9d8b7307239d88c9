"""The alert evaluator: a background service that runs every rule at a fixed interval.

Each pass, in one index transaction:

1. every rule yields its candidates (console/alerts/sources.py); a candidate's labels are
   ``alertname``, ``severity``, the rule's labels and the instance's own labels, and their
   fingerprint identifies the alert;
2. lifecycle, as in Prometheus: a new candidate is *pending* and becomes *firing* once it
   has held for the rule's ``for`` (at once when ``for`` is 0); a pending alert that stops
   holding is dropped, a firing one becomes *resolved* (the row stays as history) once it
   has not held for the rule's ``keep_firing_for`` (at once when 0); an alert that resolves
   without ever being notified records why (``notification_note``);
3. grouping, as in Alertmanager: per receiver, alerts with the same values of ``group_by``
   form a group; console/alerts/grouping.py decides when a group notifies; silenced alerts
   are left out;
4. each notification is written to the outbox (the delivery worker sends it), and the
   group's state and its alerts' notification times are updated in the same transaction,
   so a crash never loses nor doubles it.

A rule that fails to evaluate keeps its alerts as they were and reports its error.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import DBAPIError

from collectors.config import ClusterConfig
from collectors.index.alert_models import alert_groups_table, alert_outbox_table, alerts_table
from collectors.kafka.admin import is_reachable
from collectors.services import PeriodicService
from console.alerts.grouping import (
    FIRING,
    RESOLVED,
    GroupState,
    after_notification,
    alerts_to_send,
    due,
    group_labels_of,
    next_due_at,
)
from console.alerts.index_down import AFTER_S as INDEX_DOWN_AFTER_S
from console.alerts.index_down import IndexDownNotifier
from console.alerts.rules import Rule, format_duration, render
from console.alerts.settings import AlertSettings, Receiver
from console.alerts.silences import Silence, load_silences, silenced_by
from console.alerts.sources import Probes, Sample, samples
from console.alerts.webhook_format import (
    AlertInstance,
    build_webhook_body,
    encode_body,
    fingerprint,
    group_key,
)
from console.event_health import EventHealthSettings
from console.operations.connectors import ConnectClusterJson, connect_clusters
from console.stores.alerts import (
    ACTIVE_STATES,
    PENDING,
    all_rules,
    load_receivers,
    sync_config_receivers,
)

log = logging.getLogger("eventscope.alerts")

MAX_BACKOFF_S = 60.0  # a pass that fails on the index is tried again at least every minute
REACHABILITY_TIMEOUT_S = 5.0


@dataclass
class PassReport:
    """What one evaluation pass did (for the Rules page and for tests)."""

    at_ms: int = 0
    firing: int = 0
    pending: int = 0
    resolved: int = 0
    notifications: int = 0
    rule_errors: dict[str, str] = field(default_factory=dict)
    receivers: dict[str, Receiver] = field(default_factory=dict)  # the enabled ones


@dataclass(frozen=True)
class Candidate:
    rule: Rule
    sample: Sample
    labels: dict[str, str]
    annotations: dict[str, str]
    fingerprint: str


def candidates(rule: Rule, found: Sequence[Sample]) -> list[Candidate]:
    """Turn a rule's samples into alert candidates with their final labels."""
    out: list[Candidate] = []
    for sample in found:
        labels = {**sample.labels, **rule.labels, "alertname": rule.name, "severity": rule.severity}
        annotations = {"description": sample.description}
        annotations |= {
            name: render(text, labels, sample.value) for name, text in rule.annotations.items()
        }
        out.append(Candidate(rule, sample, labels, annotations, fingerprint(labels)))
    return out


def evaluate_rules(
    connection: Connection, rules: Sequence[Rule], now_ms: int, probes: Probes
) -> tuple[dict[str, Candidate], set[str], dict[str, str]]:
    """Candidates by fingerprint, the rules that failed (their names) and their errors."""
    found: dict[str, Candidate] = {}
    failed: set[str] = set()
    errors: dict[str, str] = {}
    for rule in rules:
        if not rule.enabled:
            continue
        try:
            with connection.begin_nested():
                rule_samples = samples(connection, rule, now_ms, probes)
        except Exception as exc:  # one bad rule or table must not stop the others
            failed.add(rule.name)
            errors[rule.name] = f"{type(exc).__name__}: {exc}"[:500]
            continue
        for candidate in candidates(rule, rule_samples):
            found.setdefault(candidate.fingerprint, candidate)
    return found, failed, errors


class AlertEngine:
    """One evaluation pass over the index (synchronous; the service runs it in a thread)."""

    def __init__(self, engine: Engine, settings: AlertSettings, external_url: str) -> None:
        self.engine = engine
        self.settings = settings
        self.external_url = external_url.rstrip("/")
        self._resolved_now = 0

    def run(self, now_ms: int, probes: Probes) -> PassReport:
        report = PassReport(at_ms=now_ms)
        with self.engine.begin() as connection:
            rules = all_rules(connection, self.settings)
            found, failed, report.rule_errors = evaluate_rules(connection, rules, now_ms, probes)
            receivers = {
                name: stored.receiver
                for name, stored in load_receivers(connection).items()
                if stored.receiver.enabled
            }
            report.receivers = dict(receivers)
            silences = load_silences(connection, now_ms)
            self._lifecycle(connection, rules, found, failed, now_ms, receivers, silences)
            report.notifications = self._notify(connection, now_ms, receivers, silences)
            counts: dict[str, int] = defaultdict(int)
            for (state,) in connection.execute(
                select(alerts_table.c.state).where(alerts_table.c.state.in_(ACTIVE_STATES))
            ):
                counts[state] += 1
            report.firing, report.pending = counts[FIRING], counts[PENDING]
            report.resolved = self._resolved_now
        return report

    # -- lifecycle --------------------------------------------------------------------------

    def _lifecycle(
        self,
        connection: Connection,
        rules: Sequence[Rule],
        found: Mapping[str, Candidate],
        failed: set[str],
        now_ms: int,
        receivers: Mapping[str, Receiver],
        silences: Sequence[Silence],
    ) -> None:
        c = alerts_table.c
        active = {
            row.fingerprint: row
            for row in connection.execute(select(alerts_table).where(c.state.in_(ACTIVE_STATES)))
        }
        self._resolved_now = 0
        for fp, candidate in found.items():
            rule = candidate.rule
            values = {
                "labels": json.dumps(candidate.labels, sort_keys=True),
                "annotations": json.dumps(candidate.annotations, sort_keys=True),
                "receivers": json.dumps(list(rule.receivers)),
                "value": candidate.sample.value,
                "severity": rule.severity,
                "generator_url": self.external_url + candidate.sample.path,
                "evaluated_at_ms": now_ms,
            }
            row = active.get(fp)
            if row is None:
                fires = rule.for_s <= 0
                connection.execute(
                    insert(alerts_table).values(
                        fingerprint=fp,
                        rule_name=rule.name,
                        state=FIRING if fires else PENDING,
                        active_since_ms=now_ms,
                        starts_at_ms=now_ms if fires else None,
                        **values,
                    )
                )
                continue
            if row.state == PENDING and now_ms - row.active_since_ms >= rule.for_s * 1000:
                values |= {"state": FIRING, "starts_at_ms": now_ms}
            values["cleared_at_ms"] = None  # it holds (again)
            connection.execute(update(alerts_table).where(c.id == row.id).values(**values))
        live_rules = {rule.name: rule for rule in rules if rule.enabled}
        resolving = []
        for fp, row in active.items():
            if fp in found or (row.rule_name in failed and row.rule_name in live_rules):
                continue
            if row.state == PENDING:
                connection.execute(delete(alerts_table).where(c.id == row.id))
                continue
            rule_now = live_rules.get(row.rule_name)
            keep_ms = 0.0 if rule_now is None else rule_now.keep_firing_for_s * 1000
            # evaluated_at_ms is the last pass the condition held (not updated while kept).
            if now_ms - row.evaluated_at_ms < keep_ms:
                if row.cleared_at_ms is None:
                    connection.execute(
                        update(alerts_table).where(c.id == row.id).values(cleared_at_ms=now_ms)
                    )
                continue
            resolving.append(row)
        why_not = self._why_not_notified(now_ms, receivers, silences)
        for row in resolving:
            self._resolved_now += 1
            connection.execute(
                update(alerts_table)
                .where(c.id == row.id)
                .values(
                    state=RESOLVED,
                    ends_at_ms=now_ms,
                    evaluated_at_ms=now_ms,
                    notification_note=None if row.notified_at_ms else why_not(row),
                )
            )

    def _why_not_notified(
        self, now_ms: int, receivers: Mapping[str, Receiver], silences: Sequence[Silence]
    ) -> Callable[[Any], str]:
        """Words for an alert that resolves although no notification ever reported it."""
        timing = self.settings.timing

        def why(row: Any) -> str:
            silence = silenced_by(_json_map(row.labels), silences, now_ms)
            if silence is not None:
                return f"silenced (#{silence.id})"
            wanted = json.loads(row.receivers or "[]") or sorted(receivers)
            if not any(name in receivers for name in wanted):
                return "no enabled receiver"
            fired_s = (now_ms - (row.starts_at_ms or row.active_since_ms)) / 1000
            if fired_s <= timing.group_wait_s:
                return f"resolved within group_wait ({format_duration(timing.group_wait_s)})"
            return (
                "resolved before its group's next notification (group_interval "
                f"{format_duration(timing.group_interval_s)})"
            )

        return why

    # -- grouping and notifications ---------------------------------------------------------

    def _notify(
        self,
        connection: Connection,
        now_ms: int,
        receivers: Mapping[str, Receiver],
        silences: Sequence[Silence],
    ) -> int:
        """Group the firing and recently resolved alerts per enabled receiver and send the
        notifications that are due (`receivers` and `silences` as of this pass)."""
        timing = self.settings.timing
        c = alerts_table.c
        # Resolved alerts matter only until their resolution has been notified, which
        # happens at the latest one group interval after they resolved.
        keep_ms = int((timing.group_interval_s + timing.group_wait_s) * 1000) + 3_600_000
        rows = connection.execute(
            select(alerts_table).where(
                (c.state == FIRING) | ((c.state == RESOLVED) & (c.ends_at_ms >= now_ms - keep_ms))
            )
        ).all()
        groups: dict[tuple[str, str], dict[str, Any]] = {}
        for row in rows:
            labels = _json_map(row.labels)
            if silenced_by(labels, silences, now_ms):
                continue
            wanted = json.loads(row.receivers or "[]") or list(receivers)
            group_labels = group_labels_of(labels, self.settings.group_by)
            key = group_key("{}", group_labels)
            for name in wanted:
                if name not in receivers:
                    continue
                group = groups.setdefault((name, key), {"labels": group_labels, "alerts": {}})
                alerts: dict[str, Any] = group["alerts"]
                previous = alerts.get(row.fingerprint)
                # The same fingerprint may be both firing now and resolved earlier.
                if previous is None or previous.state == RESOLVED:
                    alerts[row.fingerprint] = row

        stored = {
            (g.receiver, g.group_key): g for g in connection.execute(select(alert_groups_table))
        }
        sent = 0
        now_s = now_ms / 1000
        for gkey in sorted(set(groups) | set(stored)):
            receiver_name, key = gkey
            group = groups.get(gkey, {"labels": {}, "alerts": {}})
            saved = stored.get(gkey)
            if saved is None:
                state = GroupState(created_at=now_s)
            else:
                state = GroupState(
                    created_at=saved.created_at_ms / 1000,
                    last_notified_at=None
                    if saved.last_notified_at_ms is None
                    else saved.last_notified_at_ms / 1000,
                    last_notified_hash=saved.last_notified_hash,
                    last_notified_firing=frozenset(json.loads(saved.notified_firing)),
                    last_notified_resolved=frozenset(json.loads(saved.notified_resolved)),
                )
            rows_by_fp = group["alerts"]
            # A resolved alert is news only to a group that reported it firing.
            known = state.last_notified_firing | state.last_notified_resolved
            pairs = [
                (fp, row.state)
                for fp, row in rows_by_fp.items()
                if row.state == FIRING or fp in known
            ]
            if next_due_at(state, pairs, timing) is None:
                if saved is not None:
                    connection.execute(
                        delete(alert_groups_table).where(
                            alert_groups_table.c.receiver == receiver_name,
                            alert_groups_table.c.group_key == key,
                        )
                    )
                continue
            if saved is None:
                connection.execute(
                    insert(alert_groups_table).values(
                        receiver=receiver_name,
                        group_key=key,
                        labels=json.dumps(group["labels"], sort_keys=True),
                        created_at_ms=now_ms,
                        notified_firing="[]",
                        notified_resolved="[]",
                    )
                )
            chosen = alerts_to_send(pairs, timing)
            if not chosen or not due(state, pairs, now_s, timing):
                continue
            receiver = receivers[receiver_name]
            instances = [_instance(rows_by_fp[fp], status) for fp, status in chosen]
            body = build_webhook_body(
                receiver=receiver_name,
                group_labels=group["labels"],
                alerts=instances,
                external_url=self.external_url,
                max_alerts=receiver.max_alerts,
            )
            enqueue(connection, receiver_name, key, body, now_ms)
            sent += 1
            for fp, status in chosen:
                row = rows_by_fp[fp]
                times: dict[str, int] = {"last_notified_at_ms": now_ms}
                if status == FIRING and row.notified_at_ms is None:
                    times["notified_at_ms"] = now_ms
                connection.execute(update(alerts_table).where(c.id == row.id).values(**times))
            new_state = after_notification(state, chosen, now_s, timing)
            connection.execute(
                update(alert_groups_table)
                .where(
                    alert_groups_table.c.receiver == receiver_name,
                    alert_groups_table.c.group_key == key,
                )
                .values(
                    last_notified_at_ms=now_ms,
                    last_notified_hash=new_state.last_notified_hash,
                    notified_firing=json.dumps(sorted(new_state.last_notified_firing)),
                    notified_resolved=json.dumps(sorted(new_state.last_notified_resolved)),
                )
            )
        return sent


def enqueue(
    connection: Connection, receiver: str, key: str, body: Mapping[str, Any], now_ms: int
) -> str:
    """Write one notification to the outbox; returns its webhook-id."""
    webhook_id = f"msg_{uuid.uuid4().hex}"
    connection.execute(
        insert(alert_outbox_table).values(
            receiver=receiver,
            group_key=key,
            webhook_id=webhook_id,
            status=str(body.get("status", FIRING)),
            body=encode_body(body).decode("utf-8"),
            state="pending",
            attempts=0,
            created_at_ms=now_ms,
            next_attempt_at_ms=now_ms,
        )
    )
    return webhook_id


def preview(engine: Engine, rule: Rule, probes: Probes, now_ms: int) -> list[dict[str, Any]]:
    """What a rule would yield now, without changing anything (the editor's preview)."""
    with engine.connect() as connection:
        found = samples(connection, rule, now_ms, probes)
        active = {
            row.fingerprint: row.state
            for row in connection.execute(
                select(alerts_table.c.fingerprint, alerts_table.c.state).where(
                    alerts_table.c.state.in_(ACTIVE_STATES)
                )
            )
        }
    out = []
    for candidate in candidates(rule, found):
        current = active.get(candidate.fingerprint)
        would = FIRING if rule.for_s <= 0 or current == FIRING else PENDING
        out.append(
            {
                "fingerprint": candidate.fingerprint,
                "labels": candidate.labels,
                "annotations": candidate.annotations,
                "value": candidate.sample.value,
                "state": would,
                "currently": current,
            }
        )
    return out


def _instance(row: Any, status: str) -> AlertInstance:
    return AlertInstance(
        labels=_json_map(row.labels),
        annotations=_json_map(row.annotations),
        starts_at=_when(row.starts_at_ms or row.active_since_ms) or datetime.now(UTC),
        ends_at=_when(row.ends_at_ms) if status == RESOLVED else None,
        generator_url=row.generator_url,
        status=status,
    )


def _when(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


def _json_map(text: str) -> dict[str, str]:
    try:
        data = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


# --- the service ------------------------------------------------------------------------------

CollectorDelays = Callable[[], Mapping[str, float | None]]
CollectorProblems = Callable[[], Mapping[str, str]]


class AlertEvaluator(PeriodicService):
    """Background service: evaluate every ``evaluate_interval_s``; never crashes the process."""

    name = "alert-evaluator"

    def __init__(
        self,
        engine: Engine,
        settings: AlertSettings,
        clusters: Sequence[ClusterConfig],
        external_url: str,
        collector_delays: CollectorDelays = dict,
        clock: Callable[[], float] = time.time,
        collector_problems: CollectorProblems = dict,
        index_down_after_s: float = INDEX_DOWN_AFTER_S,
        event_health: EventHealthSettings | None = None,
    ) -> None:
        super().__init__()
        self.retry_s = settings.evaluate_interval_s
        self.max_backoff_s = MAX_BACKOFF_S
        self.engine = engine
        self.settings = settings
        self.clusters = list(clusters)
        self.collector_delays = collector_delays
        self.collector_problems = collector_problems
        self.clock = clock
        self.alerts = AlertEngine(engine, settings, external_url)
        self.last_report: PassReport | None = None
        self.index_down = IndexDownNotifier(external_url, index_down_after_s, clock)
        self.event_health = event_health or EventHealthSettings()

    async def start(self) -> None:
        await asyncio.to_thread(
            sync_config_receivers, self.engine, self.settings.receivers, int(self.clock() * 1000)
        )
        await super().start()

    async def probes(self, rules: Sequence[Rule] | None = None) -> Probes:
        kinds = {rule.kind for rule in (rules if rules is not None else self._known_rules())}
        reachable: dict[str, tuple[bool, str | None]] = {}
        if "cluster_unreachable" in kinds and self.clusters:
            results = await asyncio.gather(
                *(is_reachable(c, REACHABILITY_TIMEOUT_S) for c in self.clusters)
            )
            reachable = {c.name: r for c, r in zip(self.clusters, results, strict=True)}
        delays: Mapping[str, float | None] = {}
        if "collector_delay" in kinds:
            delays = self.collector_delays()
        problems = self.collector_problems() if "index_writes" in kinds else {}
        found: dict[str, list[ConnectClusterJson]] = {}
        if "connector_failed" in kinds:
            with_connect = [c for c in self.clusters if c.connect]
            listed = await asyncio.gather(*(connect_clusters(c) for c in with_connect))
            found = {c.name: rows for c, rows in zip(with_connect, listed, strict=True)}
        return Probes(tuple(c.name for c in self.clusters), reachable, delays, problems, found,
                      self.event_health)  # fmt: skip

    async def evaluate_once(self) -> PassReport:
        probes = await self.probes(await asyncio.to_thread(self._all_rules))
        now_ms = int(self.clock() * 1000)
        report = await asyncio.to_thread(self.alerts.run, now_ms, probes)
        self.last_report = report
        return report

    def _all_rules(self) -> list[Rule]:
        with self.engine.connect() as connection:
            return all_rules(connection, self.settings)

    def _known_rules(self) -> list[Rule]:
        return list(self.settings.rules)

    async def step(self) -> float:
        report = await self.evaluate_once()
        for rule, error in report.rule_errors.items():
            log.warning("alert rule %s failed: %s", rule, error)
        await self.index_down.pass_succeeded(report.receivers)
        return self.settings.evaluate_interval_s

    async def on_error(self, exc: Exception) -> None:
        """A pass that failed on the index: no alert can be recorded, so the receivers are
        told directly (console/alerts/index_down.py)."""
        if isinstance(exc, DBAPIError):
            await self.index_down.pass_failed(f"{type(exc.orig).__name__}: {exc.orig}")


def collector_delays_of(
    taps: Sequence[Any], clock: Callable[[], float] = time.time
) -> CollectorDelays:
    """Ingest delay per cluster from the taps (see `Tap.delay_s`): a collector that falls
    behind indexes old records, and one whose writes hang or fail indexes none, which
    counts as a delay growing with the time it lasts."""

    def delays() -> dict[str, float | None]:
        now = clock()
        return {tap.cluster.name: tap.delay_s(now) for tap in taps}

    return delays


def collector_problems_of(
    taps: Sequence[Any], clock: Callable[[], float] = time.time
) -> CollectorProblems:
    """Per cluster, why its records are not reaching the index (`Tap.pipeline_problem`)."""

    def problems() -> dict[str, str]:
        now = clock()
        found = {tap.cluster.name: tap.pipeline_problem(now) for tap in taps}
        return {cluster: problem for cluster, problem in found.items() if problem}

    return problems
