"""Settings as the console runs with them: the collectors' settings, and each area's own
section read once into its typed form.

collectors/config.py reads the whole file and checks every key it owns; the sections of
the console (`[alerts]`, `[masking]`) stay plain tables there, because their rules are
console code and collectors/ never imports console/. `AreaSettings` reads those, and the
collectors' `[conventions]` and `[sagas]`, into the objects the code uses, once: every
console entry point loads settings through this module, so a bad rule stops `eventscope
config check` and every start (the error names the key) before anything runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from collectors import config
from collectors.config import ConfigError, Settings
from collectors.conventions import Conventions
from collectors.sagas import SagaOptions, saga_options
from console.alerts.settings import AlertConfigError, AlertSettings, alert_settings
from console.event_health import EventHealthConfigError, EventHealthSettings, event_health_settings
from console.masking_rules import MaskingConfigError, MaskingSettings, masking_settings


@dataclass(frozen=True)
class AreaSettings:
    """Each area's section in its typed form (built by `area_settings`)."""

    alerts: AlertSettings
    masking: MaskingSettings
    sagas: SagaOptions
    conventions: Conventions  # with the collector's value cap
    event_health: EventHealthSettings = field(default_factory=EventHealthSettings)


def area_settings(settings: Settings) -> AreaSettings:
    """Raise ConfigError naming the key (`alerts.rules[0].threshold`, ...) of a bad rule."""
    try:
        alerts = alert_settings(settings.alerts)
    except AlertConfigError as exc:
        raise ConfigError(f"alerts.{exc.key}", exc.message) from None
    try:
        masking = masking_settings(settings.masking)
    except MaskingConfigError as exc:
        raise ConfigError(f"masking.{exc.key}", exc.message) from None
    try:
        event_health = event_health_settings(settings.event_health)
    except EventHealthConfigError as exc:
        raise ConfigError(f"event_health.{exc.key}", exc.message) from None
    conventions = Conventions.from_mapping(
        {**settings.conventions, "value_cap": settings.collector.value_cap}
    )
    return AreaSettings(alerts, masking, saga_options(settings.sagas), conventions, event_health)


def load_settings(
    config_path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    settings = config.load_settings(config_path, environ)
    area_settings(settings)
    return settings


def settings_from_mapping(raw: Mapping[str, Any]) -> Settings:
    settings = config.settings_from_mapping(raw)
    area_settings(settings)
    return settings
