"""A local Kafka Connect worker for trying eventscope out, for the demo and for the tests.

It is Apache Kafka's own distributed worker (`ConnectDistributed`), the same version as the
local broker, with the file connectors (`FileStreamSource`, `FileStreamSink`) on its class
path. Its jars come from Maven Central into the cache folder on first use; its properties
are written into the data directory; it runs detached with its pid there, like the broker,
so `eventscope connect stop` finds it from another shell. Its REST API answers 404 for a
few seconds after the port opens, so "ready" means `GET /` returns the worker's version.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from collectors.cache import cache_dir
from collectors.kafka.local_broker import KAFKA_VERSION, LOG4J2_PROPERTIES, SLF4J_BINDING
from collectors.local_process import (
    LocalServiceError,
    copy_dependencies,
    find_java,
    pid_from_file,
    port_is_free,
    spawn_detached,
    stop_pid,
    wait_for,
)

DEFAULT_PORT = 8083
READY_TIMEOUT_S = 120.0
MAIN_CLASS = "org.apache.kafka.connect.cli.ConnectDistributed"
ARTIFACTS = ("connect-runtime", "connect-file", "connect-json")


class ConnectStartError(LocalServiceError):
    """The local worker could not be fetched or started; the message says why."""


@dataclass(frozen=True)
class LocalConnect:
    data_dir: Path
    bootstrap: str
    port: int = DEFAULT_PORT

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir).absolute())

    @property
    def url(self) -> str:
        """What `clusters.<name>.connect.url` should say."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def group_id(self) -> str:
        """One Connect cluster per port: its group and storage topics carry the port, so two
        local workers on one broker stay apart."""
        return f"eventscope-connect-{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "connect.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "connect.log"

    @property
    def properties_file(self) -> Path:
        return self.data_dir / "worker.properties"


def default_data_dir() -> Path:
    return Path(".eventscope") / "connect"


def recorded(data_dir: Path) -> tuple[int, str] | None:
    """(port, bootstrap) the worker in `data_dir` was last started with."""
    try:
        text = (Path(data_dir).absolute() / "worker.properties").read_text(encoding="utf-8")
    except OSError:
        return None
    props = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    port = props.get("listeners", "").rpartition(":")[2]
    if not port.isdigit() or "bootstrap.servers" not in props:
        return None
    return int(port), props["bootstrap.servers"]


def resolve_jars(version: str = KAFKA_VERSION, *, quiet: bool = False) -> Path:
    """The folder holding the worker's jars, resolved with Maven on first use (~55 MB)."""
    libs = cache_dir() / f"kafka-connect-{version}" / "libs"
    try:
        return copy_dependencies(libs, _pom(version), f"Kafka Connect {version}",
                                 "connect-runtime-*.jar", quiet=quiet)  # fmt: skip
    except LocalServiceError as exc:
        raise ConnectStartError(str(exc)) from None


def _pom(version: str) -> str:
    group, artifact, binding_version = SLF4J_BINDING.split(":")
    kafka = "".join(
        f"""    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>{name}</artifactId>
      <version>{version}</version>
    </dependency>
"""
        for name in ARTIFACTS
    )
    return f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>eventscope.local</groupId>
  <artifactId>connect-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
{kafka}    <dependency>
      <groupId>{group}</groupId><artifactId>{artifact}</artifactId>
      <version>{binding_version}</version>
    </dependency>
  </dependencies>
</project>
"""


def worker_properties(worker: LocalConnect) -> str:
    group = worker.group_id
    props = {
        "bootstrap.servers": worker.bootstrap,
        "group.id": group,
        "listeners": f"http://127.0.0.1:{worker.port}",
        "rest.advertised.host.name": "127.0.0.1",
        "rest.advertised.port": str(worker.port),
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
        "config.storage.topic": f"_{group}-configs",
        "offset.storage.topic": f"_{group}-offsets",
        "status.storage.topic": f"_{group}-status",
        "config.storage.replication.factor": "1",
        "offset.storage.replication.factor": "1",
        "status.storage.replication.factor": "1",
        "offset.storage.partitions": "1",
        "status.storage.partitions": "1",
        "offset.flush.interval.ms": "1000",
        # The connectors are on the class path; scanning only it keeps start-up short.
        "plugin.discovery": "only_scan",
    }
    return "".join(f"{key}={value}\n" for key, value in props.items())


def _command(java: str, libs: Path, worker: LocalConnect) -> list[str]:
    log4j_config = libs.parent / "log4j2.properties"
    return [
        java, "-Xmx512m", "-Xms128m", "-XX:+UseSerialGC", "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log4j_config}", "-cp", f"{libs}/*", MAIN_CLASS,
        str(worker.properties_file),
    ]  # fmt: skip


def running_pid(worker: LocalConnect) -> int | None:
    return pid_from_file(worker.pid_file, MAIN_CLASS.encode())


def version(worker: LocalConnect) -> str | None:
    """The worker's version once its REST API serves (`GET /`), else None."""
    try:
        with urllib.request.urlopen(worker.url + "/", timeout=2) as response:  # noqa: S310
            body = json.loads(response.read(4096))
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return str(body["version"]) if isinstance(body, dict) and "version" in body else None


def start(worker: LocalConnect, *, timeout_s: float = READY_TIMEOUT_S, quiet: bool = False) -> int:
    """Start the worker (or find it running) and wait until its REST API serves."""
    pid = running_pid(worker)
    if pid is None:
        java = find_java(17, "Kafka Connect")
        if not port_is_free(worker.port):
            raise ConnectStartError(
                f"Port {worker.port} on 127.0.0.1 is already in use; choose another with --port."
            )
        libs = resolve_jars(quiet=quiet)
        (libs.parent / "log4j2.properties").write_text(LOG4J2_PROPERTIES, encoding="utf-8")
        worker.data_dir.mkdir(parents=True, exist_ok=True)
        worker.properties_file.write_text(worker_properties(worker), encoding="utf-8")
        pid = spawn_detached(_command(java, libs, worker), worker.data_dir, worker.log_file)
        worker.pid_file.write_text(str(pid), encoding="utf-8")
    on_wait: Callable[[float], None] | None = None
    if not quiet:
        on_wait = lambda waited: print(  # noqa: E731
            f"  Kafka Connect is starting ({waited:.0f} s) ...", flush=True
        )
    try:
        wait_for(
            lambda: version(worker) is not None, timeout_s,
            what=f"Kafka Connect at {worker.url}", pid=pid, log_file=worker.log_file,
            on_wait=on_wait,
        )  # fmt: skip
    except LocalServiceError as exc:
        stop(worker)
        raise ConnectStartError(str(exc)) from None
    return pid


def stop(worker: LocalConnect, timeout_s: float = 30.0) -> bool:
    """Stop the worker (SIGTERM, then SIGKILL); False if it was not running."""
    pid = running_pid(worker)
    if pid is not None:
        stop_pid(pid, timeout_s)
    worker.pid_file.unlink(missing_ok=True)
    return pid is not None


def status(worker: LocalConnect) -> dict[str, object]:
    pid = running_pid(worker)
    found = version(worker) if pid is not None else None
    return {
        "running": pid is not None,
        "pid": pid,
        "ready": found is not None,
        "version": found,
        "url": worker.url,
        "bootstrap": worker.bootstrap,
        "data_dir": str(worker.data_dir),
    }
