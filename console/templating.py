"""Jinja2 environment: autoescaping everywhere, plus the formatting filters pages share."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from starlette.templating import Jinja2Templates

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = ROOT / "templates"
STATIC_DIR = ROOT / "static"

MISSING = "\u2013"  # an en dash stands for "unknown" in tables

NAVIGATION = (
    # (label, path, built) — areas not built yet are shown, but disabled.
    ("Events", "/events", True),
    ("Trace", "/trace", False),
    ("Lineage", "/lineage", False),
    ("Topology", "/topology", False),
    ("Topics", "/clusters", True),
    ("Consumer groups", "/groups", False),
    ("DLQ", "/dlq", False),
    ("Replay", "/actions", False),
    ("Sagas", "/sagas", False),
    ("Alerts", "/alerts", False),
    ("Admin", "/admin", False),
)


def human_bytes(value: int | None) -> str:
    if value is None:
        return MISSING
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{value} B"


def human_count(value: int | None) -> str:
    return MISSING if value is None else f"{value:,}"


def timestamp_ms(value: int | None) -> str:
    if value is None:
        return MISSING
    moment = dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    env = templates.env
    env.autoescape = True
    env.filters["bytes"] = human_bytes
    env.filters["count"] = human_count
    env.filters["ts"] = timestamp_ms
    env.globals["navigation"] = NAVIGATION
    env.globals["vendor_ready"] = (STATIC_DIR / "vendor" / "htmx.min.js").is_file()
    return templates
