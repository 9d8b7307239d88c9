"""Settings as the console runs with them: the collectors' settings, plus a check of the
sections the console owns.

collectors/config.py reads the whole file but keeps `[alerts]` and `[masking]` as plain
tables: their rules are console code (console/alerts, console/masking_rules) and
collectors/ never imports console/. Every console entry point loads settings through this
module, so a bad rule stops `eventscope config check` and every start before anything runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from collectors import config
from collectors.config import ConfigError, Settings
from console.alerts.settings import AlertConfigError, alert_settings
from console.masking_rules import MaskingConfigError, masking_settings


def check_console_sections(settings: Settings) -> None:
    """Raise ConfigError naming the key (`alerts.rules[0].threshold`, ...) of a bad rule."""
    try:
        alert_settings(settings.alerts)
    except AlertConfigError as exc:
        raise ConfigError(f"alerts.{exc.key}", exc.message) from None
    try:
        masking_settings(settings.masking)
    except MaskingConfigError as exc:
        raise ConfigError(f"masking.{exc.key}", exc.message) from None


def load_settings(
    config_path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    settings = config.load_settings(config_path, environ)
    check_console_sections(settings)
    return settings


def settings_from_mapping(raw: Mapping[str, Any]) -> Settings:
    settings = config.settings_from_mapping(raw)
    check_console_sections(settings)
    return settings
