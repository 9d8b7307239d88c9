"""/healthz on its own port answers from a thread: at once while the event loop is busy,
and 503 when the loop has stopped turning."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request

import pytest

from collectors.config import ConfigError, settings_from_mapping
from console.health_listener import HealthListener
from tests.conftest import free_port


def get(port: int, path: str = "/healthz") -> tuple[int, dict, float]:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, json.loads(answer.read()), time.monotonic() - started
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), time.monotonic() - started


async def test_it_answers_while_the_loop_is_blocked_and_says_when_it_stalls() -> None:
    port = free_port()
    listener = HealthListener("127.0.0.1", port, stall_s=0.6)
    await listener.start()
    try:
        await asyncio.sleep(0.3)
        status, body, _ = await asyncio.to_thread(get, port)
        assert status == 200 and body["status"] == "ok" and body["loop_lag_s"] < 0.5
        assert (await asyncio.to_thread(get, port, "/readyz"))[0] == 404

        answers = []
        asker = asyncio.get_running_loop().run_in_executor(
            None, lambda: [answers.append(get(port)) or time.sleep(0.2) for _ in range(6)]
        )
        time.sleep(1.5)  # the event loop does not turn (a blocking call, a deadlock)
        await asker
        statuses = [status for status, _, _ in answers]
        assert 503 in statuses, answers
        assert max(seconds for _, _, seconds in answers) < 0.5  # answered all along
        stalled = next(body for status, body, _ in answers if status == 503)
        assert "has not turned" in stalled["error"]
        await asyncio.sleep(0.3)
        assert (await asyncio.to_thread(get, port))[0] == 200  # turning again
    finally:
        await listener.stop()


def test_the_health_port_must_be_its_own() -> None:
    base = {"index": {"url": "sqlite:///x.db"}}
    with pytest.raises(ConfigError, match=r"server\.health_port"):
        settings_from_mapping({**base, "server": {"port": 8600, "health_port": 8600}})
    with pytest.raises(ConfigError, match=r"server\.loop_stall_s"):
        settings_from_mapping({**base, "server": {"health_port": 8601, "loop_stall_s": 0}})
