"""What every request handler needs: settings, the index engine, templates, services."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from collectors.config import Settings
from collectors.schemas.registry import RegistryClient
from collectors.services import ServiceGroup
from console.settings import AreaSettings
from console.web.admission import AdmissionGate


@dataclass
class AppState:
    settings: Settings
    areas: AreaSettings  # each area's section, read once
    engine: Engine
    templates: Jinja2Templates
    mode: str
    services: ServiceGroup = field(default_factory=lambda: ServiceGroup([]))
    # Kafka round trips in flight, by what they ask (see console/views/clusters.py).
    in_flight: dict[str, asyncio.Task[Any]] = field(default_factory=dict)
    # Schema registry clients by cluster, made on first use (console/stores/schemas.py).
    registries: dict[str, RegistryClient] = field(default_factory=dict)
    # Event searches wait here, not in the shared thread pool (console/web/admission.py).
    search_gate: AdmissionGate = field(init=False)

    def __post_init__(self) -> None:
        server = self.settings.server
        self.search_gate = AdmissionGate(
            "event searches", server.search_concurrency, server.search_queue
        )


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.eventscope
    return state
