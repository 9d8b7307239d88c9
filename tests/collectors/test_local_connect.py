"""The local Kafka Connect worker's set-up (the worker itself runs for the whole session:
tests/console/operations/test_connectors.py uses it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from collectors.kafka import local_connect
from collectors.kafka.local_connect import LocalConnect

ROOT = Path(__file__).resolve().parents[2]


def test_the_worker_properties_name_its_broker_port_and_own_storage_topics(tmp_path: Path) -> None:
    worker = LocalConnect(tmp_path, "127.0.0.1:9999", port=18083)
    props = dict(
        line.split("=", 1) for line in local_connect.worker_properties(worker).splitlines()
    )
    assert props["bootstrap.servers"] == "127.0.0.1:9999"
    assert props["listeners"] == "http://127.0.0.1:18083"
    assert props["group.id"] == "eventscope-connect-18083"
    assert props["config.storage.topic"] == "_eventscope-connect-18083-configs"
    assert props["config.storage.replication.factor"] == "1"
    assert props["plugin.discovery"] == "only_scan"
    worker.data_dir.mkdir(exist_ok=True)
    worker.properties_file.write_text(local_connect.worker_properties(worker))
    assert local_connect.recorded(tmp_path) == (18083, "127.0.0.1:9999")
    assert local_connect.recorded(tmp_path / "elsewhere") is None


def test_status_of_a_worker_that_is_not_running_says_so(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "console.cli", "connect", "status", "--data-dir", str(tmp_path),
         "--port", "9"],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    state = json.loads(result.stdout)
    assert state["running"] is False and state["url"] == "http://127.0.0.1:9"
