"""Every endpoint of the console, by the process that serves it.

`collector_endpoints` run in every mode (health, metrics, the OTLP receiver);
`console_endpoints` only where the web console runs. A new area adds its module here
(tests/console/test_registry.py fails when a view module's endpoints are missing).
"""

from __future__ import annotations

from console.views import (
    acls,
    actions,
    admin,
    alert_receivers,
    alert_rules,
    alerts,
    audit,
    auth,
    brokers,
    catalog,
    clusters,
    connect,
    dlq,
    event_health,
    events,
    group_offsets,
    groups,
    health,
    lineage,
    masking,
    metrics,
    openapi,
    otlp,
    overview,
    produce,
    sagas,
    schemas,
    topic_admin,
    topology,
    trace,
)
from console.web.endpoints import Endpoint

COLLECTOR_AREAS = (health, metrics, otlp)
CONSOLE_AREAS = (
    overview, topic_admin, acls, brokers, clusters, events, groups, group_offsets, dlq, sagas,
    trace, lineage, topology, catalog, schemas, connect, actions, produce, event_health, alerts,
    alert_rules, alert_receivers, auth, admin, audit, masking, openapi,
)  # fmt: skip


def collector_endpoints() -> list[Endpoint]:
    return [endpoint for area in COLLECTOR_AREAS for endpoint in area.ENDPOINTS]


def console_endpoints() -> list[Endpoint]:
    return [endpoint for area in CONSOLE_AREAS for endpoint in area.ENDPOINTS]


def all_endpoints() -> list[Endpoint]:
    return collector_endpoints() + console_endpoints()
