"""Kafka Connect: every configured Connect cluster's connectors with their state, tasks and
workers; a connector's page (failed tasks' traces, config with secrets hidden, its topics
and dead-letter topic); restart, pause, resume, stop (operators); config edit, new
connector and delete (admins), each audited with the config before and after.

Pages: /connect (filter by cluster, text, state), /connect/{cluster}/{connect}/connectors/
{name}, /connect/{cluster}/{connect}/config?connector= (edit, or new without a name),
/connect/{cluster}/{connect}/plugins. The forms post to .../action, .../delete and
.../config with the connector's name in the body (a name may hold characters a path
segment cannot). JSON twins under /api/connect.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from typing_extensions import TypedDict

from collectors.config import ClusterConfig
from console.auth.roles import ADMIN, OPERATOR, VIEWER
from console.operations import connectors
from console.operations.connect_client import ConnectError
from console.operations.connectors import ConfigRefused, ConnectClusterJson, ConnectorJson
from console.operations.fields import PlanError
from console.stores import audit
from console.views.operating import cluster_of
from console.web import urls
from console.web.endpoints import Call, Endpoint, Reply
from console.web.schema import BOOLEAN, INTEGER, STRING, Schema, enum, p, q, text

MAX_BODY = 512 * 1024


class ConnectClustersJson(TypedDict):
    clusters: list[ConnectClusterRowsJson]


class ConnectClusterRowsJson(TypedDict):
    cluster: str  # the Kafka cluster
    connect: list[ConnectClusterJson]


class ConnectorActionJson(TypedDict):
    cluster: str
    connect: str
    connector: str
    action: str
    task: int | None
    before: ConnectorJson
    after: ConnectorJson | None  # None once deleted


class ConnectorConfigJson(TypedDict):
    cluster: str
    connect: str
    connector: str
    created: bool
    config: dict[str, str]  # secrets hidden


class PluginsJson(TypedDict):
    cluster: str
    connect: str
    plugins: list[dict[str, str]]


@contextlib.contextmanager
def connect_refusals() -> Iterator[None]:
    """Bad input or Connect's refusal in its words: 400 (404 for an unknown connector, 409
    while Connect rebalances); Connect unreachable or failing: 502."""
    try:
        yield
    except PlanError as exc:
        raise HTTPException(400, str(exc)) from None
    except ConnectError as exc:
        status = exc.status if exc.status in (400, 404, 409) else 502
        raise HTTPException(status, exc.message) from None


def _cluster(call: Call) -> ClusterConfig:
    """The Kafka cluster the path names, and (when it names one) its Connect cluster: 404
    when either is not configured."""
    cluster = cluster_of(call, call.path["cluster"], 404)
    connect = call.path.get("connect")
    if connect is not None and connect not in (c.name for c in cluster.connect):
        raise HTTPException(404, f"connect: no Kafka Connect {connect!r} is configured for "
                                 f"cluster {cluster.name!r}")  # fmt: skip
    return cluster


def _matches(row: ConnectorJson, text_filter: str, state: str) -> bool:
    if state == "attention" and not connectors.needs_attention(row):
        return False
    if state and state != "attention" and row["state"] != state:
        return False
    needle = text_filter.lower()
    return not needle or any(
        needle in value.lower()
        for value in (row["name"], row["connector_class"], *row["topics"], row["dlq_topic"] or "")
    )


async def connect_page(call: Call) -> Reply:
    wanted = call.query.get("cluster", "")
    text_filter = call.query.get("q", "").strip()[:200]
    state = call.query.get("state", "")
    if state and state not in (*connectors.STATES, "attention"):
        raise HTTPException(400, f"state: one of {', '.join(connectors.STATES)} or attention")
    shown: list[ConnectClusterRowsJson] = []
    for cluster in call.settings.clusters:
        if wanted and cluster.name != wanted:
            continue
        found = await connectors.connect_clusters(cluster)
        for connect in found:
            connect["connectors"] = [
                row for row in connect["connectors"] if _matches(row, text_filter, state)
            ]
        shown.append(ConnectClusterRowsJson(cluster=cluster.name, connect=found))
    if wanted and not shown:
        raise HTTPException(404, f"cluster: no cluster {wanted!r} is configured")
    page = {"filters": {"cluster": wanted, "q": text_filter, "state": state},
            "states": connectors.STATES,
            "cluster_names": [cluster.name for cluster in call.settings.clusters]}  # fmt: skip
    return Reply(ConnectClustersJson(clusters=shown), page=page)


async def connector_page(call: Call) -> Reply:
    cluster = _cluster(call)
    with connect_refusals():
        detail = await connectors.connector_detail(
            cluster, call.path["connect"], call.path["connector"]
        )
    return Reply(detail)


async def _form_or_body(call: Call) -> dict[str, Any]:
    if call.api:
        return await call.json_object(MAX_BODY)
    return dict(await call.request.form())


async def _audit(call: Call, action: str, target: str, detail: dict[str, Any]) -> None:
    await run_in_threadpool(
        audit.record, call.engine, call.actor, action, target, detail, call.remote
    )


def _task(raw: Any) -> int | None:
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise HTTPException(400, "task: a task number") from None


async def _act(call: Call, fields: dict[str, Any], action: str) -> Reply:
    cluster, connect = _cluster(call), call.path["connect"]
    name = str(fields.get("connector") or "")
    task = _task(fields.get("task"))
    with connect_refusals():
        name = connectors.connector_name(name)
        if action == "delete" and str(fields.get("confirm") or "").strip() != name:
            raise PlanError(f"type the connector's name, {name}, to delete it")
        before, after = await connectors.act(cluster, connect, name, action, task)
    await _audit(call, f"connector.{action}", f"{cluster.name}/{connect}/{name}",
                 {"task": task, "state_before": before["state"],
                  "state_after": after["state"] if after else None})  # fmt: skip
    body = ConnectorActionJson(cluster=cluster.name, connect=connect, connector=name,
                               action=action, task=task, before=before, after=after)  # fmt: skip
    back = (urls.connector(cluster.name, connect, name) if after is not None
            else urls.connectors(cluster=cluster.name))  # fmt: skip
    return Reply(body, redirect=back)


async def connector_action(call: Call) -> Reply:
    fields = await _form_or_body(call)
    action = str(fields.get("action") or "")
    if action == "delete":
        raise HTTPException(400, "action: deleting has its own route (admins): .../delete")
    return await _act(call, fields, action)


async def delete_connector(call: Call) -> Reply:
    return await _act(call, await _form_or_body(call), "delete")


async def config_page(call: Call) -> Reply:
    cluster, connect = _cluster(call), call.path["connect"]
    name = call.query.get("connector", "")
    plugins: list[dict[str, str]] = []
    config: dict[str, str] = {}
    with connect_refusals():
        connectors.connect_of(cluster, connect)
        if name:
            detail = await connectors.connector_detail(cluster, connect, name)
            config = {entry["name"]: entry["value"] for entry in detail["config"]}
        else:
            plugins = await connectors.plugins(cluster, connect)
    fields = {"connector": name, "config": json.dumps(config, indent=2) if config else ""}
    return Reply({}, page=_config_form(cluster.name, connect, name, fields, plugins, None))


def _config_form(cluster: str, connect: str, name: str, fields: dict[str, Any],
                 plugins: list[dict[str, str]], errors: dict[str, list[str]] | None,
                 ) -> dict[str, Any]:  # fmt: skip
    return {"cluster": cluster, "connect": connect, "editing": name, "fields": fields,
            "plugins": plugins, "errors": errors, "hidden": connectors.HIDDEN}  # fmt: skip


async def save_config(call: Call) -> Reply:
    """Connect validates first; on the page its errors come back beside the form, per key."""
    cluster, connect = _cluster(call), call.path["connect"]
    fields = await _form_or_body(call)
    create = fields.get("create") in (True, "1", "on", "true")
    name = str(fields.get("connector") or "")
    errors: dict[str, list[str]] | None = None
    status = 400
    try:
        with connect_refusals():
            try:
                before, after = await connectors.change_config(
                    cluster, connect, name, fields.get("config"), create=create
                )
            except ConfigRefused as exc:
                if call.api:
                    raise
                errors = exc.errors
    except HTTPException as exc:
        if call.api:
            raise
        errors, status = {"": [str(exc.detail)]}, exc.status_code
    if errors is not None:
        form = {"connector": name, "config": str(fields.get("config") or "")}
        page = _config_form(cluster.name, connect, "" if create else name, form, [], errors)
        return Reply({}, page=page, status=status, template="connect_config.html")
    action = "connector.create" if create else "connector.config"
    target = f"{cluster.name}/{connect}/{name}"
    await _audit(call, action, target, {"before": before, "after": after})
    body = ConnectorConfigJson(cluster=cluster.name, connect=connect, connector=name,
                               created=create, config=after)  # fmt: skip
    return Reply(body, status=201 if create else 200,
                 redirect=urls.connector(cluster.name, connect, name))  # fmt: skip


async def plugins_page(call: Call) -> Reply:
    cluster, connect = _cluster(call), call.path["connect"]
    with connect_refusals():
        found = await connectors.plugins(cluster, connect)
    return Reply(PluginsJson(cluster=cluster.name, connect=connect, plugins=found))


CLUSTER = p("cluster", STRING, "the Kafka cluster's name")
CONNECT = p("connect", STRING, "the Connect cluster's name (clusters.<name>.connect)")
ACTION: Schema = {
    "type": "object",
    "properties": {
        "connector": STRING,
        "action": enum(*(a for a in connectors.ACTIONS if a != "delete")),
        "task": {**INTEGER, "description": "the task, for restart-task"},
    },
    "required": ["connector", "action"],
}
DELETE: Schema = {
    "type": "object",
    "properties": {"connector": STRING, "confirm": {**STRING, "description": "the name again"}},
    "required": ["connector", "confirm"],
}
CONFIG: Schema = {
    "type": "object",
    "properties": {
        "connector": STRING,
        "config": {"type": "object", "additionalProperties": {"type": ["string", "number",
                   "boolean"]}, "description": f"{connectors.HIDDEN!r} keeps a hidden value"},
        "create": {**BOOLEAN, "description": "a new connector (refused if the name exists)"},
    },
    "required": ["connector", "config"],
}  # fmt: skip
BASE = "/connect/{cluster}/{connect}"

ENDPOINTS = [
    Endpoint(
        connect_page, VIEWER, path="/connect", api="/api/connect", template="connect.html",
        summary="Every Kafka Connect cluster's connectors with their state and tasks.",
        params=(q("cluster", STRING, "only this Kafka cluster"),
                q("q", text(200), "name, class, topic or dead-letter topic contains this"),
                q("state", enum(*connectors.STATES, "attention"),
                  "this state; attention: failed, or with a failed task")),
        response=ConnectClustersJson, errors=(400, 404),
    ),
    Endpoint(
        connector_page, VIEWER, path=BASE + "/connectors/{connector:text}",
        api="/api" + BASE + "/connectors/{connector:text}", template="connector.html",
        summary="A connector: state, tasks (a failed one's trace), config (secrets hidden), "
                "its topics.",
        params=(CLUSTER, CONNECT, p("connector", STRING, "the connector's name")),
        response=connectors.ConnectorDetailJson, errors=(400, 404, 409, 502),
    ),
    Endpoint(
        connector_action, OPERATOR, path=BASE + "/action", api="/api" + BASE + "/action",
        method="POST", summary="Restart (the connector, its failed tasks, all, one task), "
        "pause, resume or stop a connector.", params=(CLUSTER, CONNECT), body=ACTION,
        response=ConnectorActionJson, errors=(400, 404, 409, 413, 502),
    ),
    Endpoint(
        delete_connector, ADMIN, path=BASE + "/delete", api="/api" + BASE + "/delete",
        method="POST", summary="Delete a connector (its name typed again).",
        params=(CLUSTER, CONNECT), body=DELETE, response=ConnectorActionJson,
        errors=(400, 404, 409, 413, 502),
    ),
    Endpoint(
        config_page, ADMIN, path=BASE + "/config", template="connect_config.html",
        params=(CLUSTER, CONNECT, q("connector", STRING, "edit this one; none: a new one")),
    ),
    Endpoint(
        save_config, ADMIN, path=BASE + "/config", api="/api" + BASE + "/config",
        method="POST", summary="Create a connector or replace its config, after Kafka "
        "Connect's own validation accepts it.", params=(CLUSTER, CONNECT), body=CONFIG,
        response=ConnectorConfigJson, status=200, errors=(400, 404, 409, 413, 502),
    ),
    Endpoint(
        plugins_page, VIEWER, path=BASE + "/plugins", api="/api" + BASE + "/plugins",
        template="connect_plugins.html", summary="The connector plugins a Connect cluster has.",
        params=(CLUSTER, CONNECT), response=PluginsJson, errors=(404, 502),
    ),
]  # fmt: skip
