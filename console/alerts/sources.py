"""What each rule kind reads, and the alert candidates it yields right now.

Rules read the index the collectors write (lag_groups, sagas, events, positions) and two
live probes the evaluator gathers before each pass: which clusters answer, and how far
behind each cluster's collector indexes. Each candidate is a ``Sample``: the labels that
tell instances of one rule apart (cluster, group, topic, ...), a value, a sentence for the
description, and the console page that shows it (the alert's generatorURL).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from sqlalchemy import Connection, and_, func, select

from collectors.index.lag_models import lag_groups_table
from collectors.index.models import EVENTS_IS_DLQ, events_table, positions_table
from collectors.index.saga_models import sagas_table
from console import catalog_shapes
from console.alerts.rules import Rule, format_duration, format_value, glob_match
from console.event_health import EventHealthSettings
from console.operations.connectors import ConnectClusterJson, needs_attention
from console.stores import catalog as catalog_store
from console.stores import event_health as health_store
from console.web import urls

MAX_SAMPLES_PER_RULE = 500  # a rule matching more instances than this is a bad rule


@dataclass(frozen=True)
class Sample:
    labels: Mapping[str, str]
    value: float | None
    description: str
    path: str


@dataclass(frozen=True)
class Probes:
    """Live facts gathered outside the index, per cluster name."""

    clusters: tuple[str, ...] = ()
    reachable: Mapping[str, tuple[bool, str | None]] = field(default_factory=dict)
    collector_delay_s: Mapping[str, float | None] = field(default_factory=dict)
    index_write_problems: Mapping[str, str] = field(default_factory=dict)
    # Kafka Connect's connectors per cluster, read when a connector_failed rule exists.
    connectors: Mapping[str, Sequence[ConnectClusterJson]] = field(default_factory=dict)
    # What the duplicate_events and ordering_breaks rules read (`[event_health]`).
    event_health: EventHealthSettings = field(default_factory=EventHealthSettings)


def samples(connection: Connection, rule: Rule, now_ms: int, probes: Probes) -> list[Sample]:
    """The instances of ``rule`` whose condition holds at ``now_ms``."""
    reader = _READERS[rule.kind]
    found = [
        s
        for s in reader(connection, rule, now_ms, probes)
        if rule.matches_cluster(s.labels.get("cluster", ""))
    ]
    return found[:MAX_SAMPLES_PER_RULE]


def _group_path(cluster: str, group: str) -> str:
    return f"/groups/{quote(group, safe='')}?{urlencode({'cluster': cluster})}"


def _lag_groups(
    connection: Connection, rule: Rule
) -> list[tuple[str, str, str, int, float | None]]:
    c = lag_groups_table.c
    rows = connection.execute(
        select(c.cluster, c.group_id, c.status, c.total_lag, c.max_time_lag_s)
    ).all()
    return [
        (row.cluster, row.group_id, row.status, int(row.total_lag), row.max_time_lag_s)
        for row in rows
        if glob_match(rule.group, row.group_id)
    ]


def _group_status(connection: Connection, rule: Rule, now_ms: int, probes: Probes) -> list[Sample]:
    return [
        Sample(
            {"cluster": cluster, "group": group, "status": status},
            float(total),
            f"consumer group {group} is {status} (total lag {total})",
            _group_path(cluster, group),
        )
        for cluster, group, status, total, _ in _lag_groups(connection, rule)
        if status in rule.statuses
    ]


def _offset_lag(connection: Connection, rule: Rule, now_ms: int, probes: Probes) -> list[Sample]:
    return [
        Sample(
            {"cluster": cluster, "group": group},
            float(total),
            f"consumer group {group} is {total} messages behind "
            f"(threshold {format_value(rule.threshold)})",
            _group_path(cluster, group),
        )
        for cluster, group, _, total, _ in _lag_groups(connection, rule)
        if total > rule.threshold
    ]


def _time_lag(connection: Connection, rule: Rule, now_ms: int, probes: Probes) -> list[Sample]:
    return [
        Sample(
            {"cluster": cluster, "group": group},
            seconds,
            f"consumer group {group} is {seconds:.0f} s behind "
            f"(threshold {format_value(rule.threshold)} s)",
            _group_path(cluster, group),
        )
        for cluster, group, _, _, seconds in _lag_groups(connection, rule)
        if seconds is not None and seconds > rule.threshold
    ]


def _dlq(connection: Connection, rule: Rule, now_ms: int, probes: Probes) -> list[Sample]:
    c = events_table.c
    since = now_ms - int(rule.window_s * 1000)
    rows = connection.execute(
        select(c.cluster, c.topic, func.count().label("n"))
        .where(and_(EVENTS_IS_DLQ, c.timestamp_ms >= since))
        .group_by(c.cluster, c.topic)
    ).all()
    window = f"{rule.window_s:.0f} s"
    return [
        Sample(
            {"cluster": row.cluster, "topic": row.topic},
            float(row.n),
            f"{row.n} dead-letter messages on {row.topic} within {window}",
            f"/events?{urlencode({'cluster': row.cluster, 'topic': row.topic, 'dlq': '1'})}",
        )
        for row in rows
        if glob_match(rule.topic, row.topic) and row.n > rule.threshold
    ]


def _saga(connection: Connection, rule: Rule, now_ms: int, probes: Probes) -> list[Sample]:
    c = sagas_table.c
    query = (
        select(c.cluster, c.saga_type, c.status, func.count().label("n"))
        .where(c.status.in_(rule.statuses))
        .group_by(c.cluster, c.saga_type, c.status)
    )
    if rule.window_s > 0:
        query = query.where(c.updated_at_ms >= now_ms - int(rule.window_s * 1000))
    out = []
    for row in connection.execute(query):
        saga_type = row.saga_type or "(none)"
        if not glob_match(rule.saga_type, saga_type):
            continue
        status = row.status.replace("_", " ")
        out.append(
            Sample(
                {"cluster": row.cluster, "saga_type": saga_type, "status": row.status},
                float(row.n),
                f"{row.n} {saga_type} sagas are {status}",
                f"/sagas?{urlencode({'type': row.saga_type or '-', 'status': row.status})}",
            )
        )
    return out


def _topic_silent(connection: Connection, rule: Rule, now_ms: int, probes: Probes) -> list[Sample]:
    c = positions_table.c
    rows = connection.execute(
        select(c.cluster, c.topic, func.max(c.updated_at_ms).label("last")).group_by(
            c.cluster, c.topic
        )
    ).all()
    limit_ms = rule.window_s * 1000
    out = []
    for row in rows:
        quiet_s = (now_ms - int(row.last)) / 1000
        if glob_match(rule.topic, row.topic) and quiet_s * 1000 >= limit_ms:
            out.append(
                Sample(
                    {"cluster": row.cluster, "topic": row.topic},
                    quiet_s,
                    f"no event indexed on {row.topic} for {quiet_s:.0f} s",
                    f"/clusters/{quote(row.cluster, safe='')}/topics/{quote(row.topic, safe='')}",
                )
            )
    return out


def _collector_delay(
    connection: Connection, rule: Rule, now_ms: int, probes: Probes
) -> list[Sample]:
    return [
        Sample(
            {"cluster": cluster},
            delay,
            f"the collector of {cluster} indexes records {delay:.0f} s after they were written",
            "/events",
        )
        for cluster, delay in probes.collector_delay_s.items()
        if delay is not None and delay > rule.threshold
    ]


def _index_writes(connection: Connection, rule: Rule, now_ms: int, probes: Probes) -> list[Sample]:
    return [
        Sample({"cluster": cluster}, 1.0, problem[:500], "/readyz")
        for cluster, problem in probes.index_write_problems.items()
    ]


def _cluster_unreachable(
    connection: Connection, rule: Rule, now_ms: int, probes: Probes
) -> list[Sample]:
    return [
        Sample(
            {"cluster": cluster},
            1.0,
            f"cluster {cluster} does not answer: {error or 'unknown error'}"[:500],
            "/clusters",
        )
        for cluster, (ok, error) in probes.reachable.items()
        if not ok
    ]


def _connector_failed(
    connection: Connection, rule: Rule, now_ms: int, probes: Probes
) -> list[Sample]:
    out = []
    for cluster, connect_clusters in probes.connectors.items():
        for connect in connect_clusters:
            for row in connect["connectors"]:
                if not needs_attention(row) or not glob_match(rule.connector, row["name"]):
                    continue
                failed = [task for task in row["tasks"] if task["state"] == "FAILED"]
                what = (f"connector {row['name']} is FAILED" if row["state"] == "FAILED"
                        else f"{len(failed)} of {len(row['tasks'])} tasks of connector "
                             f"{row['name']} are FAILED")  # fmt: skip
                trace = row["trace"] or next((t["trace"] for t in failed if t["trace"]), None)
                why = f": {trace.splitlines()[0]}" if trace else ""
                out.append(Sample(
                    {"cluster": cluster, "connect": connect["name"], "connector": row["name"]},
                    float(len(failed) + (row["state"] == "FAILED")),
                    f"{what} (Kafka Connect {connect['name']}){why}"[:500],
                    urls.connector(cluster, connect["name"], row["name"]),
                ))  # fmt: skip
    return out


def _health_scope(rule: Rule, now_ms: int, probes: Probes) -> health_store.Scope:
    return health_store.Scope(now_ms - int(rule.window_s * 1000), probes.event_health.max_rows)


def _duplicate_events(
    connection: Connection, rule: Rule, now_ms: int, probes: Probes
) -> list[Sample]:
    found = health_store.duplicates(connection, _health_scope(rule, now_ms, probes), limit=0)
    per_topic: dict[tuple[str, str], int] = {}
    for count in found.counts:
        if glob_match(rule.topic, count.topic):
            slot = (count.cluster, count.topic)
            per_topic[slot] = per_topic.get(slot, 0) + count.extra_copies
    window = format_duration(rule.window_s)
    return [
        Sample(
            {"cluster": cluster, "topic": topic},
            float(n),
            f"{n} duplicate copies of events on {topic} within {window}"[:500],
            urls.event_health(cluster=cluster, topic=topic, window=window),
        )
        for (cluster, topic), n in sorted(per_topic.items())
        if n > rule.threshold
    ]


def _ordering_breaks(
    connection: Connection, rule: Rule, now_ms: int, probes: Probes
) -> list[Sample]:
    scope = _health_scope(rule, now_ms, probes)
    per_topic: dict[tuple[str, str], int] = {}
    split = health_store.split_keys(connection, scope, limit=0)
    for cluster, topic, n in split.per_topic:
        per_topic[(cluster, topic)] = n
    rules = probes.event_health.sequences
    for cluster, topic, sequence in health_store.sequence_topics(connection, rules, None, None):
        if glob_match(rule.topic, topic):
            breaks = health_store.topic_breaks(connection, scope, cluster, topic, sequence)
            per_topic[(cluster, topic)] = per_topic.get((cluster, topic), 0) + len(breaks.breaks)
    window = format_duration(rule.window_s)
    return [
        Sample(
            {"cluster": cluster, "topic": topic},
            float(n),
            f"{n} ordering breaks on {topic} within {window}"[:500],
            urls.event_health(cluster=cluster, topic=topic, window=window),
        )
        for (cluster, topic), n in sorted(per_topic.items())
        if glob_match(rule.topic, topic) and n > rule.threshold
    ]


def _duplicate_processing(
    connection: Connection, rule: Rule, now_ms: int, probes: Probes
) -> list[Sample]:
    found = health_store.reprocessing(connection, _health_scope(rule, now_ms, probes),
                                      limit=health_store.MAX_FINDINGS)  # fmt: skip
    per_group: dict[tuple[str, str], int] = {}
    for record in found.records:
        if glob_match(rule.group, record.group) and glob_match(rule.topic, record.topic):
            slot = (record.group, record.topic)
            per_group[slot] = per_group.get(slot, 0) + 1
    window = format_duration(rule.window_s)
    return [
        Sample(
            {"group": group, "topic": topic},
            float(n),
            f"{group} processed {n} record{'' if n == 1 else 's'} of {topic} more than once "
            f"within {window}"[:500],
            urls.event_health(topic=topic, window=window),
        )
        for (group, topic), n in sorted(per_group.items())
        if n > rule.threshold
    ]


MAX_DRIFT_TYPES = 20  # event types a shape_drift rule looks at per pass (the busiest)
DRIFT_SAMPLES = 100  # records of each


def _shape_drift(connection: Connection, rule: Rule, now_ms: int, probes: Probes) -> list[Sample]:
    since = now_ms - int(rule.window_s * 1000)
    types = [seen for seen in catalog_store.types_seen(connection, since)
             if any(glob_match(rule.topic, topic) for topic in seen.topics)]  # fmt: skip
    found = []
    for seen in types[:MAX_DRIFT_TYPES]:
        rows = catalog_store.drift_samples(connection, seen.cluster, seen.event_type, since,
                                           DRIFT_SAMPLES)  # fmt: skip
        changes = catalog_shapes.drift(catalog_shapes.readable(rows))
        if len(changes) > rule.threshold:
            what = "; ".join(f"{c['change']} {c['path']}" for c in changes[:5])
            found.append(Sample(
                {"cluster": seen.cluster, "event_type": seen.event_type[:200]},
                float(len(changes)),
                f"the shape of {seen.event_type} changed: {what}"[:500],
                urls.catalog_type(seen.cluster, seen.event_type),
            ))  # fmt: skip
    return found


_READERS = {
    "group_status": _group_status,
    "offset_lag": _offset_lag,
    "time_lag": _time_lag,
    "dlq": _dlq,
    "saga": _saga,
    "topic_silent": _topic_silent,
    "collector_delay": _collector_delay,
    "cluster_unreachable": _cluster_unreachable,
    "index_writes": _index_writes,
    "connector_failed": _connector_failed,
    "duplicate_events": _duplicate_events,
    "ordering_breaks": _ordering_breaks,
    "duplicate_processing": _duplicate_processing,
    "shape_drift": _shape_drift,
}
