"""A local schema registry for trying eventscope out, for the demo and for the tests.

Apicurio Registry (Apache 2.0, on Maven Central) serves the Confluent-compatible API
under `/apis/ccompat/v7`: the `io.apicurio:apicurio-registry-app` distribution is fetched
with Maven once into the cache folder and run with a Java 21+ runtime, bound to 127.0.0.1,
its schemas kept in an H2 database file in the data directory (so they survive a
restart, as a real registry's do). Like the local broker it runs detached with its pid in
the data directory, so `eventscope registry stop` finds it from another shell.
"""

from __future__ import annotations

import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from collectors.cache import cache_dir
from collectors.local_process import (
    LocalServiceError,
    find_java,
    pid_from_file,
    port_is_free,
    run_maven,
    spawn_detached,
    stop_pid,
    wait_for,
)

REGISTRY_VERSION = os.environ.get("EVENTSCOPE_REGISTRY_VERSION", "3.3.3")
DEFAULT_PORT = 8081
READY_TIMEOUT_S = 120.0
JAVA_MINIMUM = 21
API_PATH = "/apis/ccompat/v7"
MAVEN_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"


class RegistryStartError(LocalServiceError):
    """The local registry could not be fetched or started; the message says why."""


@dataclass(frozen=True)
class LocalRegistry:
    data_dir: Path
    port: int = DEFAULT_PORT

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir).absolute())

    @property
    def management_port(self) -> int:
        """Health checks are served here (Quarkus's management interface)."""
        return self.port + 1

    @property
    def url(self) -> str:
        """What `clusters.<name>.schema_registry.url` should say."""
        return f"http://127.0.0.1:{self.port}{API_PATH}"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "registry.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "registry.log"

    @property
    def port_file(self) -> Path:
        return self.data_dir / "registry.port"


def default_data_dir() -> Path:
    return Path(".eventscope") / "registry"


def recorded_port(data_dir: Path) -> int | None:
    """The port the registry in `data_dir` was last started on."""
    try:
        text = (Path(data_dir).absolute() / "registry.port").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def resolve_distribution(version: str = REGISTRY_VERSION, *, quiet: bool = False) -> Path:
    """The folder holding `quarkus-run.jar`, fetched with Maven on first use (~170 MB)."""
    home = cache_dir() / f"apicurio-registry-{version}"
    marker = home / ".complete"
    if marker.is_file():
        return home
    if not quiet:
        print(f"Fetching Apicurio Registry {version} from Maven Central (first use only)...")
    staging = home.parent / f"{home.name}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    # The dependency plugin's own default (2.8) truncates some file names in this archive.
    goal = [f"{MAVEN_DEPENDENCY_PLUGIN}:unpack-dependencies", f"-DoutputDirectory={staging}"]
    try:
        run_maven(_pom(version), goal, f"Apicurio Registry {version}", home.parent)
    except LocalServiceError as exc:
        raise RegistryStartError(str(exc)) from None
    runner = next(staging.rglob("quarkus-run.jar"), None)
    if runner is None:
        raise RegistryStartError(f"Apicurio Registry {version} unpacked without quarkus-run.jar")
    (runner.parent / ".complete").write_text(version, encoding="utf-8")
    if home.exists():
        shutil.rmtree(home)
    runner.parent.rename(home)
    shutil.rmtree(staging, ignore_errors=True)
    return home


def _pom(version: str) -> str:
    return f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>eventscope.local</groupId>
  <artifactId>registry-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>io.apicurio</groupId><artifactId>apicurio-registry-app</artifactId>
      <version>{version}</version><type>tar.gz</type><classifier>all</classifier>
      <exclusions><exclusion><groupId>*</groupId><artifactId>*</artifactId></exclusion></exclusions>
    </dependency>
  </dependencies>
</project>
"""


def _command(java: str, home: Path, registry: LocalRegistry) -> list[str]:
    database = registry.data_dir / "db" / "registry"
    return [
        java, "-Xmx512m", "-XX:+UseSerialGC", "-Djava.awt.headless=true",
        "-Dquarkus.http.host=127.0.0.1", f"-Dquarkus.http.port={registry.port}",
        "-Dquarkus.management.host=127.0.0.1",
        f"-Dquarkus.management.port={registry.management_port}",
        f"-Dapicurio.datasource.url=jdbc:h2:file:{database}",
        "-Dapicurio.datasource.jdbc.initial-size=2", "-Dapicurio.datasource.jdbc.min-size=2",
        "-Dquarkus.log.level=WARN", "-Dquarkus.banner.enabled=false",
        "-jar", str(home / "quarkus-run.jar"),
    ]  # fmt: skip


def running_pid(registry: LocalRegistry) -> int | None:
    return pid_from_file(registry.pid_file, b"quarkus-run.jar")


def is_ready(registry: LocalRegistry) -> bool:
    """True when the registry says it is ready and its API answers."""
    for url in (
        f"http://127.0.0.1:{registry.management_port}/health/ready",
        f"{registry.url}/subjects",
    ):
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback)
                if response.status != 200:
                    return False
        except (urllib.error.URLError, OSError):
            return False
    return True


def start(
    registry: LocalRegistry, *, timeout_s: float = READY_TIMEOUT_S, quiet: bool = False
) -> int:
    """Start the registry (or find it running) and wait until it answers; return its pid."""
    pid = running_pid(registry)
    if pid is None:
        java = find_java(JAVA_MINIMUM, "Apicurio Registry")
        for port in (registry.port, registry.management_port):
            if not port_is_free(port):
                raise RegistryStartError(
                    f"Port {port} on 127.0.0.1 is already in use; choose another with --port "
                    "(the health checks use --port + 1)."
                )
        home = resolve_distribution(quiet=quiet)
        registry.data_dir.mkdir(parents=True, exist_ok=True)
        pid = spawn_detached(_command(java, home, registry), registry.data_dir, registry.log_file)
        registry.pid_file.write_text(str(pid), encoding="utf-8")
        registry.port_file.write_text(str(registry.port), encoding="utf-8")
    on_wait: Callable[[float], None] | None = None
    if not quiet:
        on_wait = lambda waited: print(  # noqa: E731
            f"  the schema registry is starting ({waited:.0f} s) ...", flush=True
        )
    try:
        wait_for(
            lambda: is_ready(registry), timeout_s, what=f"The schema registry at {registry.url}",
            pid=pid, log_file=registry.log_file, on_wait=on_wait,
        )  # fmt: skip
    except LocalServiceError as exc:
        stop(registry)
        raise RegistryStartError(str(exc)) from None
    return pid


def stop(registry: LocalRegistry, timeout_s: float = 30.0) -> bool:
    """Stop the registry (SIGTERM, then SIGKILL); False if it was not running."""
    pid = running_pid(registry)
    if pid is not None:
        stop_pid(pid, timeout_s)
    registry.pid_file.unlink(missing_ok=True)
    return pid is not None


def status(registry: LocalRegistry) -> dict[str, object]:
    pid = running_pid(registry)
    return {
        "running": pid is not None,
        "pid": pid,
        "ready": pid is not None and is_ready(registry),
        "url": registry.url,
        "data_dir": str(registry.data_dir),
        "version": REGISTRY_VERSION,
    }
