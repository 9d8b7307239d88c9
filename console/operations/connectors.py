"""Kafka Connect as the console shows and changes it: connectors with their state, tasks,
workers, topics and dead-letter topic; configs with secrets hidden; edits checked by
Connect's own validation before anything changes.

The rows are built from what `ConnectClient` answers (pure functions, unit tested); the
async functions below put the calls together for the views.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from typing import Any

from typing_extensions import TypedDict

from collectors.config import ClusterConfig, ConnectConfig
from console.operations.connect_client import ConnectClient, ConnectError
from console.operations.fields import PlanError

HIDDEN = "[hidden]"
MAX_TRACE_CHARS = 32 * 1024
MAX_CONFIG_KEYS = 500
MAX_VALUE_CHARS = 64 * 1024
STATES = ("RUNNING", "PAUSED", "STOPPED", "FAILED", "UNASSIGNED", "RESTARTING")
DLQ_TOPIC_KEY = "errors.deadletterqueue.topic.name"

# Config keys whose values are credentials. Connect returns them in clear unless a config
# provider holds them; the console never shows or records them.
_SECRET_KEY = re.compile(
    r"password|passwd|secret|token|credential|jaas|api[._-]?key|private[._-]?key|access[._-]?key",
    re.IGNORECASE,
)


class TaskJson(TypedDict):
    id: int
    state: str
    worker_id: str
    trace: str | None


class ConnectorJson(TypedDict):
    connect: str  # the Connect cluster's name in eventscope's configuration
    name: str
    type: str  # source or sink
    connector_class: str
    state: str
    worker_id: str
    trace: str | None
    tasks: list[TaskJson]
    failed_tasks: int
    topics: list[str]  # what the config names (topics, topic, topics.regex as written)
    dlq_topic: str | None


class ConnectClusterJson(TypedDict):
    name: str
    url: str
    version: str | None
    error: str | None  # unreachable, or refused
    connectors: list[ConnectorJson]


class ConfigEntryJson(TypedDict):
    name: str
    value: str
    hidden: bool


class ConnectorDetailJson(TypedDict):
    cluster: str
    connector: ConnectorJson
    config: list[ConfigEntryJson]
    active_topics: list[str]  # what the worker says the connector used (KIP-558)


# --- rows from Connect's answers --------------------------------------------------------


def is_secret(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def masked(config: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): HIDDEN if is_secret(str(k)) else str(v) for k, v in config.items()}


def config_entries(config: Mapping[str, Any]) -> list[ConfigEntryJson]:
    return [
        ConfigEntryJson(name=k, value=HIDDEN if is_secret(k) else str(v), hidden=is_secret(k))
        for k, v in sorted((str(k), v) for k, v in config.items())
    ]


def _trace(value: Any) -> str | None:
    return str(value)[:MAX_TRACE_CHARS] if value else None


def _state(value: Any) -> str:
    text = str(value or "UNASSIGNED").upper()
    return text if text in STATES else "UNASSIGNED"


def config_topics(config: Mapping[str, Any]) -> list[str]:
    """The topics a config names: a sink's `topics` list or `topics.regex`, a source's
    `topic` (FileStreamSource and many others)."""
    names: list[str] = []
    for key in ("topics", "topic"):
        names += [name.strip() for name in str(config.get(key) or "").split(",") if name.strip()]
    if config.get("topics.regex"):
        names.append(f"/{config['topics.regex']}/")
    return names


def connector_row(connect: str, name: str, info: Mapping[str, Any],
                  status: Mapping[str, Any]) -> ConnectorJson:  # fmt: skip
    """One connector from its `info` and `status` (as `GET /connectors?expand=...` gives)."""
    config = info.get("config") if isinstance(info.get("config"), Mapping) else {}
    assert isinstance(config, Mapping)
    own = status.get("connector") if isinstance(status.get("connector"), Mapping) else {}
    assert isinstance(own, Mapping)
    tasks = []
    for task in status.get("tasks") or []:
        if isinstance(task, Mapping) and isinstance(task.get("id"), int):
            tasks.append(TaskJson(id=task["id"], state=_state(task.get("state")),
                                  worker_id=str(task.get("worker_id") or ""),
                                  trace=_trace(task.get("trace"))))  # fmt: skip
    tasks.sort(key=lambda task: task["id"])
    kind = str(info.get("type") or status.get("type") or "unknown")
    return ConnectorJson(
        connect=connect, name=name, type=kind,
        connector_class=str(config.get("connector.class") or ""),
        state=_state(own.get("state")), worker_id=str(own.get("worker_id") or ""),
        trace=_trace(own.get("trace")), tasks=tasks,
        failed_tasks=sum(1 for task in tasks if task["state"] == "FAILED"),
        topics=config_topics(config), dlq_topic=str(config.get(DLQ_TOPIC_KEY) or "") or None,
    )  # fmt: skip


def needs_attention(connector: ConnectorJson) -> bool:
    return connector["state"] == "FAILED" or connector["failed_tasks"] > 0


# --- edits ------------------------------------------------------------------------------


def parse_config(text: Any, name: str, current: Mapping[str, Any] | None) -> dict[str, str]:
    """The config a form or API gives (a JSON object of strings, numbers or booleans), with
    every "[hidden]" value replaced by the value Connect holds now; refused in words when
    it is not an object, names another connector, or keeps a secret that does not exist."""
    if isinstance(text, str):
        try:
            body = json.loads(text)
        except ValueError as exc:
            raise PlanError(f"config: not JSON ({exc})") from None
    else:
        body = text
    if not isinstance(body, Mapping) or not body:
        raise PlanError('config: give a JSON object such as {"connector.class": "...", ...}')
    if len(body) > MAX_CONFIG_KEYS:
        raise PlanError(f"config: at most {MAX_CONFIG_KEYS} keys")
    config: dict[str, str] = {}
    for key, value in body.items():
        if not isinstance(key, str) or not key.strip():
            raise PlanError("config: every key must be a non-empty text")
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, int | float):
            value = str(value)
        if not isinstance(value, str):
            raise PlanError(f"config: {key!r} must be a text, number or boolean")
        if len(value) > MAX_VALUE_CHARS:
            raise PlanError(f"config: {key!r} is over {MAX_VALUE_CHARS} characters")
        if value == HIDDEN:
            if current is None or key not in current:
                raise PlanError(f"config: {key!r} is hidden but has no current value; give it")
            value = str(current[key])
        config[key] = value
    if config.setdefault("name", name) != name:
        raise PlanError(f"config: 'name' is {config['name']!r}, not the connector's {name!r}")
    if not config.get("connector.class"):
        raise PlanError("config: 'connector.class' is missing")
    return config


def validation_errors(answer: Mapping[str, Any]) -> dict[str, list[str]]:
    """Connect's validation answer as {key: [its errors]} (empty when it accepts)."""
    errors: dict[str, list[str]] = {}
    for item in answer.get("configs") or []:
        value = item.get("value") if isinstance(item, Mapping) else None
        if isinstance(value, Mapping) and value.get("errors"):
            errors[str(value.get("name"))] = [str(e)[:1000] for e in value["errors"]][:10]
    if answer.get("error_count") and not errors:
        errors["(config)"] = [f"Connect reports {answer['error_count']} error(s)"]
    return errors


def refusal(errors: Mapping[str, list[str]]) -> str:
    lines = "; ".join(f"{key}: {' '.join(found)}" for key, found in errors.items())
    return f"Kafka Connect's validation refused the config, nothing changed: {lines}"


# --- calls ------------------------------------------------------------------------------


def connect_of(cluster: ClusterConfig, name: str) -> ConnectConfig:
    try:
        return cluster.connect_cluster(name)
    except KeyError:
        raise PlanError(
            f"no Kafka Connect cluster {name!r} is configured for {cluster.name!r}"
        ) from None


async def connect_cluster(config: ConnectConfig) -> ConnectClusterJson:
    """One Connect cluster with every connector; unreachable is an `error`, not a raise."""
    found = ConnectClusterJson(name=config.name, url=config.url, version=None, error=None,
                               connectors=[])  # fmt: skip
    try:
        async with ConnectClient(config) as client:
            worker = await client.worker()
            found["version"] = str(worker.get("version") or "") or None
            expanded = await client.connectors()
    except ConnectError as exc:
        found["error"] = exc.message
        return found
    for name, item in sorted(expanded.items()):
        info = item.get("info") if isinstance(item.get("info"), Mapping) else {}
        status = item.get("status") if isinstance(item.get("status"), Mapping) else {}
        found["connectors"].append(connector_row(config.name, name, info or {}, status or {}))
    return found


async def connect_clusters(cluster: ClusterConfig) -> list[ConnectClusterJson]:
    return list(await asyncio.gather(*(connect_cluster(c) for c in cluster.connect)))


async def connector_detail(cluster: ClusterConfig, connect: str, name: str) -> ConnectorDetailJson:
    config = connect_of(cluster, connect)
    async with ConnectClient(config) as client:
        info, status = await asyncio.gather(client.info(name), client.status(name))
        active = await client.topics(name)
    row = connector_row(connect, name, info, status)
    raw = info.get("config") if isinstance(info.get("config"), Mapping) else {}
    return ConnectorDetailJson(cluster=cluster.name, connector=row,
                               config=config_entries(raw or {}), active_topics=active)  # fmt: skip


# --- actions ----------------------------------------------------------------------------

ACTIONS = ("restart", "restart-failed", "restart-all", "restart-task", "pause", "resume", "stop",
           "delete")  # fmt: skip
_NAME = re.compile(r"[^\x00-\x1f\x7f/\\]{1,200}")


class ConfigRefused(PlanError):
    """Connect's validation found errors: nothing was changed; `errors` says where."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(refusal(errors))
        self.errors = errors


def connector_name(value: Any) -> str:
    name = str(value or "").strip()
    if not _NAME.fullmatch(name):
        raise PlanError("name: 1-200 characters, no '/', '\\' or control characters")
    return name


async def act(
    cluster: ClusterConfig, connect: str, name: str, action: str, task: int | None = None
) -> tuple[ConnectorJson, ConnectorJson | None]:
    """Take `action` on the connector; return its row before and after (None once deleted).
    Connect answers at once; a restart shows as RESTARTING or the old state for a moment."""
    if action not in ACTIONS:
        raise PlanError(f"action: one of {', '.join(ACTIONS)}")
    config = connect_of(cluster, connect)
    async with ConnectClient(config) as client:
        before = await _row(client, connect, name)
        if action == "restart-task":
            known = [t["id"] for t in before["tasks"]]
            if task is None or task not in known:
                raise PlanError(f"task: {name!r} has tasks {known or 'none'}; got {task}")
            await client.restart_task(name, task)
        elif action.startswith("restart"):
            await client.restart(name, include_tasks=action != "restart",
                                 only_failed=action == "restart-failed")  # fmt: skip
        elif action == "delete":
            await client.delete(name)
            return before, None
        else:
            await getattr(client, action)(name)
        return before, await _row(client, connect, name)


async def _row(client: ConnectClient, connect: str, name: str) -> ConnectorJson:
    info, status = await asyncio.gather(client.info(name), client.status(name))
    return connector_row(connect, name, info, status)


async def change_config(
    cluster: ClusterConfig, connect: str, name: str, raw: Any, *, create: bool
) -> tuple[dict[str, str] | None, dict[str, str]]:
    """Validate with Connect, then create the connector or replace its config. Returns the
    config before (None when created) and after, secrets hidden, for the audit."""
    name = connector_name(name)
    config = connect_of(cluster, connect)
    async with ConnectClient(config) as client:
        current: dict[str, Any] | None = None
        try:
            info = await client.info(name)
            found = info.get("config")
            current = dict(found) if isinstance(found, Mapping) else {}
        except ConnectError as exc:
            if exc.status != 404:
                raise
        if create and current is not None:
            raise PlanError(f"name: a connector {name!r} exists already on {connect!r}")
        if not create and current is None:
            raise PlanError(f"no connector {name!r} on {connect!r}")
        wanted = parse_config(raw, name, current)
        errors = validation_errors(await client.validate(wanted["connector.class"], wanted))
        if errors:
            raise ConfigRefused(errors)
        await client.put_config(name, wanted)
    return (masked(current) if current is not None else None), masked(wanted)


async def plugins(cluster: ClusterConfig, connect: str) -> list[dict[str, str]]:
    async with ConnectClient(connect_of(cluster, connect)) as client:
        found = await client.plugins()
    return [{"class": str(p.get("class") or ""), "type": str(p.get("type") or ""),
             "version": str(p.get("version") or "")} for p in found]  # fmt: skip
