"""The brokers pages against the real broker: reached from the cluster's page, the log
directories, a broker's configs filtered by name with sensitive values hidden (a password
in a broker's own config reaches neither the page nor the JSON twin); the JSON twins and
their errors in words."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from collectors.config import ClusterConfig
from collectors.kafka import local_broker
from collectors.kafka.local_broker import LocalBroker
from console.app import create_app
from tests.conftest import free_port, make_settings, serve_in_thread

pytestmark = [pytest.mark.kafka]


def test_the_json_twins_and_bad_input(live_server) -> None:
    with httpx.Client(base_url=live_server.url, timeout=20) as client:
        listed = client.get("/api/clusters/local/brokers")
        assert listed.status_code == 200, listed.text
        body = listed.json()
        (broker,) = body["brokers"]
        assert body["controller_id"] == broker["id"] and broker["controller"]
        assert broker["log_dirs"][0]["partitions"] >= 1

        configs = client.get(f"/api/clusters/local/brokers/{broker['id']}", params={"q": "ssl"})
        assert configs.status_code == 200, configs.text
        found = configs.json()
        assert found["total"] > len(found["configs"]) > 0
        assert all("ssl" in c["name"] for c in found["configs"])
        assert any(c["sensitive"] and c["value"] is None for c in found["configs"])
        long = client.get(f"/api/clusters/local/brokers/{broker['id']}", params={"q": "x" * 5000})
        assert long.status_code == 200 and long.json()["configs"] == []

        for path, status, words in (
            ("/api/clusters/nope/brokers", 404, "no cluster 'nope'"),
            ("/api/clusters/local/brokers/4242", 404, "has no broker 4242"),
            ("/api/clusters/local/brokers/x", 404, "'x' is not a broker id"),
            ("/api/clusters/local/brokers/-1", 404, "not a broker id"),
            ("/api/clusters/local/brokers/99999999999", 404, "not a broker id"),
        ):
            answer = client.get(path)
            assert answer.status_code == status and words in answer.json()["error"], path
        assert client.get("/api/clusters/local/brokers", params={"x": "1"}).status_code == 400


@pytest.mark.browser
async def test_the_brokers_page_and_a_brokers_configs_in_the_browser(live_server, page) -> None:
    await page.goto(f"{live_server.url}/clusters/local")
    await page.locator("#cluster-brokers").click()
    await page.wait_for_url("**/clusters/local/brokers")
    rows = page.locator("#brokers tbody tr")
    assert await rows.count() == 1
    assert "controller" in await rows.first.inner_text()
    assert "online" in await page.locator("#log-dirs tbody").inner_text()
    controller = await page.locator("#controller").inner_text()

    await rows.first.get_by_role("link", name="Configs").click()
    await page.wait_for_url("**/clusters/local/brokers/*")
    assert controller.removeprefix("broker ") in await page.locator("h1").inner_text()
    await page.locator("#config-query").fill("password")
    await page.locator("#config-filter button").click()
    await page.wait_for_url("**?q=password")
    names = await page.locator("#broker-configs tbody td:first-child").all_inner_texts()
    assert names and all("password" in name for name in names)
    values = await page.locator("#broker-configs tbody td:nth-child(2)").all_inner_texts()
    assert "(hidden)" in values
    await page.get_by_role("link", name="Brokers").click()
    await page.wait_for_url("**/clusters/local/brokers")
    assert page.problems == []


PASSWORD = "s3cret-Never-Shown"


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    """A broker whose static config holds a password (its SASL listener's JAAS config)."""
    broker = LocalBroker(
        data_dir=tmp_path_factory.mktemp("sasl-kafka"), port=free_port(span=3),
        sasl_plain_users=(("alice", PASSWORD),),
    )  # fmt: skip
    local_broker.start(broker, timeout_s=60, quiet=True)
    try:
        yield broker
    finally:
        local_broker.stop(broker)


def test_a_password_in_the_brokers_config_reaches_neither_page_nor_twin(
    sasl_broker: LocalBroker, tmp_path
) -> None:
    cluster = ClusterConfig(name="secured", bootstrap=sasl_broker.bootstrap)
    app = create_app(make_settings(cluster, f"sqlite:///{tmp_path / 'index.db'}"), mode="console")
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=20) as client:
        answer = client.get("/api/clusters/secured/brokers/1", params={"q": "jaas"})
        assert answer.status_code == 200, answer.text
        jaas = [c for c in answer.json()["configs"] if c["name"].endswith("sasl.jaas.config")]
        assert jaas and all(c["sensitive"] and c["value"] is None for c in jaas)
        page = client.get("/clusters/secured/brokers/1", params={"q": "jaas"})
        assert page.status_code == 200 and "(hidden)" in page.text
        for text in (answer.text, page.text, client.get("/api/clusters/secured/brokers/1").text):
            assert PASSWORD not in text and "alice" not in text
