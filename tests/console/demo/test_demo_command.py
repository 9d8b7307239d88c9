"""`eventscope demo` as a user runs it: URL and correlation id printed, Ctrl-C exits 0."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, free_port

pytestmark = pytest.mark.kafka


def _lines(stream, into: queue.Queue[str]) -> None:  # type: ignore[no-untyped-def]
    for line in stream:
        into.put(line)


def _start_demo(args: list[str], cwd: Path) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
    env = {k: v for k, v in os.environ.items() if k != "EVENTSCOPE_KAFKA_BOOTSTRAP"}
    process = subprocess.Popen(
        [sys.executable, "-m", "console.cli", "demo", *args], cwd=cwd,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**env, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    output: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_lines, args=(process.stdout, output), daemon=True).start()
    return process, output


def _until_first_order(
    process: subprocess.Popen[str], output: queue.Queue[str], timeout_s: float
) -> tuple[str | None, str | None, list[str]]:
    """(console URL, correlation id, lines printed so far)."""
    seen: list[str] = []
    url = correlation_id = None
    deadline = time.monotonic() + timeout_s
    while correlation_id is None and time.monotonic() < deadline:
        try:
            line = output.get(timeout=0.5)
        except queue.Empty:
            assert process.poll() is None, f"demo exited: {''.join(seen)}"
            continue
        seen.append(line)
        if match := re.search(r"console\s+(http://\S+)", line):
            url = match.group(1)
        if match := re.search(r"correlation id (\S+)", line):
            correlation_id = match.group(1)
    return url, correlation_id, seen


def _reap(process: subprocess.Popen[str], folder: Path) -> None:
    """Kill a demo still running, and stop what it started detached (a demo killed rather
    than interrupted leaves its schema registry running)."""
    if process.poll() is None:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()
    registry = folder / ".eventscope" / "registry"
    if registry.exists():
        subprocess.run(
            [sys.executable, "-m", "console.cli", "registry", "stop", "--data-dir", str(registry)],
            cwd=ROOT, capture_output=True, check=False,
        )  # fmt: skip


def _stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGINT)
    return process.wait(timeout=40)


def test_demo_prints_where_to_look_and_stops_cleanly_on_ctrl_c(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    port = free_port()
    prefix = f"t-demo-{uuid.uuid4().hex[:8]}"
    process, output = _start_demo(
        ["--bootstrap", kafka_bootstrap, "--port", str(port), "--topic-prefix", prefix,
         "--rate", "5"], tmp_path,
    )  # fmt: skip
    try:
        url, correlation_id, seen = _until_first_order(process, output, 90)
        assert url == f"http://127.0.0.1:{port}/", seen
        assert correlation_id, seen
        page = httpx.get(url, follow_redirects=True, timeout=10)
        assert page.status_code == 200
        assert httpx.get(f"{url}api/sagas", timeout=10).status_code == 200
        assert _stop(process) == 0
        assert (tmp_path / "eventscope-demo.db").exists()
    finally:
        _reap(process, tmp_path)


def test_demo_starts_its_own_broker_with_relative_paths_quietly(tmp_path: Path) -> None:
    """The first command of a new user: a broker of its own, in a folder relative to here."""
    port, kafka_port = free_port(), free_port(span=2)
    process, output = _start_demo(
        ["--port", str(port), "--kafka-port", str(kafka_port), "--data-dir", "state/kafka",
         "--index", "sqlite:///state/demo.db", "--rate", "5"], tmp_path,
    )  # fmt: skip
    try:
        url, correlation_id, seen = _until_first_order(process, output, 120)
        assert correlation_id, seen
        ready = httpx.get(f"{url}readyz", timeout=20)
        assert ready.status_code == 200 and ready.json()["ready"] is True, ready.text
        printed = "".join(seen)
        assert "ERROR" not in printed and "Traceback" not in printed, printed
        log = tmp_path / "state" / "kafka" / "kafka.log"
        assert str(log) in printed, "the demo says where the broker's log is"
        assert (tmp_path / "state" / "demo.db").is_file()
        assert _stop(process) == 0
        assert not (tmp_path / "state" / "kafka" / "kafka.pid").exists(), "broker left running"
    finally:
        _reap(process, tmp_path)
        subprocess.run(
            [sys.executable, "-m", "console.cli", "kafka", "stop", "--data-dir", "state/kafka"],
            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
            check=False,
        )  # fmt: skip
