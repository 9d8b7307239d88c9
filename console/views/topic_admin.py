"""Topic administration: create a topic, and on a topic's settings page its configs
(defaults and overrides, sensitive values hidden) with edit, add partitions, delete
records before an offset, delete the topic. Admin role; each change is audited.

Pages: /clusters/{cluster}/new-topic, /clusters/{cluster}/topics/{topic}/settings and the
forms they post to. JSON twins under /api/clusters/{cluster}/topics. These routes are
listed before the topic page's (whose `{topic:path}` would take ".../settings" as a topic
name; a real topic name never holds a "/").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from typing_extensions import TypedDict

from collectors.config import ClusterConfig
from console.auth.roles import ADMIN
from console.operations import topics
from console.operations.configs import ConfigJson
from console.operations.fields import PlanError, topic_name, whole_number
from console.stores import audit
from console.views.operating import cluster_of, kafka_refusals
from console.web import urls
from console.web.endpoints import Call, Endpoint, Reply
from console.web.schema import BOOLEAN, INTEGER, STRING, Schema, p, shape

MAX_BODY = 256 * 1024


class TopicConfigsJson(TypedDict):
    cluster: str
    topic: str
    configs: list[ConfigJson]


class TopicChangeJson(TypedDict):
    cluster: str
    topic: str
    change: str
    detail: dict[str, Any]


def _cluster(call: Call) -> ClusterConfig:
    return cluster_of(call, call.path["cluster"], 404)


def settings_url(cluster: str, topic: str) -> str:
    return urls.topic(cluster, topic) + "/settings"


async def _fields(call: Call) -> dict[str, Any]:
    """The JSON body of the twin, or the form of the page."""
    if call.api:
        return await call.json_object(MAX_BODY)
    return dict(await call.request.form())


async def _change(
    call: Call,
    change: str,
    act: Callable[[ClusterConfig, str, dict[str, Any]], Awaitable[dict[str, Any]]],
    *,
    new_topic: bool = False,
) -> Reply:
    """Read the request, make the change in Kafka (its refusal a 400 in its words, any
    other failure a 502), write the audit row, answer the change or go to the settings."""
    cluster = _cluster(call)
    fields = await _fields(call)
    with kafka_refusals():
        name = topic_name(fields.get("name") if new_topic else call.path["topic"])
        detail = await act(cluster, name, fields)
    if not detail.get("validate_only"):
        await run_in_threadpool(
            audit.record, call.engine, call.actor, f"topic.{change}", f"{cluster.name}/{name}",
            detail, call.remote,
        )  # fmt: skip
    body = TopicChangeJson(cluster=cluster.name, topic=name, change=change, detail=detail)
    if change == "delete":
        return Reply(body, redirect=urls.cluster(cluster.name))
    if detail.get("validate_only"):
        page = {"cluster": cluster.name, "fields": fields, "verdict": "Kafka accepts it."}
        return Reply(body, page=page, template="topic_new.html")
    return Reply(body, status=201 if new_topic else 200,
                 redirect=settings_url(cluster.name, name))  # fmt: skip


async def settings_page(call: Call) -> Reply:
    cluster = _cluster(call)
    name = call.path["topic"]
    try:
        configs = await topics.configs(cluster, name)
    except PlanError as exc:  # no such topic
        raise HTTPException(404, str(exc)) from None
    except Exception as exc:
        raise HTTPException(502, f"Kafka: {type(exc).__name__}: {exc}") from None
    data = TopicConfigsJson(cluster=cluster.name, topic=name, configs=configs)
    page = {"overrides": "\n".join(f"{c['name']}={c['value'] or ''}" for c in configs
                                   if c["is_override"] and not c["sensitive"]),
            "topic_url": urls.topic(cluster.name, name)}  # fmt: skip
    return Reply(data, page=page)


async def new_topic_page(call: Call) -> Reply:
    cluster = _cluster(call)
    fields = {"name": "", "partitions": "3", "replication_factor": "1", "configs": ""}
    return Reply({}, page={"cluster": cluster.name, "fields": fields, "verdict": None})


async def create_topic(call: Call) -> Reply:
    async def act(cluster: ClusterConfig, name: str, fields: dict[str, Any]) -> dict[str, Any]:
        partitions = whole_number(fields.get("partitions", 1), "partitions", 1,
                                         topics.MAX_PARTITIONS)  # fmt: skip
        replication = whole_number(fields.get("replication_factor", 1),
                                          "replication_factor", 1, 100)  # fmt: skip
        configs = topics.parse_configs(fields.get("configs"))
        validate_only = fields.get("validate_only") in (True, "1", "on", "true")
        await topics.create(cluster, name, partitions, replication, configs, validate_only)
        return {"partitions": partitions, "replication_factor": replication,
                "configs": configs, "validate_only": validate_only}  # fmt: skip

    return await _change(call, "create", act, new_topic=True)


async def alter_configs(call: Call) -> Reply:
    async def act(cluster: ClusterConfig, name: str, fields: dict[str, Any]) -> dict[str, Any]:
        changes = topics.parse_configs(fields.get("configs"))
        # The form holds every override: one missing from it is removed.
        before = await topics.alter(cluster, name, changes, others="keep" if call.api else "remove")
        after = {k: v for k, v in before.items() if k not in changes or changes[k] is not None}
        after.update({k: v for k, v in changes.items() if v is not None})
        return {"changes": {k: {"before": before.get(k), "after": after.get(k)}
                            for k in before.keys() | after.keys()
                            if before.get(k) != after.get(k)}}  # fmt: skip

    return await _change(call, "configs", act)


async def add_partitions(call: Call) -> Reply:
    async def act(cluster: ClusterConfig, name: str, fields: dict[str, Any]) -> dict[str, Any]:
        total = whole_number(fields.get("total"), "total", 1, topics.MAX_PARTITIONS)
        before = await topics.add_partitions(cluster, name, total)
        return {"before": before, "after": total}

    return await _change(call, "partitions", act)


async def delete_records(call: Call) -> Reply:
    async def act(cluster: ClusterConfig, name: str, fields: dict[str, Any]) -> dict[str, Any]:
        partition = whole_number(fields.get("partition"), "partition", 0, 2**31 - 1)
        before = whole_number(fields.get("before"), "before", 0, 2**63 - 1)
        start = await topics.delete_records(cluster, name, partition, before)
        return {"partition": partition, "before_offset": before, "log_start_after": start}

    return await _change(call, "delete_records", act)


async def delete_topic(call: Call) -> Reply:
    async def act(cluster: ClusterConfig, name: str, fields: dict[str, Any]) -> dict[str, Any]:
        if not call.api and str(fields.get("confirm") or "").strip() != name:
            raise PlanError(f"type the topic's name, {name}, to delete it")
        await topics.delete(cluster, name)
        return {}

    return await _change(call, "delete", act)


CLUSTER = p("cluster", STRING, "the cluster's name")
TOPIC = p("topic", STRING, "the topic's name")
NEW_TOPIC: Schema = {
    "type": "object",
    "properties": {
        "name": STRING,
        "partitions": INTEGER,
        "replication_factor": INTEGER,
        "configs": {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
        "validate_only": BOOLEAN,
    },
    "required": ["name"],
}
CONFIG_CHANGES: Schema = shape(
    configs={"type": "object", "additionalProperties": {"type": ["string", "null"]},
             "description": "name: value to set, name: null to remove the override"},
)  # fmt: skip
BASE = "/clusters/{cluster}/topics/{topic}"

ENDPOINTS = [
    Endpoint(
        settings_page, ADMIN, path=BASE + "/settings", api="/api" + BASE + "/configs",
        template="topic_settings.html",
        summary="A topic's configs: defaults and overrides, sensitive values hidden.",
        params=(CLUSTER, TOPIC), response=TopicConfigsJson, errors=(404, 502),
    ),
    Endpoint(
        alter_configs, ADMIN, path=BASE + "/configs", api="/api" + BASE + "/configs",
        method="POST", summary="Set or remove config overrides (the others are kept).",
        params=(CLUSTER, TOPIC), body=CONFIG_CHANGES, response=TopicChangeJson,
        errors=(400, 404, 413, 502),
    ),
    Endpoint(
        add_partitions, ADMIN, path=BASE + "/partitions", api="/api" + BASE + "/partitions",
        method="POST", summary="Grow the topic to `total` partitions.",
        params=(CLUSTER, TOPIC), body=shape(total=INTEGER), response=TopicChangeJson,
        errors=(400, 404, 413, 502),
    ),
    Endpoint(
        delete_records, ADMIN, path=BASE + "/delete-records",
        api="/api" + BASE + "/delete-records", method="POST",
        summary="Delete a partition's records before an offset.",
        params=(CLUSTER, TOPIC), body=shape(partition=INTEGER, before=INTEGER),
        response=TopicChangeJson, errors=(400, 404, 413, 502),
    ),
    Endpoint(
        delete_topic, ADMIN, path=BASE + "/delete", method="POST", api="/api" + BASE,
        api_method="DELETE", summary="Delete a topic.", params=(CLUSTER, TOPIC),
        response=TopicChangeJson, errors=(400, 404, 502),
    ),
    Endpoint(new_topic_page, ADMIN, path="/clusters/{cluster}/new-topic",
             template="topic_new.html", params=(CLUSTER,)),
    Endpoint(
        create_topic, ADMIN, path="/clusters/{cluster}/new-topic",
        api="/api/clusters/{cluster}/topics", method="POST",
        summary="Create a topic (validate_only: the broker's verdict, nothing made).",
        params=(CLUSTER,), body=NEW_TOPIC, status=201, response=TopicChangeJson,
        errors=(400, 404, 413, 502),
    ),
]  # fmt: skip
