"""Effective configuration: a TOML file, then environment variables on top.

Both halves of eventscope (collectors and console) read the same settings, so they live
in the lower layer. Every key is validated here, except the rules of `[alerts]` and
`[masking]`, which are console code and checked by console/settings.py; a bad key raises
`ConfigError` naming it, which the CLI turns into exit code 2.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from collectors.kafka.lag_health import HealthSettings, TimeLagThresholds

DEFAULT_CONFIG_FILE = "eventscope.toml"
DEFAULT_INDEX_URL = "sqlite:///eventscope.db"
DEFAULT_CLUSTER = "default"

SECRET_WORDS = ("password", "secret", "token", "key_pem")


class ConfigError(ValueError):
    """Invalid configuration; `key` is the dotted name of the offending setting."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


@dataclass(frozen=True)
class SchemaRegistryConfig:
    """A Confluent-compatible schema registry (Confluent, Apicurio's ccompat API, Redpanda,
    Karapace): basic auth or a bearer token, TLS checked against `ca_file` if given."""

    url: str
    username: str | None = None
    password: str | None = None
    token: str | None = None
    ca_file: str | None = None
    verify: bool = True
    timeout_s: float = 5.0


@dataclass(frozen=True)
class ConnectConfig:
    """A Kafka Connect cluster writing to or reading from this Kafka cluster: its REST API,
    basic auth, TLS checked against `ca_file` if given."""

    name: str
    url: str
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    verify: bool = True
    timeout_s: float = 10.0


@dataclass(frozen=True)
class SchemaFileConfig:
    """A schema for one part (value or key) of one topic's records, read from a file, for
    records written without a registry: an Avro schema (.avsc) or a Protobuf descriptor set
    (`protoc --descriptor_set_out`, with `--include_imports`) and the message's full name."""

    avro: str | None = None
    protobuf: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class TopicSchemasConfig:
    value: SchemaFileConfig | None = None
    key: SchemaFileConfig | None = None


@dataclass(frozen=True)
class ClusterConfig:
    name: str
    bootstrap: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    include: tuple[str, ...] = (".*",)
    exclude: tuple[str, ...] = ()
    schema_registry: SchemaRegistryConfig | None = None
    topic_schemas: Mapping[str, TopicSchemasConfig] = field(default_factory=dict)
    connect: tuple[ConnectConfig, ...] = ()

    def connect_cluster(self, name: str) -> ConnectConfig:
        """The Connect cluster `name`; KeyError when none has that name."""
        for connect in self.connect:
            if connect.name == name:
                return connect
        raise KeyError(name)


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8600
    auth: str = "on"
    external_url: str | None = None
    trusted_proxy_header: str | None = None  # e.g. "X-Forwarded-User" behind an SSO proxy
    proxy_default_role: str = "viewer"
    otlp_port: int = 0  # a separate OTLP/HTTP listener (4318 by convention); 0: none
    otlp_host: str | None = None  # None: the same address as `host`
    # Event searches run at most this many at once; this many more may wait, the rest
    # are answered 429 at once; a search's statements stop after search_timeout_s.
    search_concurrency: int = 2
    search_queue: int = 4
    search_timeout_s: float = 10.0
    # A connection must send a request's headers within this long of opening (or of the
    # request's first byte); connections beyond max_connections are closed at once.
    header_timeout_s: float = 10.0
    max_connections: int = 4096
    # /healthz on a port of its own, answered by a thread (console/health_listener.py);
    # it answers 503 once the event loop has not turned for loop_stall_s.
    health_port: int = 0
    loop_stall_s: float = 10.0

    @property
    def otlp_bind_host(self) -> str:
        return self.otlp_host or self.host


@dataclass(frozen=True)
class IndexConfig:
    url: str = DEFAULT_INDEX_URL


@dataclass(frozen=True)
class CollectorConfig:
    value_cap: int = 1_048_576
    batch_max_records: int = 2_500
    batch_max_wait_ms: int = 200
    group_id: str = "eventscope-collector"
    retention_max_age_s: float = 7 * 86_400.0  # 0 keeps events forever
    retention_max_bytes: int = 0  # 0 means no size cap
    retention_unfinished_sagas_s: float = 30 * 86_400.0  # 0 keeps them forever
    writer: str = "process"  # "process": index writes in a child process; "thread": in-process
    stall_after_s: float = 30.0  # a write not done after this long makes readiness false
    # How long the broker waits before it gives a silent collector's partitions to another
    # (Kafka's session.timeout.ms; the broker bounds it by group.min/max.session.timeout.ms).
    session_timeout_ms: int = 10_000


@dataclass(frozen=True)
class LagConfig:
    interval_s: float = 10.0
    window: int = 10
    allowed_lag: int = 0
    raw_retention_s: float = 86_400.0
    rollup_retention_s: float = 30 * 86_400.0
    time_lag_warn_s: float = 10.0  # 0: no time-lag warning
    time_lag_err_s: float = 60.0  # 0: no time-lag error
    hold_s: float = 120.0  # a better status shows only after this long without a worse one
    # group id or shell pattern -> {time_lag_warn_s, time_lag_err_s}
    groups: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Settings:
    server: ServerConfig = field(default_factory=ServerConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    collector: CollectorConfig = field(default_factory=CollectorConfig)
    lag: LagConfig = field(default_factory=LagConfig)
    clusters: tuple[ClusterConfig, ...] = ()
    conventions: Mapping[str, Any] = field(default_factory=dict)
    sagas: Mapping[str, Any] = field(default_factory=dict)
    alerts: Mapping[str, Any] = field(default_factory=dict)
    masking: Mapping[str, Any] = field(default_factory=dict)
    event_health: Mapping[str, Any] = field(default_factory=dict)
    source: str | None = None

    def cluster(self, name: str) -> ClusterConfig:
        for cluster in self.clusters:
            if cluster.name == name:
                return cluster
        raise KeyError(name)


SectionT = TypeVar("SectionT")

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def load_settings(
    config_path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Read the TOML file (explicit path, else ./eventscope.toml if present) and the environment."""
    env = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    source: str | None = None
    if config_path is None and env.get("EVENTSCOPE_CONFIG"):
        config_path = env["EVENTSCOPE_CONFIG"]
    if config_path is not None:
        path = Path(config_path)
        if not path.is_file():
            raise ConfigError("--config", f"file not found: {path}")
        raw, source = _read_toml(path), str(path)
    elif Path(DEFAULT_CONFIG_FILE).is_file():
        raw, source = _read_toml(Path(DEFAULT_CONFIG_FILE)), DEFAULT_CONFIG_FILE
    settings = settings_from_mapping(raw)
    settings = _apply_environment(settings, env)
    _check_combinations(settings, env)
    return replace(settings, source=source)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read: {exc}") from exc


def settings_from_mapping(raw: Mapping[str, Any]) -> Settings:
    known = {"server", "index", "collector", "lag", "clusters", "conventions", "sagas", "alerts",
             "masking", "event_health"}  # fmt: skip
    for key in raw:
        if key not in known:
            raise ConfigError(key, f"unknown section (known: {', '.join(sorted(known))})")
    clusters_raw = raw.get("clusters", {})
    if not isinstance(clusters_raw, Mapping):
        raise ConfigError("clusters", "must be a table of named clusters")
    clusters = tuple(_cluster_from_mapping(name, body) for name, body in clusters_raw.items())
    conventions = raw.get("conventions", {})
    if not isinstance(conventions, Mapping):
        raise ConfigError("conventions", "must be a table")
    sagas = raw.get("sagas", {})
    if not isinstance(sagas, Mapping):
        raise ConfigError("sagas", "must be a table")
    alerts = raw.get("alerts", {})
    if not isinstance(alerts, Mapping):
        raise ConfigError("alerts", "must be a table")
    masking = raw.get("masking", {})
    if not isinstance(masking, Mapping):
        raise ConfigError("masking", "must be a table")
    event_health = raw.get("event_health", {})
    if not isinstance(event_health, Mapping):
        raise ConfigError("event_health", "must be a table")
    settings = Settings(
        server=_section(ServerConfig, "server", raw.get("server", {})),
        index=_section(IndexConfig, "index", raw.get("index", {})),
        collector=_section(CollectorConfig, "collector", raw.get("collector", {})),
        lag=_section(LagConfig, "lag", raw.get("lag", {})),
        clusters=clusters,
        conventions=dict(conventions),
        sagas=dict(sagas),
        alerts=dict(alerts),
        masking=dict(masking),
        event_health=dict(event_health),
    )
    _validate(settings)
    return settings


def _section(
    cls: type[SectionT], prefix: str, body: Any, fixed: Mapping[str, Any] | None = None
) -> SectionT:
    if not isinstance(body, Mapping):
        raise ConfigError(prefix, "must be a table")
    allowed = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, value in body.items():
        if key not in allowed or key == "name":
            raise ConfigError(f"{prefix}.{key}", f"unknown key (known: {', '.join(allowed)})")
        values[key] = _coerce(f"{prefix}.{key}", allowed[key].type, value)
    return cls(**values, **(fixed or {}))


def _cluster_from_mapping(name: str, body: Any) -> ClusterConfig:
    prefix = f"clusters.{name}"
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(prefix, "cluster names use letters, digits, '-' and '_'")
    if not isinstance(body, Mapping):
        raise ConfigError(prefix, "must be a table")
    if "bootstrap" not in body:
        raise ConfigError(f"{prefix}.bootstrap", "missing (host:port[,host:port...])")
    nested = ("schema_registry", "topic_schemas", "connect")
    plain = {k: v for k, v in body.items() if k not in nested}
    fixed: dict[str, Any] = {"name": name}
    if "connect" in body:
        fixed["connect"] = _connect(f"{prefix}.connect", body["connect"])
    if "schema_registry" in body:
        fixed["schema_registry"] = _schema_registry(f"{prefix}.schema_registry", body)
    if "topic_schemas" in body:
        fixed["topic_schemas"] = _topic_schemas(f"{prefix}.topic_schemas", body["topic_schemas"])
    return _section(ClusterConfig, prefix, plain, fixed=fixed)


def _schema_registry(prefix: str, cluster_body: Mapping[str, Any]) -> SchemaRegistryConfig:
    body = cluster_body["schema_registry"]
    if isinstance(body, str):
        body = {"url": body}  # the short form: schema_registry = "http://..."
    if not isinstance(body, Mapping) or "url" not in body:
        raise ConfigError(f"{prefix}.url", "missing (http[s]://host:port[/path])")
    return _section(SchemaRegistryConfig, prefix, body)


def _connect(prefix: str, body: Any) -> tuple[ConnectConfig, ...]:
    """`connect = "http://..."` (one cluster named "connect") or a list of tables."""
    if isinstance(body, str):
        body = [{"name": "connect", "url": body}]
    if isinstance(body, Mapping):
        body = [body]
    if not isinstance(body, list):
        raise ConfigError(prefix, "must be a URL or a list of tables with `name` and `url`")
    found: list[ConnectConfig] = []
    for number, item in enumerate(body):
        where = f"{prefix}[{number}]"
        if not isinstance(item, Mapping) or "url" not in item:
            raise ConfigError(f"{where}.url", "missing (http[s]://host:port)")
        name = item.get("name", "connect" if len(body) == 1 else None)
        if not isinstance(name, str):
            raise ConfigError(f"{where}.name", "missing: each Connect cluster needs a name")
        rest = {key: value for key, value in item.items() if key != "name"}
        found.append(_section(ConnectConfig, where, rest, fixed={"name": name}))
    return tuple(found)


def _topic_schemas(prefix: str, body: Any) -> dict[str, TopicSchemasConfig]:
    if not isinstance(body, Mapping):
        raise ConfigError(prefix, "must be a table of topic names")
    topics: dict[str, TopicSchemasConfig] = {}
    for topic, parts in body.items():
        where = f"{prefix}.{topic}"
        if not isinstance(parts, Mapping):
            raise ConfigError(where, "must be a table with `value` and/or `key`")
        unknown = set(parts) - {"value", "key"}
        if unknown:
            raise ConfigError(f"{where}.{sorted(unknown)[0]}", "unknown key (known: value, key)")
        topics[topic] = TopicSchemasConfig(
            **{part: _section(SchemaFileConfig, f"{where}.{part}", spec)
               for part, spec in parts.items()}
        )  # fmt: skip
    return topics


def _coerce(key: str, annotation: Any, value: Any) -> Any:
    text = str(annotation)
    if text.startswith("bool"):
        if not isinstance(value, bool):
            raise ConfigError(key, f"must be true or false, got {value!r}")
        return value
    if "tuple" in text:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(key, "must be a list of strings")
        return tuple(value)
    if text.startswith("int"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"must be an integer, got {value!r}")
        return value
    if text.startswith("float"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(key, f"must be a number, got {value!r}")
        return float(value)
    if text.startswith("str"):
        if value is None and "None" in text:
            return None
        if not isinstance(value, str):
            raise ConfigError(key, f"must be a string, got {value!r}")
        return value
    return value


def _validate(settings: Settings) -> None:
    server = settings.server
    if not 0 < server.port < 65536:
        raise ConfigError("server.port", f"must be 1-65535, got {server.port}")
    if not 0 <= server.otlp_port < 65536:
        message = f"must be 1-65535, or 0 for no OTLP listener, got {server.otlp_port}"
        raise ConfigError("server.otlp_port", message)
    if server.otlp_port and server.otlp_port == server.port:
        raise ConfigError("server.otlp_port", f"must differ from server.port ({server.port})")
    if not 0 <= server.health_port < 65536:
        raise ConfigError("server.health_port", "must be 1-65535, or 0 for none")
    if server.health_port and server.health_port in (server.port, server.otlp_port):
        raise ConfigError("server.health_port", "must differ from server.port and otlp_port")
    if server.proxy_default_role not in ("viewer", "operator", "admin"):
        raise ConfigError("server.proxy_default_role", "must be viewer, operator or admin")
    if server.auth not in ("on", "off"):
        raise ConfigError("server.auth", f"must be 'on' or 'off', got {server.auth!r}")
    for key in ("search_concurrency", "max_connections"):
        if getattr(server, key) < 1:
            raise ConfigError(f"server.{key}", "must be >= 1")
    if server.search_queue < 0:
        raise ConfigError("server.search_queue", "must be >= 0")
    for key in ("search_timeout_s", "header_timeout_s", "loop_stall_s"):
        if not getattr(server, key) > 0:
            raise ConfigError(f"server.{key}", "must be > 0")
    url = settings.index.url
    if not (url.startswith("sqlite:///") or url.startswith("postgresql")):
        raise ConfigError("index.url", "must start with sqlite:/// or postgresql+psycopg://")
    collector = settings.collector
    if collector.value_cap < 1:
        raise ConfigError("collector.value_cap", "must be >= 1")
    if collector.retention_max_age_s < 0 or collector.retention_max_bytes < 0:
        raise ConfigError("collector.retention_max_age_s", "retention limits must be >= 0")
    if collector.retention_unfinished_sagas_s < 0:
        raise ConfigError("collector.retention_unfinished_sagas_s", "must be >= 0")
    if collector.writer not in ("process", "thread"):
        raise ConfigError("collector.writer", f"'process' or 'thread', not {collector.writer!r}")
    if not collector.stall_after_s > 0:
        raise ConfigError("collector.stall_after_s", "must be > 0")
    if collector.batch_max_records < 1:
        raise ConfigError("collector.batch_max_records", "must be >= 1")
    if not 1_000 <= collector.session_timeout_ms <= 1_800_000:
        raise ConfigError("collector.session_timeout_ms", "must be between 1000 and 1800000")
    _check_conventions(settings.conventions)
    _check_sagas(settings.sagas)
    if settings.lag.interval_s <= 0:
        raise ConfigError("lag.interval_s", "must be > 0")
    if settings.lag.window < 2:
        raise ConfigError("lag.window", "must be >= 2")
    lag_health_settings(settings.lag)
    seen: set[str] = set()
    for cluster in settings.clusters:
        prefix = f"clusters.{cluster.name}"
        if cluster.name in seen:
            raise ConfigError(prefix, "defined twice")
        seen.add(cluster.name)
        _check_bootstrap(f"{prefix}.bootstrap", cluster.bootstrap)
        if cluster.security_protocol not in SECURITY_PROTOCOLS:
            raise ConfigError(
                f"{prefix}.security_protocol", f"must be one of {', '.join(SECURITY_PROTOCOLS)}"
            )
        if cluster.security_protocol.startswith("SASL"):
            if cluster.sasl_mechanism not in SASL_MECHANISMS:
                raise ConfigError(
                    f"{prefix}.sasl_mechanism", f"must be one of {', '.join(SASL_MECHANISMS)}"
                )
            if not cluster.sasl_username or cluster.sasl_password is None:
                raise ConfigError(f"{prefix}.sasl_username", "SASL needs a username and password")
        if cluster.schema_registry is not None:
            _check_schema_registry(f"{prefix}.schema_registry", cluster.schema_registry)
        _check_connect(f"{prefix}.connect", cluster.connect)
        for topic, parts in cluster.topic_schemas.items():
            for part in ("value", "key"):
                spec = getattr(parts, part)
                if spec is not None:
                    _check_schema_file(f"{prefix}.topic_schemas.{topic}.{part}", spec)


def _check_schema_registry(prefix: str, registry: SchemaRegistryConfig) -> None:
    parts = urlsplit(registry.url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"{prefix}.url", f"expected http[s]://host:port[/path], got {registry.url!r}"
        )
    if registry.token and registry.username:
        raise ConfigError(f"{prefix}.token", "give either a token or username and password")
    if registry.password is not None and not registry.username:
        raise ConfigError(f"{prefix}.username", "a password needs a username")
    if registry.timeout_s <= 0:
        raise ConfigError(f"{prefix}.timeout_s", "must be > 0")
    if registry.ca_file is not None and not Path(registry.ca_file).is_file():
        raise ConfigError(f"{prefix}.ca_file", f"file not found: {registry.ca_file}")


def _check_connect(prefix: str, clusters: tuple[ConnectConfig, ...]) -> None:
    names: set[str] = set()
    for number, connect in enumerate(clusters):
        where = f"{prefix}[{number}]"
        if not connect.name or not connect.name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"{where}.name", "use letters, digits, '-' and '_'")
        if connect.name in names:
            raise ConfigError(f"{where}.name", f"{connect.name!r} is named twice")
        names.add(connect.name)
        parts = urlsplit(connect.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"{where}.url", f"expected http[s]://host:port, got {connect.url!r}")
        if connect.password is not None and not connect.username:
            raise ConfigError(f"{where}.username", "a password needs a username")
        if connect.timeout_s <= 0:
            raise ConfigError(f"{where}.timeout_s", "must be > 0")
        if connect.ca_file is not None and not Path(connect.ca_file).is_file():
            raise ConfigError(f"{where}.ca_file", f"file not found: {connect.ca_file}")


def _check_schema_file(prefix: str, spec: SchemaFileConfig) -> None:
    from collectors.schemas.schema_files import SchemaFileError, load_schema_file

    if (spec.avro is None) == (spec.protobuf is None):
        raise ConfigError(
            prefix, "give one of `avro` (an .avsc file) or `protobuf` (a descriptor set)"
        )
    if spec.protobuf is not None and not spec.message:
        raise ConfigError(f"{prefix}.message", "missing: the full name of the Protobuf message")
    if spec.avro is not None and spec.message is not None:
        raise ConfigError(f"{prefix}.message", "only for `protobuf`")
    try:
        load_schema_file(spec)
    except SchemaFileError as exc:
        raise ConfigError(f"{prefix}.{exc.key}", exc.message) from None


def _check_conventions(conventions: Mapping[str, Any]) -> None:
    from collectors.conventions import Conventions

    try:
        Conventions.from_mapping(conventions)
    except ValueError as exc:
        raise ConfigError("conventions", str(exc)) from None


def _check_sagas(sagas: Mapping[str, Any]) -> None:
    from collectors.sagas import saga_options

    try:
        saga_options(sagas)
    except ValueError as exc:
        where, _, message = str(exc).partition(": ")
        raise ConfigError(f"sagas.{where}" if message else "sagas", message or where) from None


def _check_bootstrap(key: str, bootstrap: str) -> None:
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(key, f"expected host:port[,host:port...], got {bootstrap!r}")


def _apply_environment(settings: Settings, env: Mapping[str, str]) -> Settings:
    server = settings.server
    if "EVENTSCOPE_HOST" in env:
        server = replace(server, host=env["EVENTSCOPE_HOST"])
    if "EVENTSCOPE_PORT" in env:
        raw_port = env["EVENTSCOPE_PORT"]
        if not raw_port.isdigit():
            raise ConfigError("EVENTSCOPE_PORT", f"must be an integer, got {raw_port!r}")
        server = replace(server, port=int(raw_port))
    if "EVENTSCOPE_OTLP_PORT" in env:
        raw_otlp_port = env["EVENTSCOPE_OTLP_PORT"]
        if not raw_otlp_port.isdigit():
            message = f"must be an integer (0: no OTLP listener), got {raw_otlp_port!r}"
            raise ConfigError("EVENTSCOPE_OTLP_PORT", message)
        server = replace(server, otlp_port=int(raw_otlp_port))
    if "EVENTSCOPE_AUTH" in env:
        server = replace(server, auth=env["EVENTSCOPE_AUTH"].strip().lower())
    if "EVENTSCOPE_EXTERNAL_URL" in env:
        server = replace(server, external_url=env["EVENTSCOPE_EXTERNAL_URL"])
    index = settings.index
    if env.get("EVENTSCOPE_INDEX_URL"):
        index = replace(index, url=env["EVENTSCOPE_INDEX_URL"])
    clusters = list(settings.clusters)
    registry_url = env.get("EVENTSCOPE_SCHEMA_REGISTRY_URL")
    bootstrap = env.get("EVENTSCOPE_KAFKA_BOOTSTRAP")
    if bootstrap:
        # One variable for the common single-cluster case: it overrides the first configured
        # cluster, or defines the cluster "default" when the file names none.
        if clusters:
            clusters[0] = replace(clusters[0], bootstrap=bootstrap)
        else:
            clusters.append(ClusterConfig(name=DEFAULT_CLUSTER, bootstrap=bootstrap))
    if registry_url and clusters:
        # The same for the first cluster's schema registry (its other settings stay).
        current = clusters[0].schema_registry
        registry = (
            replace(current, url=registry_url)
            if current
            else SchemaRegistryConfig(url=registry_url)
        )
        clusters[0] = replace(clusters[0], schema_registry=registry)
    connect_url = env.get("EVENTSCOPE_CONNECT_URL")
    if connect_url and clusters:
        # And for its first Kafka Connect cluster (named "connect" when none is configured).
        first = clusters[0].connect
        connect = (
            (replace(first[0], url=connect_url), *first[1:])
            if first
            else (ConnectConfig(name="connect", url=connect_url),)
        )
        clusters[0] = replace(clusters[0], connect=connect)
    settings = replace(settings, server=server, index=index, clusters=tuple(clusters))
    try:
        _validate(settings)
    except ConfigError as exc:
        raise _name_environment_variable(exc, env) from None
    return settings


ENV_FOR_KEY = {
    "server.host": "EVENTSCOPE_HOST",
    "server.port": "EVENTSCOPE_PORT",
    "server.otlp_port": "EVENTSCOPE_OTLP_PORT",
    "server.auth": "EVENTSCOPE_AUTH",
    "index.url": "EVENTSCOPE_INDEX_URL",
}


def _name_environment_variable(exc: ConfigError, env: Mapping[str, str]) -> ConfigError:
    """Blame the environment variable when it is what set the bad value."""
    variable = ENV_FOR_KEY.get(exc.key)
    if variable is None and exc.key.endswith(".bootstrap"):
        variable = "EVENTSCOPE_KAFKA_BOOTSTRAP"
    if variable is None and exc.key.endswith(".schema_registry.url"):
        variable = "EVENTSCOPE_SCHEMA_REGISTRY_URL"
    if variable is None and exc.key.endswith(".connect[0].url"):
        variable = "EVENTSCOPE_CONNECT_URL"
    if variable and env.get(variable):
        return ConfigError(variable, exc.message)
    return exc


def _check_combinations(settings: Settings, env: Mapping[str, str]) -> None:
    if settings.server.auth == "off" and not is_loopback(settings.server.host):
        raise ConfigError(
            "EVENTSCOPE_AUTH" if env.get("EVENTSCOPE_AUTH") else "server.auth",
            "'off' is allowed only when bound to loopback "
            f"(server.host is {settings.server.host!r})",
        )
    server = settings.server
    if server.auth == "off" and server.otlp_port and not is_loopback(server.otlp_bind_host):
        # The same rule for the OTLP listener: with auth off, anyone could send spans.
        raise ConfigError(
            "server.otlp_host",
            f"must be loopback while server.auth is 'off' (got {server.otlp_bind_host!r})",
        )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def redacted(settings: Settings) -> dict[str, Any]:
    """The effective configuration as plain data, every secret replaced by '***'."""
    clusters: dict[str, Any] = {}
    for cluster in settings.clusters:
        body = _plain(cluster)
        body.pop("name")
        clusters[cluster.name] = body
    plain = {
        "server": _plain(settings.server),
        "index": _plain(settings.index),
        "collector": _plain(settings.collector),
        "lag": _plain(settings.lag),
        "clusters": clusters,
        "conventions": settings.conventions,
        "sagas": settings.sagas,
        "alerts": settings.alerts,
        "masking": settings.masking,
        "event_health": settings.event_health,
    }
    return {"source": settings.source or "(defaults and environment)", **redact(plain)}


GROUP_THRESHOLD_KEYS = ("time_lag_warn_s", "time_lag_err_s")


def lag_health_settings(lag: LagConfig) -> HealthSettings:
    """The time-lag thresholds and hold of `[lag]` and `[lag.groups."<id or pattern>"]`
    (0 turns a threshold off); a bad value is a ConfigError naming its key."""

    def thresholds(prefix: str, body: Mapping[str, Any], base: TimeLagThresholds) -> Any:
        values: dict[str, float | None] = {"warn_s": base.warn_s, "err_s": base.err_s}
        for key, value in body.items():
            if key not in GROUP_THRESHOLD_KEYS:
                known = ", ".join(GROUP_THRESHOLD_KEYS)
                raise ConfigError(f"{prefix}.{key}", f"unknown key (known: {known})")
            number = _coerce(f"{prefix}.{key}", "float", value)
            if number < 0:
                raise ConfigError(f"{prefix}.{key}", "must be >= 0 (0 turns it off)")
            values[key.removeprefix("time_lag_")] = number or None
        try:
            return TimeLagThresholds(**values)
        except ValueError as exc:
            raise ConfigError(prefix, str(exc)) from exc

    default = thresholds(
        "lag",
        {"time_lag_warn_s": lag.time_lag_warn_s, "time_lag_err_s": lag.time_lag_err_s},
        TimeLagThresholds(None, None),
    )
    if not isinstance(lag.groups, Mapping):
        raise ConfigError("lag.groups", "must be a table of group ids (or patterns)")
    per_group = {}
    for group, body in lag.groups.items():
        if not isinstance(body, Mapping):
            raise ConfigError(f"lag.groups.{group}", "must be a table")
        per_group[str(group)] = thresholds(f"lag.groups.{group}", body, default)
    if not (lag.hold_s >= 0):
        raise ConfigError("lag.hold_s", "must be >= 0")
    return HealthSettings(default, per_group, lag.hold_s)


def _plain(obj: Any) -> dict[str, Any]:
    return asdict(obj)


def redact(value: Any, name: str = "") -> Any:
    """One rule for every section: a value under a key naming a secret (password, secret,
    token, key_pem) becomes '***', and so does every value of a `headers` table (they
    carry credentials); a URL loses its password; tuples become lists."""
    if value is None:
        return None
    if any(word in name for word in SECRET_WORDS):
        return "***"
    if isinstance(value, Mapping):
        if name == "headers":
            return {str(key): "***" for key in value}
        return {str(key): redact(item, str(key)) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item, name) for item in value]
    if name == "url" and isinstance(value, str):
        return redact_url(value)
    return value


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))
