"""A local Apache Kafka broker for trying eventscope out, for the demo and for the tests.

It is Kafka's own broker, a single KRaft node (broker and controller in one process) bound
to 127.0.0.1. The jars of `org.apache.kafka:kafka_2.13` and its runtime dependencies are
resolved from Maven Central with Maven into a cache folder on first use; the storage is
formatted once per data directory; the process runs detached with its pid in the data
directory so that `eventscope kafka stop` can find it from another shell. Resolving the
jars, writing the configuration (with the optional SASL listener) and the process's life
stay together: each step needs the others' paths and ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from collectors.cache import cache_dir
from collectors.local_process import (
    LocalServiceError,
    copy_dependencies,
    java_major_version,
    pid_from_file,
    port_is_free,
    spawn_detached,
    stop_pid,
    wait_for,
)

KAFKA_VERSION = os.environ.get("EVENTSCOPE_KAFKA_VERSION", "4.1.1")
SLF4J_BINDING = "org.apache.logging.log4j:log4j-slf4j-impl:2.24.3"
DEFAULT_PORT = 9092
READY_TIMEOUT_S = 90.0


class BrokerError(LocalServiceError):
    """A problem the user can act on; the message says what to do."""


@dataclass(frozen=True)
class LocalBroker:
    data_dir: Path
    port: int = DEFAULT_PORT
    # (name, password) pairs: when given, a SASL_PLAINTEXT listener with the PLAIN mechanism
    # accepts these users on `sasl_port`; the client port and the controller stay PLAINTEXT.
    sasl_plain_users: tuple[tuple[str, str], ...] = ()
    # ACLs enforced (KRaft's StandardAuthorizer): clients of the PLAINTEXT port (and the
    # controller) are super users; the SASL users are allowed what ACLs allow them.
    acls: bool = False

    def __post_init__(self) -> None:
        # Absolute from the start: the broker runs in its data directory, so a path relative
        # to the caller's directory would point elsewhere once handed to it.
        object.__setattr__(self, "data_dir", Path(self.data_dir).absolute())

    @property
    def controller_port(self) -> int:
        return self.port + 1

    @property
    def sasl_port(self) -> int | None:
        return self.port + 2 if self.sasl_plain_users else None

    @property
    def sasl_bootstrap(self) -> str | None:
        return f"127.0.0.1:{self.sasl_port}" if self.sasl_plain_users else None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "kafka.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "kafka.log"

    @property
    def properties_file(self) -> Path:
        return self.data_dir / "server.properties"


def default_data_dir() -> Path:
    return Path(".eventscope") / "kafka"


# --- resolving the jars -----------------------------------------------------------------


def resolve_jars(version: str = KAFKA_VERSION, *, quiet: bool = False) -> Path:
    """Return the folder holding the broker's jars, downloading them with Maven if needed."""
    libs = cache_dir() / f"kafka_2.13-{version}" / "libs"
    try:
        return copy_dependencies(libs, _pom(version), f"Apache Kafka {version}",
                                 "kafka_2.13-*.jar", quiet=quiet)  # fmt: skip
    except LocalServiceError as exc:
        raise BrokerError(str(exc)) from None


def _pom(version: str) -> str:
    group, artifact, binding_version = SLF4J_BINDING.split(":")
    return f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>eventscope.local</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{version}</version>
    </dependency>
    <dependency>
      <groupId>{group}</groupId><artifactId>{artifact}</artifactId>
      <version>{binding_version}</version>
    </dependency>
  </dependencies>
</project>
"""


# --- configuration and storage ----------------------------------------------------------

SASL_LISTENER = "SASL_PLAINTEXT"
_SASL_USER_NAME = re.compile(r"[A-Za-z0-9._@-]{1,128}")
_SASL_PASSWORD_FORBIDDEN = re.compile(r'["\\\r\n]')


def parse_sasl_user(text: str) -> tuple[str, str]:
    """`name:password` (the password may contain ':') -> (name, password), checked."""
    name, sep, password = text.partition(":")
    if not sep or not password:
        raise BrokerError(f"SASL user {name!r}: write it as name:password")
    check_sasl_user(name, password)
    return name, password


def check_sasl_user(name: str, password: str) -> None:
    if not _SASL_USER_NAME.fullmatch(name):
        raise BrokerError(f"SASL user name {name[:40]!r}: use 1-128 letters, digits and . _ @ -")
    if not password or _SASL_PASSWORD_FORBIDDEN.search(password):
        raise BrokerError(
            f"SASL user {name!r}: the password must be non-empty, without quotes, "
            "backslashes or line breaks"
        )


def _sasl_properties(broker: LocalBroker) -> dict[str, str]:
    """A SASL_PLAINTEXT listener with PLAIN users (Kafka's `listener.name.<l>.plain.*`)."""
    for name, password in broker.sasl_plain_users:
        check_sasl_user(name, password)
    users = " ".join(f'user_{name}="{password}"' for name, password in broker.sasl_plain_users)
    prefix = f"listener.name.{SASL_LISTENER.lower()}.plain"
    return {
        "sasl.enabled.mechanisms": "PLAIN",
        f"{prefix}.sasl.jaas.config": (
            f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};"
        ),
    }


def _server_properties(broker: LocalBroker, extra: dict[str, str] | None = None) -> str:
    data = broker.data_dir.resolve()
    listeners = {
        "PLAINTEXT": broker.port,
        "CONTROLLER": broker.controller_port,
    }
    if broker.sasl_port is not None:
        listeners[SASL_LISTENER] = broker.sasl_port
    client_listeners = [name for name in listeners if name != "CONTROLLER"]
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{broker.controller_port}",
        "listeners": ",".join(f"{name}://127.0.0.1:{port}" for name, port in listeners.items()),
        "advertised.listeners": ",".join(
            f"{name}://127.0.0.1:{listeners[name]}" for name in client_listeners
        ),
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": ",".join(
            f"{name}:{name if name == SASL_LISTENER else 'PLAINTEXT'}" for name in listeners
        ),
        "log.dirs": str(data / "logs"),
        "num.partitions": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "4",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "true",
        "log.retention.hours": "168",
    }
    if broker.sasl_port is not None:
        props.update(_sasl_properties(broker))
    if broker.acls:
        props.update({
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": "User:ANONYMOUS",
            "allow.everyone.if.no.acl.found": "false",
        })  # fmt: skip
    props.update(extra or {})
    return "".join(f"{key}={value}\n" for key, value in props.items())


LOG4J2_PROPERTIES = """status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.out.ref = OUT
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = info
"""


def _java_command(libs: Path, main_class: str, *args: str, heap: str = "512m") -> list[str]:
    java = shutil.which("java") or "java"
    log4j_config = libs.parent / "log4j2.properties"
    return [
        java, f"-Xmx{heap}", "-Xms128m", "-XX:+UseSerialGC", "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log4j_config}", "-cp", f"{libs}/*", main_class, *args,
    ]  # fmt: skip


def format_storage(broker: LocalBroker, libs: Path) -> None:
    """Format KRaft storage once; a data directory keeps its cluster id across restarts."""
    if (broker.data_dir / "logs" / "meta.properties").is_file():
        return
    (broker.data_dir / "logs").mkdir(parents=True, exist_ok=True)
    cluster_id_file = broker.data_dir / "cluster.id"
    if not cluster_id_file.is_file():
        result = subprocess.run(
            _java_command(libs, "kafka.tools.StorageTool", "random-uuid", heap="128m"),
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        lines = [line for line in result.stdout.split() if re.fullmatch(r"[\w-]{22}", line)]
        if result.returncode != 0 or not lines:
            raise BrokerError(f"Kafka's StorageTool failed: {result.stderr.strip()[-500:]}")
        cluster_id_file.write_text(lines[-1], encoding="utf-8")
    cluster_id = cluster_id_file.read_text(encoding="utf-8").strip()
    result = subprocess.run(
        _java_command(
            libs, "kafka.tools.StorageTool", "format", "-t", cluster_id,
            "-c", str(broker.properties_file), heap="256m",
        ),
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise BrokerError(f"Formatting Kafka storage failed: {result.stderr.strip()[-800:]}")


# --- lifecycle --------------------------------------------------------------------------


def recorded_port(data_dir: Path) -> int | None:
    """The client port the broker in `data_dir` was last started with (its
    server.properties), so that `stop` and `status` find it without being told again."""
    try:
        properties = (data_dir / "server.properties").read_text(encoding="utf-8")
    except OSError:
        return None
    for line in properties.splitlines():
        if line.startswith("listeners="):
            for listener in line.removeprefix("listeners=").split(","):
                if listener.startswith("PLAINTEXT://"):
                    port = listener.rpartition(":")[2]
                    return int(port) if port.isdigit() else None
    return None


def running_pid(broker: LocalBroker) -> int | None:
    return pid_from_file(broker.pid_file, b"kafka.Kafka")


def start(
    broker: LocalBroker,
    *,
    extra_properties: dict[str, str] | None = None,
    timeout_s: float = READY_TIMEOUT_S,
    quiet: bool = False,
) -> int:
    """Start the broker (or find it running) and wait until it serves metadata; return its pid."""
    pid = running_pid(broker)
    if pid is not None:
        wait_until_ready(broker.bootstrap, timeout_s)
        return pid
    try:
        major = java_major_version()
    except LocalServiceError as exc:
        raise BrokerError(str(exc)) from None
    if major < 17:
        raise BrokerError(f"Kafka 4 needs Java 17 or newer; found Java {major}.")
    for port in (broker.port, broker.controller_port, broker.sasl_port):
        if port is not None and not port_is_free(port):
            raise BrokerError(
                f"Port {port} on 127.0.0.1 is already in use; choose another with --port "
                f"(the controller uses --port + 1, a SASL listener --port + 2)."
            )
    libs = resolve_jars(quiet=quiet)
    (libs.parent / "log4j2.properties").write_text(LOG4J2_PROPERTIES, encoding="utf-8")
    broker.data_dir.mkdir(parents=True, exist_ok=True)
    broker.properties_file.write_text(
        _server_properties(broker, extra_properties), encoding="utf-8"
    )
    format_storage(broker, libs)
    pid = spawn_detached(
        _java_command(libs, "kafka.Kafka", str(broker.properties_file)),
        cwd=broker.data_dir, log_file=broker.log_file,
    )  # fmt: skip
    broker.pid_file.write_text(str(pid), encoding="utf-8")
    try:
        wait_until_ready(
            broker.bootstrap, timeout_s, pid=pid, log_file=broker.log_file,
            on_wait=None if quiet else _print_wait,
        )  # fmt: skip
    except BrokerError:
        stop(broker)
        raise
    return pid


def _print_wait(waited_s: float) -> None:
    print(f"  Kafka is starting ({waited_s:.0f} s) ...", flush=True)


def wait_until_ready(
    bootstrap: str,
    timeout_s: float,
    *,
    pid: int | None = None,
    log_file: Path | None = None,
    on_wait: Callable[[float], None] | None = None,
) -> None:
    """Wait until the broker serves metadata. `on_wait` hears every 5 s how long it has been.

    Until the port accepts connections, only a TCP connect is tried: the Kafka client would
    log an error for every refused attempt, which reads like a failure while it is not.
    """

    def ready() -> bool:
        try:
            return _accepts_connections(bootstrap) and asyncio.run(_serves_metadata(bootstrap))
        except Exception:  # any failure here just means "not yet"
            return False

    try:
        wait_for(
            ready, timeout_s, what=f"Kafka at {bootstrap}", pid=pid, log_file=log_file,
            on_wait=on_wait,
        )  # fmt: skip
    except LocalServiceError as exc:
        raise BrokerError(str(exc)) from None


def _accepts_connections(bootstrap: str) -> bool:
    host, _, port = bootstrap.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            return True
    except OSError:
        return False


async def _serves_metadata(bootstrap: str) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    client_log = logging.getLogger("aiokafka")
    level = client_log.level
    client_log.setLevel(logging.CRITICAL)  # "not ready yet" is the expected answer here
    try:
        await asyncio.wait_for(admin.start(), 5)
        cluster = await asyncio.wait_for(admin.describe_cluster(), 5)
        return bool(cluster.get("brokers"))
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
        client_log.setLevel(level)


def stop(broker: LocalBroker, timeout_s: float = 30.0) -> bool:
    """Stop the broker cleanly (SIGTERM, then SIGKILL after timeout_s); False if not running."""
    pid = running_pid(broker)
    if pid is not None:
        stop_pid(pid, timeout_s)
    broker.pid_file.unlink(missing_ok=True)
    return pid is not None


def status(broker: LocalBroker) -> dict[str, object]:
    pid = running_pid(broker)
    ready = False
    if pid is not None:
        with contextlib.suppress(Exception):
            ready = asyncio.run(_serves_metadata(broker.bootstrap))
    return {
        "running": pid is not None,
        "pid": pid,
        "ready": ready,
        "bootstrap": broker.bootstrap,
        "data_dir": str(broker.data_dir),
        "version": KAFKA_VERSION,
    }
