"""Every endpoint of the console, by the process that serves it.

`collector_endpoints` run in every mode (health, metrics, the OTLP receiver);
`console_endpoints` only where the web console runs.
"""

from __future__ import annotations

from console.views import (
    actions,
    alerts,
    clusters,
    dlq,
    events,
    groups,
    health,
    lineage,
    metrics,
    otlp,
    sagas,
    topology,
    trace,
)
from console.web.endpoints import Endpoint


def collector_endpoints() -> list[Endpoint]:
    return [*health.ENDPOINTS, *metrics.ENDPOINTS, *otlp.ENDPOINTS]


def console_endpoints() -> list[Endpoint]:
    return [
        *clusters.ENDPOINTS,
        *events.ENDPOINTS,
        *groups.ENDPOINTS,
        *dlq.ENDPOINTS,
        *sagas.ENDPOINTS,
        *trace.ENDPOINTS,
        *lineage.ENDPOINTS,
        *topology.ENDPOINTS,
        *actions.ENDPOINTS,
        *alerts.ENDPOINTS,
    ]


def all_endpoints() -> list[Endpoint]:
    return collector_endpoints() + console_endpoints()
