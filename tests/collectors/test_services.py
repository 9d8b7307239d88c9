"""One lifecycle for every background service: status, back-off, start order, rollback."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from collectors.services import Health, PeriodicService, ServiceGroup


class Flaky(PeriodicService):
    """Fails its first `failures` steps, then succeeds; records when each step ran."""

    name = "flaky"
    retry_s = 0.01
    max_backoff_s = 0.04

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.steps: list[float] = []
        self.cleanups = 0

    async def step(self) -> float:
        self.steps.append(asyncio.get_running_loop().time())
        if len(self.steps) <= self.failures:
            raise ConnectionError(f"down ({len(self.steps)})")
        return 0.01

    async def on_error(self, exc: Exception) -> None:
        self.cleanups += 1


async def _until(check, timeout_s: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "not reached"
        await asyncio.sleep(0.005)


async def test_a_failing_step_is_recorded_retried_with_backoff_and_cleared_by_success() -> None:
    service = Flaky(failures=4)
    await service.start()
    try:
        await _until(lambda: service.health.errors == 4)
        assert service.status()["last_error"] == "ConnectionError: down (4)"
        assert service.cleanups == 4
        await _until(lambda: service.status()["last_success_ms"] is not None)
        status = service.status()
        assert status["running"] and status["last_error"] is None and status["errors"] == 4
        gaps = [later - earlier for earlier, later in itertools.pairwise(service.steps)]
        assert gaps[0] >= 0.009 and gaps[1] >= 0.019, gaps  # 0.01, then doubled
        assert gaps[3] < 0.08, gaps  # capped at max_backoff_s
    finally:
        await service.stop()
    assert service.status()["running"] is False


class Recorder:
    def __init__(self, name: str, log: list[str], fail: bool = False) -> None:
        self.name, self.log, self.fail = name, log, fail
        self.health = Health()

    async def start(self) -> None:
        if self.fail:
            raise RuntimeError("cannot start")
        self.log.append(f"start {self.name}")

    async def stop(self) -> None:
        self.log.append(f"stop {self.name}")

    def status(self):  # type: ignore[no-untyped-def]
        return self.health.status()


async def test_services_start_in_order_stop_in_reverse_and_a_failed_start_undoes_the_rest() -> None:
    log: list[str] = []
    group = ServiceGroup([Recorder("receiver", log), Recorder("sender", log)])
    await group.start()
    await group.stop()
    assert log == ["start receiver", "start sender", "stop sender", "stop receiver"]

    log.clear()
    failing = ServiceGroup([Recorder("a", log), Recorder("b", log, fail=True), Recorder("c", log)])
    with pytest.raises(RuntimeError):
        await failing.start()
    assert log == ["start a", "stop a"]
    assert set(failing.status()) == {"a", "b", "c"}


def test_health_says_what_failed_in_words_or_from_the_exception() -> None:
    health = Health()
    assert health.failed("index write failed: disk full") == "index write failed: disk full"
    assert health.failed(OSError("no space")) == "OSError: no space"
    assert health.status()["errors"] == 2
    health.succeeded()
    assert health.status()["last_error"] is None
    assert health.status()["last_error_ms"] is not None  # when it last failed stays known
