"""The lineage graph on the lineage page and on the event page, as the browser draws it:
readable at its first view, filling its box, with event types, zoom and links, and no
Content-Security-Policy violation. How edges are found is tests/collectors/test_lineage.py;
the lineage of real OpenTelemetry traffic is tests/console/views/test_trace.py."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.collectors.trace_fixtures import event_row, index_rows
from tests.console.views.graph_checks import WATCH_CSP, csp_violations, graph_facts, own_console

pytestmark = pytest.mark.browser

# One order of the demo shop (scripts/demo.sh): each event caused by the one before it,
# the payment command also retried once.
DEMO_FLOW = [  # (event type, topic)
    ("OrderPlaced", "shop.orders"),
    ("ReserveInventory", "shop.inventory.commands"),
    ("InventoryReserved", "shop.checkout.replies"),
    ("ChargePayment", "shop.payment.commands"),
    ("PaymentCharged", "shop.checkout.replies"),
    ("OrderConfirmed", "shop.orders"),
    ("ShipmentBooked", "shop.shipments"),
    ("NotificationSent", "shop.notifications"),
]
HOSTILE_TYPE = "\u202eevil" + "X" * 200


def demo_rows() -> list[dict[str, object]]:
    rows = []
    for n, (event_type, topic) in enumerate(DEMO_FLOW):
        rows.append(event_row(topic, n, cluster="c1", ts_ms=n * 10, event_id=f"ev-{n}",
                              event_type=event_type,
                              causation_id=f"ev-{n - 1}" if n else None))  # fmt: skip
    rows.append(event_row("shop.payment.commands-retry", 0, cluster="c1", ts_ms=35,
                          event_id="ev-retry", event_type="ChargePayment",
                          causation_id="ev-2"))  # fmt: skip
    rows.append(event_row("shop.hostile", 0, cluster="c1", ts_ms=90, event_id="ev-hostile",
                          event_type=HOSTILE_TYPE, causation_id="ev-0"))  # fmt: skip
    return rows


async def test_the_demo_lineage_is_readable_and_zooms_on_both_pages(tmp_path, page) -> None:
    with own_console(tmp_path) as (url, engine):
        await asyncio.to_thread(index_rows, engine, demo_rows())
        twin = httpx.get(f"{url}/api/lineage/c1/shop.orders/0/0").json()
        boxes = twin["drawing"]["boxes"]
        assert {box["node"] for box in boxes} == {node["id"] for node in twin["nodes"]}
        assert all(link["edges"] for link in twin["drawing"]["links"])
        await page.add_init_script(WATCH_CSP)
        await page.set_viewport_size({"width": 1440, "height": 900})
        for path in ("/lineage/c1/shop.orders/0/0", "/events/c1/shop.orders/0/0"):
            await page.goto(url + path)
            facts = await graph_facts(page, "#lineage-graph")
            assert facts["smallest_label_px"] >= 11, (path, facts)
            assert facts["fill"] >= 0.6, (path, facts)
            assert {event_type for event_type, _ in DEMO_FLOW} <= set(facts["labels"]), facts
            # a hostile event type is shown, not obeyed, and capped (its tooltip has more)
            hostile = [text for text in facts["labels"] if "evil" in text]
            assert hostile and all(t.startswith("\\u202eevil") and t.endswith("…")
                                   for t in hostile)  # fmt: skip
            title = await page.locator("#lineage-graph [data-node] > title").all_text_contents()
            assert any("\\u202eevilXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX" in t for t in title)
            fitted = facts["scale"]
            await page.click("#lineage .graph-zoom-in")
            zoomed = float(await page.get_attribute("#lineage-graph", "data-scale") or 0)
            await page.click("#lineage .graph-fit")
            back = float(await page.get_attribute("#lineage-graph", "data-scale") or 0)
            assert zoomed > fitted and back == pytest.approx(fitted, rel=0.01)
            assert await csp_violations(page) == [], path

        # a click on an effect opens its event page, which draws its own lineage
        await page.goto(f"{url}/lineage/c1/shop.orders/0/0")
        await page.locator("#lineage-graph[data-rendered='1']").wait_for()
        await page.locator('#lineage-graph a[href="/events/c1/shop.shipments/0/6"]').click()
        await page.wait_for_url("**/events/c1/shop.shipments/0/6")
        await page.locator("#lineage-graph[data-rendered='1']").wait_for()

        await page.set_viewport_size({"width": 390, "height": 844})
        for path in ("/lineage/c1/shop.orders/0/0", "/events/c1/shop.orders/0/0"):
            await page.goto(url + path)
            narrow = await graph_facts(page, "#lineage-graph")
            assert narrow["page_width"] <= narrow["window_width"], (path, narrow)
            assert narrow["box_width"] <= 390 and narrow["smallest_label_px"] >= 11, narrow
            # the first view is around this event
            root = await page.locator("#lineage-graph .gn-root rect").bounding_box()
            svg = await page.locator("#lineage-graph svg").bounding_box()
            assert root is not None and svg is not None
            assert svg["x"] <= root["x"] and root["x"] + root["width"] <= svg["x"] + svg["width"]
            assert await csp_violations(page) == [], path
        assert page.problems == []
