"""The demo shop against the real broker and a real console: what a newcomer will look at."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from console.demo import tour
from console.demo.flows import with_faults
from tests.conftest import free_port, wait_until

pytestmark = pytest.mark.kafka


async def test_the_shop_fills_every_page_a_newcomer_opens(
    kafka_bootstrap: str, schema_registry_url: str, tmp_path: Path
) -> None:
    prefix = f"t-shop-{uuid.uuid4().hex[:8]}"
    port = free_port()
    demo = tour.running_demo(
        kafka_bootstrap, tmp_path, prefix, port, seed=11, registry_url=schema_registry_url
    )
    async with demo as (url, shop):
        correlation_id = await asyncio.wait_for(asyncio.shield(shop.first_completed), 20)
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:

            async def complete_flow() -> dict[str, Any] | None:
                answer = await client.get(f"/api/trace/{correlation_id}")
                if answer.status_code != 200:
                    return None
                flow = answer.json()
                services = {group["service"] for group in flow["services"]}
                wanted = {"order-service", "inventory-service", "payment-service",
                          "shipping-service"}  # fmt: skip
                done = flow["record_count"] >= 7 and flow["span_count"] >= 14
                return flow if done and wanted <= services else None

            flow = await wait_until(complete_flow)
            assert flow["matched_by"]

            async def sagas() -> dict[str, int] | None:
                counts = (await client.get("/api/sagas")).json()["counts"]["by_status"]
                return counts if counts["compensated"] and counts["completed"] else None

            await wait_until(sagas)

            async def dead_letters() -> list[dict[str, Any]] | None:
                dlqs = (await client.get("/api/dlq")).json()["dlqs"]
                return [d for d in dlqs if d["topic"] == shop.topics.payment_dlt] or None

            [dlq] = await wait_until(dead_letters)
            messages = (await client.get(f"/api/dlq/demo/{dlq['topic']}")).json()["messages"]
            assert messages[0]["dlq"]["original_topic"] in (
                shop.topics.payment_commands, shop.topics.payment_retry)  # fmt: skip
            # The payment commands are Avro through the registry, and so is their dead letter.
            letter = messages[0]
            assert (letter["content_type"], letter["decode_state"]) == ("avro-confluent", "decoded")
            detail = (await client.get(letter["links"]["self"])).json()
            assert detail["decoded_value"]["metadata"]["correlationId"] == detail["correlation_id"]
            # One schema id may serve the subjects of other demos on the same registry.
            subjects = [entry["subject"] for entry in detail["schemas"][0]["subjects"]]
            assert subjects and all(s.endswith(".payment.commands-value") for s in subjects)

            async def slow_group() -> dict[str, Any] | None:
                groups = (await client.get("/api/groups")).json()["groups"]
                for group in groups:
                    if group["group"] == f"{prefix}-notification" and group["totallag"] > 0:
                        return group
                return None

            await wait_until(slow_group)

            # Healthy traffic gives no finding: each order's version only grows, and every
            # key stays on its partition.
            health = (await client.get("/api/health/events", params={
                "topic": shop.topics.orders, "window": "15m"})).json()  # fmt: skip
            [orders] = health["ordering"]["sequences"]
            assert (orders["field"], orders["breaks"]) == ("$.version", [])
            assert orders["rows_read"] > 0 and health["ordering"]["split_keys_total"] == 0
            assert health["duplicates"]["total_extra_copies"] == 0


async def test_the_demo_faults_show_on_the_event_health_page(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = f"t-faults-{uuid.uuid4().hex[:8]}"
    odds = with_faults(tour.TOUR_ODDS, ("duplicates", "misrouted-keys", "stale-updates"))
    demo = tour.running_demo(kafka_bootstrap, tmp_path, prefix, free_port(), seed=5, odds=odds)
    async with demo as (url, shop), httpx.AsyncClient(base_url=url, timeout=10) as client:

        async def every_fault_found() -> dict[str, Any] | None:
            health = (await client.get("/api/health/events", params={"window": "15m"})).json()
            orders = [s for s in health["ordering"]["sequences"]
                      if s["topic"] == shop.topics.orders]  # fmt: skip
            # A re-sent payment command can also be charged after its order was cancelled
            # (3, then 2): the stale update is the break that goes back to version 1.
            stale = [b for b in (orders[0]["breaks"] if orders else []) if b["after"] == "1"]
            found = (health["duplicates"]["total_extra_copies"] > 0,
                     health["ordering"]["split_keys_total"] > 0, bool(stale))  # fmt: skip
            return stale[0] if all(found) else None

        stale = await wait_until(every_fault_found, timeout_s=60)
        assert (stale["kind"], stale["before"]) == ("backwards", "2")
        detail = (await client.get(stale["link"].replace("/events/", "/api/events/", 1))).json()
        assert detail["event_type"] == "OrderUpdated"
