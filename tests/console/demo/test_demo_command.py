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


def test_demo_prints_where_to_look_and_stops_cleanly_on_ctrl_c(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    port = free_port()
    prefix = f"t-demo-{uuid.uuid4().hex[:8]}"
    command = [sys.executable, "-m", "console.cli", "demo", "--bootstrap", kafka_bootstrap,
               "--port", str(port), "--topic-prefix", prefix, "--rate", "5"]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    output: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_lines, args=(process.stdout, output), daemon=True).start()
    seen: list[str] = []
    try:
        url = correlation_id = None
        deadline = time.monotonic() + 30
        while correlation_id is None and time.monotonic() < deadline:
            try:
                line = output.get(timeout=0.5)
            except queue.Empty:
                assert process.poll() is None, f"demo exited: {process.stderr.read()}"  # type: ignore[union-attr]
                continue
            seen.append(line)
            if match := re.search(r"console\s+(http://\S+)", line):
                url = match.group(1)
            if match := re.search(r"correlation id (\S+)", line):
                correlation_id = match.group(1)
        assert url == f"http://127.0.0.1:{port}/", seen
        assert correlation_id, seen
        page = httpx.get(url, follow_redirects=True, timeout=10)
        assert page.status_code == 200
        assert httpx.get(f"{url}api/sagas", timeout=10).status_code == 200

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0
        assert (tmp_path / "eventscope-demo.db").exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
