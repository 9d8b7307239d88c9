"""Every link the console builds, one function per kind of page.

Path segments are quoted whole (a consumer group may hold '/', '?' or a line break),
query strings are encoded, and `api=True` gives the JSON twin's address. Views put links
in their data and templates call these through the `urls` global: no template slices or
concatenates a path.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, urlencode


def _segment(value: object) -> str:
    return quote(str(value), safe="")


def _path(*parts: object, api: bool = False) -> str:
    return ("/api" if api else "") + "".join(f"/{_segment(part)}" for part in parts)


def _with_query(path: str, query: Mapping[str, object | None]) -> str:
    present = {name: str(value) for name, value in query.items() if value not in (None, "")}
    return f"{path}?{urlencode(present)}" if present else path


def cluster(name: str, *, api: bool = False) -> str:
    return _path("clusters", name, api=api)


def brokers(cluster: str, *, api: bool = False) -> str:
    return _path("clusters", cluster, "brokers", api=api)


def broker(cluster: str, broker_id: int, *, api: bool = False, **query: object | None) -> str:
    return _with_query(_path("clusters", cluster, "brokers", broker_id, api=api), query)


def topic(cluster: str, name: str, *, api: bool = False) -> str:
    return _path("clusters", cluster, "topics", name, api=api)


def event(cluster: str, topic: str, partition: int, offset: int, *, api: bool = False) -> str:
    return _path("events", cluster, topic, partition, offset, api=api)


def events(**filters: object | None) -> str:
    """The events page with these filters (empty ones left out)."""
    return _with_query("/events", filters)


def lineage(cluster: str, topic: str, partition: int, offset: int, *, api: bool = False) -> str:
    return _path("lineage", cluster, topic, partition, offset, api=api)


def trace(reference: str, *, api: bool = False) -> str:
    return _path("trace", reference, api=api)


def dlq_topic(cluster: str, topic: str, *, api: bool = False, **filters: object | None) -> str:
    return _with_query(_path("dlq", cluster, topic, api=api), filters)


def dlq_message(cluster: str, topic: str, partition: int, offset: int, *, api: bool = False) -> str:
    return _path("dlq", cluster, topic, partition, offset, api=api)


def group(cluster: str, group_id: str, *, api: bool = False, **query: object | None) -> str:
    return _with_query(_path("groups", group_id, api=api), {"cluster": cluster, **query})


def saga(cluster: str | None, saga_id: str, *, api: bool = False) -> str:
    return _with_query(_path("sagas", saga_id, api=api), {"cluster": cluster})


def sagas(**filters: object | None) -> str:
    return _with_query("/sagas", filters)


def job(job_id: int, *, api: bool = False) -> str:
    return _path("actions", job_id, api=api)


def new_job(**fields: object | None) -> str:
    """The replay/redrive form, filled in with these fields."""
    return _with_query("/actions/new", fields)


def schemas(*, api: bool = False, **filters: object | None) -> str:
    return _with_query(_path("schemas", api=api), filters)


def schema(cluster: str, subject: str, *, api: bool = False, **query: object | None) -> str:
    """A subject's page (`version`: the one shown, `compare`: the one diffed against)."""
    return _with_query(_path("schemas", cluster, subject, api=api), query)


def schema_action(cluster: str, subject: str, *action: object) -> str:
    """Where a subject's forms post (compatibility, versions, delete...)."""
    return _path("schemas", cluster, subject, *action)


def groups_list(**filters: object | None) -> str:
    return _with_query("/groups", filters)


def reset_offsets(cluster: str, group_id: str, **fields: object | None) -> str:
    return _with_query("/reset-offsets", {"cluster": cluster, "group": group_id, **fields})


def connectors(**filters: object | None) -> str:
    """The Kafka Connect page, filtered (cluster, q, state)."""
    return _with_query("/connect", filters)


def connector(cluster: str, connect: str, name: str, *, api: bool = False) -> str:
    return _path("connect", cluster, connect, "connectors", name, api=api)


def connector_config(cluster: str, connect: str, name: str | None = None) -> str:
    """The config form of a connector, or of a new one when `name` is None."""
    return _with_query(_path("connect", cluster, connect, "config"), {"connector": name})


def connect_plugins(cluster: str, connect: str, *, api: bool = False) -> str:
    return _path("connect", cluster, connect, "plugins", api=api)


def connect_form(cluster: str, connect: str, form: str) -> str:
    """Where a Connect form posts: `action`, `delete` or `config`."""
    return _path("connect", cluster, connect, form)


def catalog(**filters: object | None) -> str:
    return _with_query("/catalog", filters)


def catalog_type(cluster: str, event_type: str, *, api: bool = False) -> str:
    return _path("catalog", cluster, event_type, api=api)


def asyncapi(cluster: str) -> str:
    return _path("api", "asyncapi", cluster)


def event_health(*, api: bool = False, **filters: object | None) -> str:
    """The Event health page (duplicates, ordering breaks), filtered (cluster, topic, window)."""
    return _with_query(_path("health", "events", api=api), filters)
