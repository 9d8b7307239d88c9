import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from collectors.kafka import local_broker
from collectors.kafka.admin import cluster_overview
from collectors.kafka.local_broker import BrokerError, LocalBroker
from tests.conftest import free_port
from tests.kafka_helpers import create_topic, produce

ROOT = Path(__file__).resolve().parents[3]


async def test_the_session_broker_serves_metadata(kafka_cluster) -> None:
    overview = await cluster_overview(kafka_cluster)
    assert overview.brokers and overview.cluster_id


async def test_topics_created_with_aiokafka_show_offsets_and_sizes(
    kafka_cluster, unique_topic
) -> None:
    await create_topic(kafka_cluster.bootstrap, unique_topic, partitions=3)
    for partition in (0, 1, 2, 0, 1):
        await produce(kafka_cluster.bootstrap, unique_topic, [(None, b"x" * 100, [])], partition)
    overview = await cluster_overview(kafka_cluster)
    topic = next(t for t in overview.topics if t.name == unique_topic)
    assert [p.end_offset for p in topic.partitions] == [2, 2, 1]
    assert topic.messages == 5
    assert topic.size_bytes and topic.size_bytes > 500


def test_start_refuses_a_taken_port(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(BrokerError, match=f"Port {port}"):
            local_broker.start(LocalBroker(data_dir=tmp_path, port=port), quiet=True)


def test_missing_java_is_a_clear_error(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(local_broker.shutil, "which", lambda name: None)
    with pytest.raises(BrokerError, match="Java is not installed"):
        local_broker.start(LocalBroker(data_dir=tmp_path, port=free_port()), quiet=True)


def test_missing_maven_is_a_clear_error(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EVENTSCOPE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(local_broker.shutil, "which", lambda name: None)
    with pytest.raises(BrokerError, match="Maven is not installed"):
        local_broker.resolve_jars("4.1.1", quiet=True)


def test_status_and_stop_of_a_broker_that_is_not_running(tmp_path: Path) -> None:
    args = ["--port", "1", "--data-dir", str(tmp_path)]
    status = subprocess.run(
        [sys.executable, "-m", "console.cli", "kafka", "status", *args],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    assert status.returncode == 1
    assert '"running": false' in status.stdout
    stop = subprocess.run(
        [sys.executable, "-m", "console.cli", "kafka", "stop", *args],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    assert stop.returncode == 0
    assert "No local Kafka is running" in stop.stdout


def test_stop_and_status_find_the_port_the_data_directory_last_used(tmp_path: Path) -> None:
    users = (("user", "secret"),)
    broker = local_broker.LocalBroker(data_dir=tmp_path, port=19_500, sasl_plain_users=users)
    broker.properties_file.write_text(local_broker._server_properties(broker), encoding="utf-8")
    assert local_broker.recorded_port(tmp_path) == 19_500  # not the SASL listener's
    assert local_broker.recorded_port(tmp_path / "never-used") is None
    status = subprocess.run(
        [sys.executable, "-m", "console.cli", "kafka", "status", "--data-dir", str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    assert '"bootstrap": "127.0.0.1:19500"' in status.stdout


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console.cli", "kafka", *args], capture_output=True, text=True,
        cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False,
    )  # fmt: skip


def test_start_with_a_relative_data_dir_from_another_folder(tmp_path: Path) -> None:
    port = str(free_port(span=2))
    started = _cli("start", "--port", port, "--data-dir", "here/kafka", cwd=tmp_path)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"data in {tmp_path / 'here' / 'kafka'}" in started.stdout
        printed = started.stdout + started.stderr
        assert "ERROR" not in printed and "Unable connect" not in printed, printed
        assert (tmp_path / "here" / "kafka" / "logs" / "meta.properties").is_file()
        status = _cli("status", "--data-dir", "here/kafka", cwd=tmp_path)
        assert status.returncode == 0 and '"ready": true' in status.stdout
    finally:
        stopped = _cli("stop", "--data-dir", "here/kafka", cwd=tmp_path)
    assert f"127.0.0.1:{port} stopped" in stopped.stdout


def test_a_broker_that_dies_at_start_names_its_log_and_the_cause(tmp_path: Path) -> None:
    broker = LocalBroker(data_dir=tmp_path / "kafka", port=free_port(span=2))
    with pytest.raises(BrokerError) as failure:
        local_broker.start(
            broker, extra_properties={"authorizer.class.name": "no.such.Authorizer"}, quiet=True
        )
    message = str(failure.value)
    assert f"Its log is {broker.log_file}" in message
    assert "ClassNotFoundException: no.such.Authorizer" in message
    assert "\tat " not in message  # stack frames are left out
    assert local_broker.running_pid(broker) is None


def test_data_dir_is_made_absolute_against_the_current_folder(monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    broker = LocalBroker(data_dir=Path("relative/kafka"))
    assert broker.data_dir == tmp_path / "relative" / "kafka"
    assert broker.log_file.is_absolute() and broker.properties_file.is_absolute()
