"""Alerts pages and their JSON twins: silences, rules with preview, receivers with a test
send to a real local HTTP receiver (API and browser)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import Engine, insert, select

from collectors.index.alert_models import alert_receivers_table, alerts_table
from collectors.index.lag_models import lag_groups_table
from console.alerts.signing import verify
from console.app import create_app
from tests.conftest import make_settings, serve_in_thread
from tests.console.alerts.webhook_receiver import webhook_receiver

CONFIG_RULE = {"name": "ConfiguredLag", "kind": "offset_lag", "threshold": 100}
CONFIG_RECEIVER = {
    "name": "configured",
    "url": "http://127.0.0.1:9/hook",
    "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "headers": {"X-Key": "k"},
}


@dataclass
class Console:
    url: str
    engine: Engine


@pytest.fixture(scope="module")
def console(tmp_path_factory) -> Iterator[Console]:
    """A console (no background services, so inserted alerts stay as they are)."""
    path = tmp_path_factory.mktemp("alerts") / "index.db"
    settings = make_settings(
        None, f"sqlite:///{path}", alerts={"rules": [CONFIG_RULE], "receivers": [CONFIG_RECEIVER]}
    )
    app = create_app(settings, mode="console")
    with serve_in_thread(app) as url:
        yield Console(url, app.state.eventscope.engine)


def _csrf(console: Console) -> dict[str, str]:
    """The token every state-changing request carries (read from the page, as a browser)."""
    page = httpx.get(f"{console.url}/alerts").text
    token = re.search(r'<meta name="csrf-token" content="([^"]*)">', page)
    assert token is not None
    return {"X-CSRF-Token": token.group(1)}


def _firing(engine: Engine, fingerprint: str, group: str) -> None:
    labels = {"alertname": "LagHigh", "severity": "critical", "cluster": "local", "group": group}
    now = int(time.time() * 1000)
    with engine.begin() as connection:
        connection.execute(
            insert(alerts_table).values(
                fingerprint=fingerprint,
                rule_name="LagHigh",
                state="firing",
                severity="critical",
                labels=json.dumps(labels),
                annotations=json.dumps({"summary": f"<b>{group}</b>"}),
                receivers="[]",
                value=42.0,
                generator_url="http://console/groups/x",
                active_since_ms=now,
                starts_at_ms=now,
                evaluated_at_ms=now,
            )
        )


def test_alerts_api_lists_firing_and_a_silence_mutes_it(console) -> None:
    _firing(console.engine, "a" * 16, "orders-api")
    body = httpx.get(f"{console.url}/api/alerts").json()
    [alert] = [a for a in body["firing"] if a["fingerprint"] == "a" * 16]
    assert alert["silencedBy"] is None and alert["labels"]["group"] == "orders-api"
    bad = httpx.post(
        f"{console.url}/api/alerts/silences", json={"matchers": {}}, headers=_csrf(console)
    )
    assert bad.status_code == 400 and "matcher" in bad.json()["error"]
    created = httpx.post(
        f"{console.url}/api/alerts/silences",
        json={"matchers": {"group": "orders-api"}, "duration": 600, "comment": "deploy"},
        headers=_csrf(console),
    )
    assert created.status_code == 201
    body = httpx.get(f"{console.url}/api/alerts").json()
    [alert] = [a for a in body["firing"] if a["fingerprint"] == "a" * 16]
    assert alert["silencedBy"] == created.json()["id"]
    expired = httpx.post(
        f"{console.url}/api/alerts/silences/{created.json()['id']}/expire", headers=_csrf(console)
    )
    assert expired.status_code == 200


def test_rules_api_validates_saves_and_previews(console) -> None:
    rules = httpx.get(f"{console.url}/api/alerts/rules").json()["rules"]
    assert rules[0]["name"] == "ConfiguredLag" and rules[0]["source"] == "config"
    bad = httpx.post(
        f"{console.url}/api/alerts/rules",
        json={"name": "X", "kind": "offset_lag", "threshold": "lots"},
        headers=_csrf(console),
    )
    assert bad.status_code == 400 and bad.json()["error"].startswith("threshold:")
    taken = httpx.post(f"{console.url}/api/alerts/rules", json=CONFIG_RULE, headers=_csrf(console))
    assert taken.status_code == 400 and "configuration" in taken.json()["error"]
    with console.engine.begin() as connection:
        connection.execute(
            insert(lag_groups_table).values(
                cluster="local",
                group_id="preview-group",
                sampled_at_ms=1,
                state="Empty",
                status="ERR",
                complete=1.0,
                total_lag=5000,
                max_lag=5000,
                max_time_lag_s=None,
                members=0,
                partition_count=1,
                topics="[]",
                detail="{}",
            )
        )
    rule = {
        "name": "PreviewLag",
        "kind": "offset_lag",
        "group": "preview-*",
        "threshold": 10,
        "for": "1m",
    }
    preview = httpx.post(
        f"{console.url}/api/alerts/rules/preview", json=rule, headers=_csrf(console)
    ).json()
    assert [(a["labels"]["group"], a["state"]) for a in preview["alerts"]] == [
        ("preview-group", "pending")
    ]
    assert (
        httpx.post(f"{console.url}/api/alerts/rules", json=rule, headers=_csrf(console)).status_code
        == 201
    )
    names = [r["name"] for r in httpx.get(f"{console.url}/api/alerts/rules").json()["rules"]]
    assert "PreviewLag" in names
    assert (
        httpx.delete(
            f"{console.url}/api/alerts/rules/PreviewLag", headers=_csrf(console)
        ).status_code
        == 200
    )


def test_receiver_secret_is_shown_once_and_never_again(console) -> None:
    listed = httpx.get(f"{console.url}/api/alerts/receivers").json()["receivers"]
    configured = next(r for r in listed if r["name"] == "configured")
    assert configured["signed"] is True and configured["headers"] == ["X-Key"]
    assert "whsec_" not in json.dumps(listed) and '"k"' not in json.dumps(listed)
    created = httpx.post(
        f"{console.url}/api/alerts/receivers",
        json={"name": "api-made", "url": "http://127.0.0.1:9/x"},
        headers=_csrf(console),
    )
    assert created.status_code == 201 and created.json()["secret"].startswith("whsec_")
    page = httpx.get(f"{console.url}/alerts/receivers").text
    assert created.json()["secret"] not in page and CONFIG_RECEIVER["secret"] not in page
    bad = httpx.post(
        f"{console.url}/api/alerts/receivers",
        json={"name": "x", "url": "ftp://x"},
        headers=_csrf(console),
    )
    assert bad.status_code == 400 and bad.json()["error"].startswith("url:")


@pytest.mark.browser
async def test_silence_button_mutes_a_firing_alert(console, page) -> None:
    _firing(console.engine, "b" * 16, "billing")
    await page.goto(f"{console.url}/alerts")
    row = page.locator('#firing tr[data-fingerprint="bbbbbbbbbbbbbbbb"]')
    assert "<b>billing</b>" in await row.inner_text()  # escaped, shown as text
    await row.locator("input[name=comment]").fill("maintenance")
    await row.get_by_role("button", name="Silence").click()
    await page.wait_for_url(f"{console.url}/alerts")
    await row.locator("[data-silenced]").wait_for()
    silence = page.locator("#silences tbody tr").filter(has_text="maintenance")
    assert await silence.count() == 1
    await silence.get_by_role("button", name="Expire").click()
    await row.get_by_role("button", name="Silence").wait_for()
    assert page.problems == []


@pytest.mark.browser
async def test_an_open_alerts_page_shows_new_and_never_notified_alerts(console, page) -> None:
    await page.goto(f"{console.url}/alerts")
    await page.locator(".refresh-age").wait_for()
    now = int(time.time() * 1000)
    with console.engine.begin() as connection:  # a flapping rule: resolved twice, unnotified
        for n in range(2):
            connection.execute(insert(alerts_table).values(
                fingerprint=f"flap{n}", rule_name="Flappy", state="resolved", severity="warning",
                labels=json.dumps({"alertname": "Flappy", "n": str(n)}), annotations="{}",
                receivers="[]", generator_url="/groups", active_since_ms=now - 60_000,
                starts_at_ms=now - 60_000, ends_at_ms=now - 30_000 + n, evaluated_at_ms=now,
                notification_note="resolved within group_wait (30s)",
            ))  # fmt: skip
    _firing(console.engine, "c" * 16, "shipping")
    # No reload: the page refreshes itself (every 10 s).
    new = page.locator('#firing tr[data-fingerprint="cccccccccccccccc"]')
    await new.wait_for(timeout=25_000)
    assert "waiting: its group notifies after group_wait" in await new.inner_text()
    flapped = page.locator('#resolved tr[data-fingerprint="flap0"] [data-notification]')
    assert await flapped.inner_text() == "not notified: resolved within group_wait (30s)"
    summary = await page.locator("#never-notified").inner_text()
    assert "Flappy: 2" in summary and "keep_firing_for" in summary
    api = httpx.get(f"{console.url}/api/alerts").json()
    [flap] = [a for a in api["resolved"] if a["fingerprint"] == "flap1"]
    assert flap["notification"] == "not notified" and flap["notifiedAtMs"] is None
    assert page.problems == []


@pytest.mark.browser
async def test_create_receiver_and_send_test(console, page) -> None:
    with webhook_receiver([200]) as receiver:
        await page.goto(f"{console.url}/alerts/receivers")
        await page.fill("#receiver-name", "browser-hook")
        await page.fill("#receiver-url", receiver.url)
        await page.get_by_role("button", name="Create").click()
        secret = (await page.locator("#receiver-secret").inner_text()).strip()
        assert secret.startswith("whsec_")
        row = page.locator('#receivers tr[data-receiver="browser-hook"]')
        await row.get_by_role("button", name="Send test").click()
        await page.locator("#alerts-notice").wait_for()
        assert "HTTP 200" in await page.locator("#alerts-notice").inner_text()
        assert secret not in await page.content()
        [request] = receiver.requests
        verify(secret, request.headers, request.body)
        assert json.loads(request.body)["receiver"] == "browser-hook"
    delivery = page.locator("#deliveries tbody tr").first
    assert "delivered" in await delivery.inner_text()
    with console.engine.connect() as connection:
        assert connection.execute(
            select(alert_receivers_table.c.name).where(
                alert_receivers_table.c.name == "browser-hook"
            )
        ).first()
    assert page.problems == []


@pytest.mark.browser
async def test_rule_editor_previews_and_reports_errors(console, page) -> None:
    await page.goto(f"{console.url}/alerts/rules")
    await page.fill("#rule-name", "EditorRule")
    await page.select_option("#rule-kind", "offset_lag")
    await page.fill("#rule-threshold", "not a number")
    await page.click("#rule-save")
    assert "threshold" in await page.locator("#alerts-error").inner_text()
    await page.fill("#rule-threshold", "1")
    await page.click("#rule-preview-button")
    await page.locator("#rule-preview").wait_for()
    await page.click("#rule-save")
    await page.locator('#rules tr[data-rule="EditorRule"]').wait_for()
    assert page.problems == []


def test_the_navigation_counts_the_firing_alerts_on_every_page(tmp_path) -> None:
    from sqlalchemy import insert
    from starlette.testclient import TestClient

    from collectors.index.alert_models import alerts_table
    from console.app import create_app
    from tests.conftest import make_settings

    app = create_app(make_settings(None, f"sqlite:///{tmp_path / 'i.db'}"), mode="console")
    with TestClient(app) as client:
        assert 'id="nav-firing"' not in client.get("/events").text  # nothing fires: no badge
        with app.state.eventscope.engine.begin() as connection:
            for n, state in enumerate(("firing", "firing", "pending", "resolved")):
                connection.execute(insert(alerts_table).values(
                    fingerprint=f"f{n}", rule_name="lag", state=state, severity="warning",
                    labels="{}", annotations="{}", receivers="[]", generator_url="/groups",
                    active_since_ms=1, evaluated_at_ms=1,
                ))  # fmt: skip
        for path in ("/events", "/dlq", "/groups"):
            page = client.get(path).text
            assert 'id="nav-firing" title="2 firing">2</span>' in page, path
