"""/metrics: consumer lag in Prometheus text format, with kafka-lag-exporter's names.

Dashboards built for kafka-lag-exporter keep working: the same metric names and labels
(`cluster_name`, `group`, `topic`, `partition`, `member_host`, `consumer_id`, `client_id`).
Values are the lag sampler's latest look, read from the index, so a console process
serves them too. eventscope adds `eventscope_consumergroup_status` (1 for the current
status of each group) and tells how each time lag was obtained in
`eventscope_consumergroup_lag_seconds_method`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from console.auth.roles import VIEWER
from console.stores import groups as groups_store
from console.web.endpoints import Call, Endpoint

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

HELP = {
    "kafka_consumergroup_group_offset": "Last committed offset of a group on a partition.",
    "kafka_consumergroup_group_lag": "Offset lag of a group on a partition.",
    "kafka_consumergroup_group_lag_seconds": "Time lag of a group on a partition, in seconds.",
    "kafka_consumergroup_group_max_lag": "Largest offset lag of a group over its partitions.",
    "kafka_consumergroup_group_max_lag_seconds": "Largest time lag of a group, in seconds.",
    "kafka_consumergroup_group_sum_lag": "Sum of the offset lag of a group.",
    "kafka_consumergroup_group_topic_sum_lag": "Sum of the offset lag of a group on a topic.",
    "kafka_partition_latest_offset": "End offset of a partition.",
    "kafka_partition_earliest_offset": "Earliest offset of a partition.",
    "eventscope_consumergroup_status": "1 for the current Burrow-style status of a group.",
    "eventscope_consumergroup_lag_seconds_method": "1 for how a partition's time lag was "
    "obtained: index (exact), interpolated or caught-up.",
}


def escape_label(value: object) -> str:
    text = str(value)[:1000]
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Iterable[tuple[str, object]]) -> str:
    return "{" + ",".join(f'{name}="{escape_label(value)}"' for name, value in pairs) + "}"


def _number(value: float | int) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return repr(round(value, 3))
    return str(value)


def render_metrics(rows: Iterable[dict[str, Any]]) -> str:
    series: dict[str, list[str]] = {name: [] for name in HELP}

    def add(name: str, labels: list[tuple[str, object]], value: float | int) -> None:
        series[name].append(f"{name}{_labels(labels)} {_number(value)}")

    partitions_seen: set[tuple[str, str, int]] = set()
    for row in rows:
        cluster, group = row["cluster"], row["group_id"]
        try:
            detail = json.loads(row["detail"])
        except ValueError:
            continue
        partitions = [p for p in detail.get("partitions", []) if isinstance(p, dict)]
        simple = "true" if not detail.get("members") else "false"
        base = [("cluster_name", cluster), ("group", group)]
        add("kafka_consumergroup_group_max_lag", [*base, ("is_simple_consumer", simple)],
            row["max_lag"])  # fmt: skip
        max_seconds = row["max_time_lag_s"]
        add("kafka_consumergroup_group_max_lag_seconds", [*base, ("is_simple_consumer", simple)],
            math.nan if max_seconds is None else float(max_seconds))  # fmt: skip
        add("kafka_consumergroup_group_sum_lag", base, row["total_lag"])
        add("eventscope_consumergroup_status", [*base, ("status", row["status"])], 1)
        topic_sums: dict[str, int] = {}
        for p in partitions:
            topic, number = str(p.get("topic")), p.get("partition")
            if not isinstance(number, int):
                continue
            owner = p.get("owner") or {}
            labels = [
                *base, ("topic", topic), ("partition", number),
                ("member_host", owner.get("host", "unknown")),
                ("consumer_id", owner.get("member_id", "unknown")),
                ("client_id", owner.get("client_id", "unknown")),
            ]  # fmt: skip
            lag = p.get("lag") or 0
            add("kafka_consumergroup_group_offset", labels, p.get("committed_offset") or 0)
            add("kafka_consumergroup_group_lag", labels, lag)
            seconds = p.get("time_lag_s")
            add("kafka_consumergroup_group_lag_seconds", labels,
                math.nan if seconds is None else float(seconds))  # fmt: skip
            if p.get("time_lag_method"):
                add("eventscope_consumergroup_lag_seconds_method",
                    [*base, ("topic", topic), ("partition", number),
                     ("method", p["time_lag_method"])], 1)  # fmt: skip
            topic_sums[topic] = topic_sums.get(topic, 0) + lag
            if (cluster, topic, number) not in partitions_seen:
                partitions_seen.add((cluster, topic, number))
                where = [("cluster_name", cluster), ("topic", topic), ("partition", number)]
                if isinstance(p.get("end_offset"), int):
                    add("kafka_partition_latest_offset", where, p["end_offset"])
                if isinstance(p.get("begin_offset"), int):
                    add("kafka_partition_earliest_offset", where, p["begin_offset"])
        for topic, total in sorted(topic_sums.items()):
            add("kafka_consumergroup_group_topic_sum_lag", [*base, ("topic", topic)], total)
    lines: list[str] = []
    for name, samples in series.items():
        lines.append(f"# HELP {name} {HELP[name]}")
        lines.append(f"# TYPE {name} gauge")
        lines.extend(samples)
    return "\n".join(lines) + "\n"


async def metrics(call: Call) -> Response:
    engine = call.engine
    rows = await run_in_threadpool(groups_store.metric_rows, engine)
    body = await run_in_threadpool(render_metrics, rows)
    return Response(body, media_type=CONTENT_TYPE)


ENDPOINTS = [Endpoint(metrics, VIEWER, path="/metrics")]
