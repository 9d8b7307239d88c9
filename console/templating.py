"""Jinja2 environment: autoescaping everywhere, plus the formatting filters pages share."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from markupsafe import Markup
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from console import assets
from console.payload_view import BIDI_CONTROLS
from console.web import urls

MISSING = "\u2013"  # an en dash stands for "unknown" in tables

NAVIGATION = (
    # (label, path, built) — areas not built yet are shown, but disabled.
    ("Events", "/events", True),
    ("Trace", "/trace", True),
    ("Lineage", "/lineage", True),
    ("Topology", "/topology", True),
    ("Catalog", "/catalog", True),
    ("Topics", "/topics", True),
    ("Groups", "/groups", True),
    ("DLQ", "/dlq", True),
    ("Schemas", "/schemas", True),
    ("Connect", "/connect", True),
    ("Replay", "/actions", True),
    ("Sagas", "/sagas", True),
    ("Health", "/health/events", True),
    ("Alerts", "/alerts", True),
    ("Admin", "/admin", True),
    ("Audit", "/audit", True),
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


def human_number(value: float | int | None) -> str:
    """A measured figure as a person reads it: 16.13 not 16.132784366607666, 12,400 not
    12400.0."""
    if value is None:
        return MISSING
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if abs(value) >= 1000 or isinstance(value, int):
        return f"{value:,.0f}"
    return f"{value:.3g}"


def timestamp_ms(value: int | None) -> str:
    if value is None:
        return MISSING
    moment = dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def time_element(value: int | str | None) -> Markup | str:
    """A moment as `<time datetime="…Z">` in UTC, which static/js/eventscope.js switches to
    the browser's time zone when the reader asks. Milliseconds since the epoch, or a text
    already written in UTC (`…Z`, as the views' `format_time` writes it), shown alike."""
    if value is None:
        return MISSING
    if isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
        if moment.utcoffset() != dt.timedelta(0):
            return value  # not a UTC time: shown as written, never converted
        text = moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"
    else:
        moment = dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC)
        text = timestamp_ms(value)
    machine = moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return Markup('<time datetime="{}">{}</time>').format(machine, no_bidi(text))


LONG_ID_CAP = 2000  # characters of an id kept in the page; the JSON twin has all of it


def long_id(value: Any) -> Markup | str:
    """An id that may be long (event, correlation, trace, group ids): one line cut with an
    ellipsis, its whole text kept for copying and in its title for hovering."""
    if value is None or value == "":
        return ""
    text = no_bidi(str(value))[:LONG_ID_CAP]
    return Markup('<span class="id" title="{}">{}</span>').format(text, text)


def human_duration(seconds: float | None) -> str:
    """Seconds as a short duration: 850 ms, 42.0 s, 3m 05s, 2h 10m, 3d 4h."""
    if seconds is None or seconds != seconds:
        return MISSING
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    if whole < 86_400:
        return f"{whole // 3600}h {whole % 3600 // 60:02d}m"
    return f"{whole // 86_400}d {whole % 86_400 // 3600}h"


def nav_context(request: Request) -> dict[str, Any]:
    """What the top of every page shows: the number of firing alerts (None when the index
    cannot say, which the nav then leaves out rather than fail the page), and why records
    are not reaching the index, if they are not (a banner)."""
    from console.stores.alerts import firing_count

    state = getattr(request.app.state, "eventscope", None)
    try:
        firing = firing_count(state.engine) if state is not None else None
    except SQLAlchemyError:
        firing = None
    problems = state.services.problems(time.time()) if state is not None else []
    return {"nav_firing": firing, "pipeline_problems": problems}


def auth_context(request: Request) -> dict[str, Any]:
    """Who is looking, and the CSRF token every state-changing form must carry."""
    principal = getattr(request.state, "principal", None)
    return {
        "principal": principal,
        "csrf_token": principal.csrf_token if principal and principal.csrf_token else "",
    }


def no_bidi(value: Any) -> Any:
    """Every value a template prints: direction-changing characters (U+202E and kin) are
    shown as `\\u202e` instead of obeyed, so `\\u202elive` cannot read as "evil" in an id,
    a service or an error. Markup stays markup (the escape adds only plain text)."""
    if isinstance(value, str):
        for control in set(BIDI_CONTROLS.findall(value)):
            value = value.replace(control, f"\\u{ord(control):04x}")  # Markup stays Markup
    return value


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(
        directory=str(assets.TEMPLATES_DIR), context_processors=[auth_context, nav_context]
    )
    env = templates.env
    env.autoescape = True
    env.finalize = no_bidi
    env.filters["bytes"] = human_bytes
    env.filters["count"] = human_count
    env.filters["figure"] = human_number
    env.filters["ts"] = time_element
    env.filters["ts_text"] = timestamp_ms  # where markup cannot go (an SVG <title>)
    env.filters["long_id"] = long_id
    env.filters["duration"] = human_duration
    env.globals["navigation"] = NAVIGATION
    env.globals["urls"] = urls
    env.globals["vendor_ready"] = assets.ready()
    return templates
