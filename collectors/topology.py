"""Topology: services -> topics -> consumer groups -> services, learned from the index.

Three sources, each optional, merged into one graph over a time window:

* spans — a producer span's service sends to its destination topic; a consumer span's
  topic is read by its consumer group (`messaging.consumer.group.name`, older
  `messaging.kafka.consumer.group`), which runs in the span's service. Failed spans count
  as errors on the edge.
* headers — a record's source (`ce_source`, `source`, ... see collectors/conventions.py)
  produced to the record's topic, for producers that export no spans.
* assignments — the lag sampler's latest look at every consumer group (`lag_groups`): the
  topics a group has committed offsets on, and the members (client id, host) that own
  their partitions. This needs no tracing at all.

Rates are records (or spans) per second over the window: a topic -> group edge learned
from assignments carries the records indexed on the topic in the window, since a group
reads every record of a topic it consumes. Dead-letter records that arrived in the window
count as failures of the edge from their original topic to the group that dead-lettered
them (Spring's `kafka_dlt-original-consumer-group` header), or to every group of that
topic when the header is absent; they also draw an edge to the dead-letter topic. Failed
spans and dead letters usually describe the same failures, so an edge's failures are the
larger of the two, not their sum.

Topics and groups are keyed by name: the same name in two clusters is one node that lists
both clusters.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, case, func, select

from collectors import lineage, traces
from collectors.index.lag_models import lag_groups_table as lag_groups
from collectors.index.models import events_table as events
from collectors.index.trace_models import spans_table as spans

ORIGIN_SPANS = "spans"
ORIGIN_HEADERS = "headers"
ORIGIN_ASSIGNMENTS = "assignments"
ORIGIN_DEAD_LETTERS = "dead letters"
ORIGIN_CONNECT = "kafka connect"

MAX_DEAD_LETTERS_READ = 20_000  # DLQ rows parsed per request; the rest are counted only
MAX_MEMBERS_SHOWN = 20
MAX_NAME_CHARS = 300
DLT_GROUP_HEADER = "kafka_dlt-original-consumer-group"

NodeKey = tuple[str, str]  # (kind, name); kind is "service", "topic" or "group"
EDGE_KINDS = {
    ("service", "topic"): "produces",
    ("topic", "group"): "consumed-by",
    ("group", "service"): "runs-in",
    ("topic", "topic"): "dead-letter",
    ("group", "topic"): "dead-letter",
}


@dataclass
class Node:
    kind: str
    name: str
    clusters: set[str] = field(default_factory=set)
    records: int = 0  # topics: records indexed in the window
    group: dict[str, Any] | None = None  # groups: the lag sampler's latest look
    synthetic: bool = False  # a group named after its service: consumer spans without a group
    connect: tuple[str, str] | None = None  # a Kafka Connect connector: (cluster, Connect name)


@dataclass
class Edge:
    source: NodeKey
    target: NodeKey
    counts: dict[str, int] = field(default_factory=dict)  # records or spans, per origin
    errors: int = 0  # failed spans
    dead_letters: int = 0
    consumers: set[str] = field(default_factory=set)  # "client id @ host" owning partitions

    @property
    def origins(self) -> list[str]:
        return sorted(self.counts)

    @property
    def count(self) -> int:
        """What went through: the origins see the same traffic, so the largest, not the sum."""
        return max(self.counts.values(), default=0)

    def add(self, origin: str, count: int) -> None:
        self.counts[origin] = self.counts.get(origin, 0) + count

    @property
    def kind(self) -> str:
        return EDGE_KINDS.get((self.source[0], self.target[0]), "flows-to")

    @property
    def failures(self) -> int:
        return max(self.errors, self.dead_letters)


MIN_RATE_SECONDS = 60.0  # a handful of records in the last second is not a rate


@dataclass
class Topology:
    nodes: dict[NodeKey, Node] = field(default_factory=dict)
    edges: dict[tuple[NodeKey, NodeKey], Edge] = field(default_factory=dict)
    first_ms: int | None = None  # the earliest record or span of the window

    def seconds_seen(self, since_ms: int, now_ms: int) -> float:
        """What rates divide by: the window, or less when traffic began inside it (a demo
        two minutes old must not show a fifteenth of its rate in a 30-minute window)."""
        start = since_ms if self.first_ms is None else max(since_ms, self.first_ms)
        window_s = max(1.0, (now_ms - since_ms) / 1000)
        return max(min(MIN_RATE_SECONDS, window_s), (now_ms - start) / 1000)

    def node(self, kind: str, name: str, cluster: str | None = None) -> Node:
        name = name[:MAX_NAME_CHARS]
        found = self.nodes.get((kind, name))
        if found is None:
            found = self.nodes[(kind, name)] = Node(kind, name)
        if cluster:
            found.clusters.add(cluster)
        return found

    def edge(self, source: Node, target: Node) -> Edge:
        key = ((source.kind, source.name), (target.kind, target.name))
        found = self.edges.get(key)
        if found is None:
            found = self.edges[key] = Edge(key[0], key[1])
        return found

    def edges_from(self, source: NodeKey, target_kind: str) -> list[Edge]:
        return [e for e in self.edges.values() if e.source == source and e.target[0] == target_kind]


def learn(engine: Engine, since_ms: int) -> Topology:
    """The topology seen since `since_ms` (epoch milliseconds)."""
    topology = Topology()
    with engine.connect() as connection:
        span_rows = connection.execute(_span_query(since_ms)).all()
        record_rows = connection.execute(_record_query(since_ms)).all()
        group_rows = connection.execute(
            select(lag_groups.c.cluster, lag_groups.c.group_id, lag_groups.c.state,
                   lag_groups.c.status, lag_groups.c.total_lag, lag_groups.c.max_time_lag_s,
                   lag_groups.c.sampled_at_ms, lag_groups.c.detail)
            .where(lag_groups.c.sampled_at_ms >= since_ms)
        ).all()  # fmt: skip
        first_record = connection.execute(
            select(func.min(events.c.timestamp_ms)).where(events.c.timestamp_ms >= since_ms)
        ).scalar()
        first_span = connection.execute(
            select(func.min(spans.c.start_ns)).where(spans.c.start_ns >= since_ms * 1_000_000)
        ).scalar()
        dead_letter_rows = connection.execute(
            select(events.c.cluster, events.c.topic, events.c.dlq_original_topic,
                   events.c.headers)
            .where(lineage.dead_letters_since(since_ms), events.c.dlq_original_topic.is_not(None))
            .limit(MAX_DEAD_LETTERS_READ)
        ).all()  # fmt: skip
    _add_records(topology, record_rows)
    _add_spans(topology, span_rows)
    _add_assignments(topology, group_rows)
    _add_dead_letters(topology, dead_letter_rows)
    firsts = [first_record, None if first_span is None else first_span // 1_000_000]
    known = [int(first) for first in firsts if first is not None]
    topology.first_ms = min(known) if known else None
    return topology


@dataclass(frozen=True)
class ConnectorUse:
    """A Kafka Connect connector as the topology draws it: a service that writes its topics
    (a source) or reads them (a sink, through its consumer group `connect-<name>`)."""

    cluster: str
    connect: str
    name: str
    kind: str  # source or sink
    topics: tuple[str, ...]


def add_connectors(topology: Topology, connectors: Iterable[ConnectorUse]) -> None:
    for use in connectors:
        service = topology.node("service", use.name, use.cluster)
        service.connect = (use.cluster, use.connect)
        for topic_name in use.topics:
            topic = topology.node("topic", topic_name, use.cluster)
            if use.kind == "source":
                topology.edge(service, topic).add(ORIGIN_CONNECT, topic.records)
                continue
            group = topology.node("group", f"connect-{use.name}", use.cluster)
            for source, target in ((topic, group), (group, service)):
                edge = topology.edge(source, target)
                edge.counts[ORIGIN_CONNECT] = max(edge.counts.get(ORIGIN_CONNECT, 0),
                                                  topic.records)  # fmt: skip


def _span_query(since_ms: int) -> Any:
    c = spans.c
    failed = func.sum(case((c.status_code == traces.STATUS_ERROR, 1), else_=0))
    return (
        select(c.service_name, c.kind, c.messaging_operation, c.topic, c.consumer_group,
               func.count(), failed)
        .where(c.start_ns >= since_ms * 1_000_000, c.topic.is_not(None))
        .group_by(c.service_name, c.kind, c.messaging_operation, c.topic, c.consumer_group)
    )  # fmt: skip


def _record_query(since_ms: int) -> Any:
    c = events.c
    return (
        select(c.cluster, c.topic, c.source, func.count())
        .where(c.timestamp_ms >= since_ms)
        .group_by(c.cluster, c.topic, c.source)
    )


def _add_records(topology: Topology, rows: Iterable[Any]) -> None:
    for cluster, topic, source, count in rows:
        node = topology.node("topic", topic, cluster)
        node.records += count
        if source:
            topology.edge(topology.node("service", source), node).add(ORIGIN_HEADERS, count)


def _add_spans(topology: Topology, rows: Iterable[Any]) -> None:
    for service, kind, operation, topic, group, count, failed in rows:
        shape = {"kind": kind, "messaging_operation": operation}
        service = service or "unknown service"
        failed = failed or 0
        if traces.is_producer(shape):
            edge = topology.edge(topology.node("service", service), topology.node("topic", topic))
            edge.add(ORIGIN_SPANS, count)
            edge.errors += failed
        elif traces.is_consumer(shape):
            group_node = topology.node("group", group or f"({service})")
            group_node.synthetic = group_node.synthetic or not group
            for source, target in (
                (topology.node("topic", topic), group_node),
                (group_node, topology.node("service", service)),
            ):
                edge = topology.edge(source, target)
                edge.add(ORIGIN_SPANS, count)
                edge.errors += failed


def _add_assignments(topology: Topology, rows: Iterable[Any]) -> None:
    for cluster, group_id, state, status, total_lag, time_lag, sampled_at_ms, detail in rows:
        try:
            parsed = json.loads(detail)
        except ValueError:
            parsed = {}
        partitions = parsed.get("partitions") if isinstance(parsed, dict) else None
        members = parsed.get("members") if isinstance(parsed, dict) else None
        group = topology.node("group", group_id, cluster)
        group.group = {
            "state": state,
            "status": status,
            "total_lag": total_lag,
            "max_time_lag_s": time_lag,
            "sampled_at_ms": sampled_at_ms,
            "members": [_member_label(m) for m in (members or [])[:MAX_MEMBERS_SHOWN]
                        if isinstance(m, dict)],
        }  # fmt: skip
        owners: dict[str, set[str]] = {}
        for partition in partitions or []:
            if not isinstance(partition, dict) or not isinstance(partition.get("topic"), str):
                continue
            who = owners.setdefault(partition["topic"], set())
            if isinstance(partition.get("owner"), dict):
                who.add(_member_label(partition["owner"]))
        for topic_name, who in owners.items():
            topic = topology.node("topic", topic_name, cluster)
            edge = topology.edge(topic, group)
            edge.counts[ORIGIN_ASSIGNMENTS] = max(edge.counts.get(ORIGIN_ASSIGNMENTS, 0),
                                                  topic.records)  # fmt: skip
            edge.consumers |= set(sorted(who)[:MAX_MEMBERS_SHOWN])


def _member_label(member: dict[str, Any]) -> str:
    client = str(member.get("client_id") or member.get("member_id") or "?")[:100]
    host = str(member.get("host") or "").strip("/")[:100]
    return f"{client} @ {host}" if host else client


def _dead_letter_group(headers_json: str) -> str | None:
    try:
        headers = json.loads(headers_json)
    except ValueError:
        return None
    found = None
    for pair in headers if isinstance(headers, list) else []:
        if (
            isinstance(pair, list)
            and len(pair) == 2
            and isinstance(pair[0], str)
            and pair[0].lower() == DLT_GROUP_HEADER
            and isinstance(pair[1], str)
        ):
            found = pair[1]  # the last one wins, as Kafka's lastHeader
    return found  # fmt: skip


def _add_dead_letters(topology: Topology, rows: Iterable[Any]) -> None:
    for cluster, dlq_topic, original_topic, headers_json in rows:
        original = topology.node("topic", original_topic, cluster)
        dead_letter_topic = topology.node("topic", dlq_topic, cluster)
        group_name = _dead_letter_group(headers_json)
        if group_name:
            group = topology.node("group", group_name, cluster)
            blamed = [topology.edge(original, group)]
            source = group
        else:
            blamed = topology.edges_from((original.kind, original.name), "group")
            source = original
        for edge in blamed:
            edge.dead_letters += 1
            edge.add(ORIGIN_DEAD_LETTERS, 1)
        arrow = topology.edge(source, dead_letter_topic)
        arrow.add(ORIGIN_DEAD_LETTERS, 1)
        arrow.dead_letters += 1


def layers(topology: Topology) -> dict[NodeKey, int]:
    """Longest-path layers, left to right along the flow (Jaeger's deep dependency view).

    Back edges of cycles (a service that consumes from a topic it also feeds) are ignored;
    nodes without incoming edges start at layer 0.
    """
    outgoing: dict[NodeKey, list[NodeKey]] = {key: [] for key in topology.nodes}
    incoming: dict[NodeKey, int] = dict.fromkeys(topology.nodes, 0)
    for source, target in topology.edges:
        if source != target:
            outgoing[source].append(target)
            incoming[target] += 1
    order: list[NodeKey] = []
    state: dict[NodeKey, int] = {}  # 1 on the stack, 2 done
    for start in sorted(topology.nodes, key=lambda k: (incoming[k] > 0, k)):
        if start in state:
            continue
        stack = [(start, iter(outgoing[start]))]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                order.append(node)
                stack.pop()
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(outgoing[child])))
    layer = dict.fromkeys(topology.nodes, 0)
    position = {node: index for index, node in enumerate(reversed(order))}
    for node in reversed(order):  # topological order, back edges skipped
        for child in outgoing[node]:
            if position[child] > position[node]:
                layer[child] = max(layer[child], layer[node] + 1)
    return layer
