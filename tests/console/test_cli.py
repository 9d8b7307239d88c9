import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT):
    return subprocess.run(
        [sys.executable, "-m", "console.cli", *args],
        capture_output=True, text=True, cwd=cwd, env=env, check=False,
    )  # fmt: skip


def test_config_check_prints_effective_configuration_with_secrets_redacted(tmp_path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[clusters.prod]\nbootstrap = "k:9092"\nsecurity_protocol = "SASL_PLAINTEXT"\n'
        'sasl_mechanism = "PLAIN"\nsasl_username = "u"\nsasl_password = "s3cret"\n'
    )
    result = run("--config", str(config), "config", "check", env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert '"sasl_password": "***"' in result.stdout
    assert "s3cret" not in result.stdout


def test_invalid_configuration_exits_2_naming_the_key(tmp_path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[server]\nport = 0\n")
    result = run("--config", str(config), "config", "check", env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    assert "server.port" in result.stderr


def test_serve_refuses_auth_off_beyond_loopback(tmp_path) -> None:
    result = run(
        "serve", cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "EVENTSCOPE_AUTH": "off", "EVENTSCOPE_HOST": "0.0.0.0",
             "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert result.returncode == 2
    assert "EVENTSCOPE_AUTH" in result.stderr


def test_a_busy_otlp_port_is_one_clear_error_without_a_traceback(tmp_path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        result = run(
            "serve", cwd=tmp_path,
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
                 "EVENTSCOPE_OTLP_PORT": str(busy.getsockname()[1])},
        )  # fmt: skip
    assert result.returncode == 3
    assert "cannot listen for OTLP/HTTP" in result.stderr
    assert "in use" in result.stderr
    assert "Traceback" not in result.stderr


PLAIN_ENV = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}


def test_index_status_of_a_missing_index_says_so_and_creates_nothing(tmp_path) -> None:
    result = run("index", "status", cwd=tmp_path, env=PLAIN_ENV)
    assert result.returncode == 1
    assert f"no index at {tmp_path / 'eventscope.db'}" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_relative_config_and_index_paths_are_read_from_the_current_folder(tmp_path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "es.toml").write_text('[index]\nurl = "sqlite:///data/index.db"\n')
    env = PLAIN_ENV
    upgraded = run("--config", "conf/es.toml", "index", "upgrade", cwd=tmp_path, env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert (tmp_path / "data" / "index.db").is_file()
    status = run("--config", "conf/es.toml", "index", "status", cwd=tmp_path, env=env)
    assert status.returncode == 0 and '"up_to_date": true' in status.stdout


def test_config_check_redacts_the_schema_registry_credentials(tmp_path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[clusters.prod]\nbootstrap = "k:9092"\n[clusters.prod.schema_registry]\n'
        'url = "https://sr:8081"\nusername = "es"\npassword = "s3cret"\n'
    )
    result = run("--config", str(config), "config", "check", env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert '"url": "https://sr:8081"' in result.stdout
    assert '"password": "***"' in result.stdout
    assert "s3cret" not in result.stdout


def test_registry_status_and_stop_when_none_is_running(tmp_path) -> None:
    env = {"PATH": "/usr/bin:/bin"}
    data_dir = str(tmp_path / "registry")
    status = run("registry", "status", "--port", "1", "--data-dir", data_dir, env=env)
    assert status.returncode == 1
    assert '"running": false' in status.stdout and '"ready": false' in status.stdout
    stop = run("registry", "stop", "--data-dir", data_dir, env=env)
    assert stop.returncode == 0
    assert "No local schema registry is running" in stop.stdout


def test_a_wrong_log_format_is_a_clear_error() -> None:
    result = run("config", "check", env={**PLAIN_ENV, "EVENTSCOPE_LOG_FORMAT": "xml"})
    assert result.returncode == 2
    assert "EVENTSCOPE_LOG_FORMAT" in result.stderr and "text, json" in result.stderr
    assert "Traceback" not in result.stderr
    refused = run("--log-format", "xml", "config", "check", env=PLAIN_ENV)
    assert refused.returncode == 2 and "invalid choice" in refused.stderr
