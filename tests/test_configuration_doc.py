"""docs/configuration.md lists every key and variable the code accepts (it cannot drift)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from collectors import config, sagas
from console import event_health
from console.alerts import rules as alert_rules
from console.alerts import settings as alert_settings
from console.masking_rules import RULE_KEYS as MASKING_RULE_KEYS

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "configuration.md").read_text()

SECTIONS = {
    "server": config.ServerConfig,
    "index": config.IndexConfig,
    "collector": config.CollectorConfig,
    "lag": config.LagConfig,
}


def test_every_section_key_is_documented() -> None:
    missing = [
        f"{section}.{field.name}"
        for section, cls in SECTIONS.items()
        for field in dataclasses.fields(cls)
        if f"`{section}.{field.name}`" not in DOC
    ]
    missing += [
        f"clusters.<name>.{field.name}"
        for field in dataclasses.fields(config.ClusterConfig)
        if field.name != "name" and f"`clusters.<name>.{field.name}`" not in DOC
    ]
    missing += [
        f"clusters.<name>.schema_registry.{field.name}"
        for field in dataclasses.fields(config.SchemaRegistryConfig)
        if f"`clusters.<name>.schema_registry.{field.name}`" not in DOC
    ]
    missing += [
        field.name for field in dataclasses.fields(config.SchemaFileConfig)
        if f"`{field.name}`" not in DOC
    ]  # fmt: skip
    assert missing == []


def test_every_alert_saga_and_masking_key_is_documented() -> None:
    keys = [f"alerts.{key}" for key in alert_settings.KNOWN_KEYS]
    keys += [f"sagas.{key}" for key in (*sagas._OWN_KEYS, *sagas._RULE_KEYS)]
    keys += ["masking.apply_to", "masking.rules"]
    keys += [f"event_health.{key}" for key in event_health.KNOWN_KEYS]
    missing = [key for key in keys if f"`{key}`" not in DOC]
    words = [*alert_settings.RECEIVER_KEYS, *alert_rules.COMMON_KEYS, *alert_rules.KINDS,
             *MASKING_RULE_KEYS, *event_health.SEQUENCE_KEYS]  # fmt: skip
    missing += [word for word in words if f"`{word}`" not in DOC]
    assert missing == []


def test_every_environment_variable_is_documented() -> None:
    used: set[str] = set()
    for path in [*(ROOT / "collectors").rglob("*.py"), *(ROOT / "console").rglob("*.py")]:
        used |= set(re.findall(r"EVENTSCOPE_[A-Z_]+[A-Z]", path.read_text()))
    documented = set(re.findall(r"`(EVENTSCOPE_[A-Z_]+)`", DOC))
    assert sorted(used - documented) == []
