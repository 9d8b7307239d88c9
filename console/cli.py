"""The `eventscope` command.

eventscope serve            web console and collectors in one process (embedded default)
eventscope console          web console only (shared PostgreSQL index)
eventscope collect          collectors only (shared PostgreSQL index)
eventscope kafka start|stop|status
eventscope registry start|stop|status   a local schema registry (Confluent-compatible API)
eventscope connect start|stop|status    a local Kafka Connect worker
eventscope demo             a small event-driven shop, with Kafka and the console
eventscope config check
eventscope index upgrade|status
eventscope assets fetch     the console's browser libraries from the npm registry
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine

if TYPE_CHECKING:
    from collectors.kafka.local_connect import LocalConnect
    from collectors.schemas.local_registry import LocalRegistry

from collectors.config import ConfigError, Settings, redacted
from collectors.kafka.local_broker import (
    DEFAULT_PORT,
    LocalBroker,
    default_data_dir,
    recorded_port,
)
from collectors.logs import LOG_FORMATS, configure_logging
from console.settings import load_settings

EXIT_CONFIG = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    try:
        configure_logging(args.verbose, args.log_format)
    except ValueError as exc:  # only $EVENTSCOPE_LOG_FORMAT can get past argparse's choices
        print(f"eventscope: EVENTSCOPE_LOG_FORMAT: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        result: int = args.handler(args)
        return result
    except ConfigError as exc:
        print(f"eventscope: invalid configuration: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eventscope", description="Operations console for event-driven systems on Kafka."
    )
    parser.add_argument("--config", help="TOML file (default: ./eventscope.toml if present)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--log-format", choices=LOG_FORMATS,
        default=os.environ.get("EVENTSCOPE_LOG_FORMAT", "text"),
        help="text lines, or one JSON object per line (default: $EVENTSCOPE_LOG_FORMAT or text)",
    )  # fmt: skip
    commands = parser.add_subparsers(title="commands")

    for name, mode, text in (
        ("serve", "all", "run the web console and the collectors in one process"),
        ("console", "console", "run the web console only"),
        ("collect", "collect", "run the collectors only"),
    ):
        command = commands.add_parser(name, help=text, description=text)
        command.add_argument("--host", help="override server.host")
        command.add_argument("--port", type=int, help="override server.port")
        command.set_defaults(handler=run_server, mode=mode)

    kafka_commands = _local_service_commands(
        commands, "kafka", "a local Apache Kafka broker for trying things out",
        (("start", kafka_start, "resolve, format and start a single-node KRaft broker"),
         ("stop", kafka_stop, "stop the local broker"),
         ("status", kafka_status, "is the local broker running and serving metadata?")),
        port_help="client port (default: the one the data directory last used, else 9092)",
    )  # fmt: skip
    kafka_commands["start"].add_argument(
        "--sasl-plain-user", action="append", default=[], metavar="NAME:PASSWORD",
        help="add a SASL_PLAINTEXT listener on --port + 2 accepting this PLAIN user (repeatable)",
    )  # fmt: skip
    kafka_commands["start"].add_argument(
        "--acls", action="store_true",
        help="enforce ACLs (StandardAuthorizer): the PLAINTEXT port's clients are super users, "
             "the SASL users get what ACLs allow them",
    )  # fmt: skip
    _local_service_commands(
        commands, "registry",
        "a local schema registry (Confluent-compatible API) for trying things out",
        (("start", registry_start, "fetch (once) and start Apicurio Registry on loopback"),
         ("stop", registry_stop, "stop the local schema registry"),
         ("status", registry_status, "is the local schema registry running and answering?")),
        port_help="API port (default: the one the data directory last used, else 8081; "
        "health checks use --port + 1)",
    )  # fmt: skip
    connect_commands = _local_service_commands(
        commands, "connect", "a local Kafka Connect worker (file connectors) for trying things out",
        (("start", connect_start, "fetch (once) and start a Connect worker on loopback"),
         ("stop", connect_stop, "stop the local Connect worker"),
         ("status", connect_status, "is the local Connect worker running and answering?")),
        port_help="REST port (default: the one the data directory last used, else 8083)",
    )  # fmt: skip
    connect_commands["start"].add_argument(
        "--bootstrap", default=None,
        help="the Kafka cluster it joins (default: the one the data directory last used, else "
             "$EVENTSCOPE_KAFKA_BOOTSTRAP, else 127.0.0.1:9092)",
    )  # fmt: skip

    demo = commands.add_parser(
        "demo",
        help="run a small event-driven shop with Kafka and the console (Ctrl-C stops all)",
        description="Start a local Kafka broker (unless one is configured), the console with its "
        "collectors on SQLite, and a small shop whose services produce traffic with failures, "
        "retries, compensations, dead letters and a lagging consumer group.",
    )
    demo.add_argument("--port", type=int, default=8600, help="console port (default 8600)")
    demo.add_argument(
        "--bootstrap", default=None,
        help="use this Kafka broker (default: $EVENTSCOPE_KAFKA_BOOTSTRAP, else a local one)",
    )  # fmt: skip
    demo.add_argument(
        "--index", default="sqlite:///eventscope-demo.db",
        help="index URL (default: sqlite:///eventscope-demo.db in the current folder)",
    )  # fmt: skip
    demo.add_argument("--rate", type=float, default=2.0, help="orders per second (default 2)")
    demo.add_argument(
        "--data-dir", default=None, help="local broker's data (default: ./.eventscope/kafka)"
    )
    demo.add_argument(
        "--kafka-port", type=int, default=9092, help="local broker's port (default 9092)"
    )
    demo.add_argument(
        "--topic-prefix", default="shop", help="prefix of the shop's topics and groups"
    )
    demo.add_argument("--seed", type=int, default=None, help="seed the shop's random outcomes")
    demo.add_argument(
        "--faults", default="random", metavar="NAMES",
        help="comma-separated faults for the Event health and catalog pages: duplicates (a "
        "producer re-sends events without idempotence), misrouted-keys (events written to "
        "another partition than their key's), reprocessing (the notification service "
        "handles some records twice), shape-drift (the shipping service adds a field to "
        "some events), poison-pill (a ledger service stalls on one order), stale-updates "
        "(the order service publishes some updates with an older version); 'random' picks "
        "two (the default); none: a healthy shop",
    )  # fmt: skip
    demo.add_argument(
        "--schema-registry", default=None, metavar="URL",
        help="use this schema registry (default: $EVENTSCOPE_SCHEMA_REGISTRY_URL, else a local "
        "one, started beside the broker)",
    )  # fmt: skip
    demo.add_argument(
        "--registry-port", type=int, default=8081,
        help="local schema registry's port (default 8081; health checks on the next one)",
    )  # fmt: skip
    demo.add_argument(
        "--no-registry", action="store_true", help="no schema registry: the shop writes JSON only"
    )
    demo.add_argument(
        "--shop-only", action="store_true",
        help="run only the shop against --bootstrap (no broker, no console of its own)",
    )  # fmt: skip
    demo.add_argument(
        "--traces-url", default=None,
        help="with --shop-only: where the shop sends its spans (OTLP/HTTP, e.g. "
        "http://collector:4318/v1/traces; OTEL_EXPORTER_OTLP_TRACES_HEADERS adds a token)",
    )  # fmt: skip
    demo.set_defaults(handler=run_demo)

    config = commands.add_parser("config", help="configuration")
    config_commands = config.add_subparsers(title="config commands", required=True)
    check = config_commands.add_parser("check", help="print the effective configuration")
    check.set_defaults(handler=config_check)

    users = commands.add_parser("users", help="local users")
    user_commands = users.add_subparsers(title="users commands", required=True)
    add = user_commands.add_parser("add", help="add a user (password read from stdin)")
    add.add_argument("username")
    add.add_argument("--role", default="viewer", choices=["viewer", "operator", "admin"])
    add.set_defaults(handler=users_add)
    listing = user_commands.add_parser("list", help="list users")
    listing.set_defaults(handler=users_list)
    passwd = user_commands.add_parser("passwd", help="set a password (read from stdin)")
    passwd.add_argument("username")
    passwd.set_defaults(handler=users_passwd)
    role = user_commands.add_parser("set-role", help="change a user's role")
    role.add_argument("username")
    role.add_argument("role", choices=["viewer", "operator", "admin"])
    role.set_defaults(handler=users_set_role)
    for name, disabled in (("disable", True), ("enable", False)):
        toggle = user_commands.add_parser(name, help=f"{name} a user")
        toggle.add_argument("username")
        toggle.set_defaults(handler=users_toggle, disabled=disabled)

    tokens = commands.add_parser("tokens", help="API tokens for automation")
    token_commands = tokens.add_subparsers(title="tokens commands", required=True)
    create = token_commands.add_parser("create", help="create a token (printed once)")
    create.add_argument("--role", default="viewer", choices=["viewer", "operator", "admin"])
    create.add_argument("--name", default="cli")
    create.set_defaults(handler=tokens_create)
    token_list = token_commands.add_parser("list", help="list tokens")
    token_list.set_defaults(handler=tokens_list)
    revoke = token_commands.add_parser("revoke", help="revoke a token by id")
    revoke.add_argument("token_id", type=int)
    revoke.set_defaults(handler=tokens_revoke)

    assets = commands.add_parser("assets", help="the console's browser libraries (htmx, uPlot)")
    asset_commands = assets.add_subparsers(title="assets commands", required=True)
    fetch = asset_commands.add_parser(
        "fetch", help="download them from the npm registry if missing (the console also does "
        "at start)",
    )  # fmt: skip
    fetch.set_defaults(handler=assets_fetch)
    docs = commands.add_parser("docs", help="generated documentation")
    docs_commands = docs.add_subparsers(title="docs commands", required=True)
    conventions = docs_commands.add_parser(
        "conventions", help="print the header conventions page (docs/conventions.md)"
    )
    conventions.set_defaults(handler=docs_conventions)

    index = commands.add_parser("index", help="the index database")
    index_commands = index.add_subparsers(title="index commands", required=True)
    upgrade = index_commands.add_parser("upgrade", help="apply pending migrations")
    upgrade.set_defaults(handler=index_upgrade)
    status = index_commands.add_parser("status", help="show the schema revision")
    status.set_defaults(handler=index_status)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config)


def run_server(args: argparse.Namespace) -> int:
    import os

    import uvicorn

    env = dict(os.environ)
    if args.host:
        env["EVENTSCOPE_HOST"] = args.host
    if args.port:
        env["EVENTSCOPE_PORT"] = str(args.port)
    settings = load_settings(args.config, env)
    if args.mode in ("console", "collect") and settings.index.url.startswith("sqlite"):
        logging.getLogger("eventscope").warning(
            "%s runs half of eventscope; the other half must share its index, "
            "which is normally PostgreSQL (index.url is %s)",
            args.mode,
            settings.index.url,
        )
    from console.app import create_app
    from console.http_server import raise_fd_limit, server_config
    from console.otlp_listener import port_problem

    if args.mode != "collect":
        fetch_browser_libraries()

    otlp_port = settings.server.otlp_port
    if otlp_port and args.mode != "console":
        problem = port_problem(settings.server.otlp_bind_host, otlp_port)
        if problem:
            print(f"eventscope: {problem}", file=sys.stderr)
            return 3
    app = create_app(settings, mode=args.mode)
    print(f"eventscope {args.mode}: http://{settings.server.host}:{settings.server.port}/")
    raise_fd_limit()
    config = server_config(
        app,
        settings.server,
        settings.server.host,
        settings.server.port,
        log_level="info" if args.verbose else "warning",
        log_config=None,  # uvicorn's lines go through eventscope's handler (and format)
    )
    uvicorn.Server(config).run()
    return 0


def _broker(args: argparse.Namespace) -> LocalBroker:
    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    port = args.port if args.port is not None else recorded_port(data_dir) or DEFAULT_PORT
    return LocalBroker(data_dir=data_dir, port=port)


def _local_service_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    service: str,
    help_text: str,
    entries: tuple[tuple[str, Callable[[argparse.Namespace], int], str], ...],
    *,
    port_help: str,
) -> dict[str, argparse.ArgumentParser]:
    """`eventscope <service> start|stop|status`, each with --port and --data-dir."""
    parser = commands.add_parser(service, help=help_text)
    sub_commands = parser.add_subparsers(title=f"{service} commands", required=True)
    made = {}
    for name, handler, text in entries:
        sub = sub_commands.add_parser(name, help=text, description=text)
        sub.add_argument("--port", type=int, default=None, help=port_help)
        sub.add_argument("--data-dir", default=None, help=f"default: ./.eventscope/{service}")
        sub.set_defaults(handler=handler)
        made[name] = sub
    return made


def kafka_start(args: argparse.Namespace) -> int:
    from collectors.kafka.local_broker import BrokerError, parse_sasl_user, start

    try:
        users = tuple(parse_sasl_user(text) for text in args.sasl_plain_user)
        broker = dataclasses.replace(_broker(args), sasl_plain_users=users, acls=args.acls)
        pid = start(broker)
    except BrokerError as exc:
        print(f"eventscope kafka: {exc}", file=sys.stderr)
        return 1
    print(f"Kafka is ready at {broker.bootstrap} (pid {pid}, data in {broker.data_dir})")
    print(f"  export EVENTSCOPE_KAFKA_BOOTSTRAP={broker.bootstrap}")
    if broker.sasl_bootstrap:
        names = ", ".join(name for name, _ in users)
        print(f"  SASL_PLAINTEXT (PLAIN) at {broker.sasl_bootstrap} for: {names}")
    return 0


def kafka_stop(args: argparse.Namespace) -> int:
    from collectors.kafka.local_broker import stop

    broker = _broker(args)
    return _report_stop(stop(broker), f"Kafka at {broker.bootstrap}", "Kafka", broker.data_dir)


def kafka_status(args: argparse.Namespace) -> int:
    from collectors.kafka.local_broker import status

    return _report_status(status(_broker(args)))


def _report_stop(stopped: bool, running: str, kind: str, data_dir: Path) -> int:
    if stopped:
        print(f"{running} stopped")
    else:
        print(f"No local {kind} is running for {data_dir}")
    return 0


def _report_status(state: dict[str, object]) -> int:
    """The service's state as JSON; the exit code says whether it answers."""
    print(json.dumps(state, indent=2))
    return 0 if state["ready"] else 1


def _registry(args: argparse.Namespace) -> LocalRegistry:
    from collectors.schemas import local_registry

    data_dir = Path(args.data_dir) if args.data_dir else local_registry.default_data_dir()
    port = args.port or local_registry.recorded_port(data_dir) or local_registry.DEFAULT_PORT
    return local_registry.LocalRegistry(data_dir=data_dir, port=port)


def registry_start(args: argparse.Namespace) -> int:
    from collectors.schemas.local_registry import RegistryStartError, start

    registry = _registry(args)
    try:
        pid = start(registry)
    except RegistryStartError as exc:
        print(f"eventscope registry: {exc}", file=sys.stderr)
        return 1
    print(f"The schema registry is ready at {registry.url} (pid {pid})")
    print(f"  its schemas are kept in {registry.data_dir}")
    print(f"  export EVENTSCOPE_SCHEMA_REGISTRY_URL={registry.url}")
    return 0


def registry_stop(args: argparse.Namespace) -> int:
    from collectors.schemas.local_registry import stop

    registry = _registry(args)
    running = f"The schema registry at {registry.url}"
    return _report_stop(stop(registry), running, "schema registry", registry.data_dir)


def registry_status(args: argparse.Namespace) -> int:
    from collectors.schemas.local_registry import status

    return _report_status(status(_registry(args)))


def _connect(args: argparse.Namespace) -> LocalConnect:
    from collectors.kafka import local_connect

    data_dir = Path(args.data_dir) if args.data_dir else local_connect.default_data_dir()
    port, bootstrap = local_connect.recorded(data_dir) or (None, None)
    bootstrap = (
        getattr(args, "bootstrap", None) or bootstrap
        or os.environ.get("EVENTSCOPE_KAFKA_BOOTSTRAP") or "127.0.0.1:9092"
    )  # fmt: skip
    port = args.port or port or local_connect.DEFAULT_PORT
    return local_connect.LocalConnect(data_dir=data_dir, bootstrap=bootstrap, port=port)


def connect_start(args: argparse.Namespace) -> int:
    from collectors.kafka.local_connect import ConnectStartError, start

    worker = _connect(args)
    try:
        pid = start(worker)
    except ConnectStartError as exc:
        print(f"eventscope connect: {exc}", file=sys.stderr)
        return 1
    print(f"Kafka Connect is ready at {worker.url} (pid {pid}, Kafka at {worker.bootstrap})")
    print(
        f'  configure it as clusters.<name>.connect = [{{ name = "local", url = "{worker.url}" }}]'
    )
    return 0


def connect_stop(args: argparse.Namespace) -> int:
    from collectors.kafka.local_connect import stop

    worker = _connect(args)
    running = f"Kafka Connect at {worker.url}"
    return _report_stop(stop(worker), running, "Connect worker", worker.data_dir)


def connect_status(args: argparse.Namespace) -> int:
    from collectors.kafka.local_connect import status

    return _report_status(status(_connect(args)))


def run_demo(args: argparse.Namespace) -> int:
    from console.demo.flows import Odds, chosen_faults, with_faults
    from console.demo.runner import DemoError, DemoOptions, main_error, run

    if not args.verbose:  # the demo prints its own short summary
        logging.getLogger().setLevel(logging.WARNING)
        # The Kafka client reports every connection retry while the broker and the new
        # topics come up; -v shows them.
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    if not args.shop_only:
        fetch_browser_libraries()
    options = DemoOptions(
        port=args.port,
        bootstrap=args.bootstrap,
        index_url=args.index,
        rate=args.rate,
        data_dir=Path(args.data_dir) if args.data_dir else None,
        kafka_port=args.kafka_port,
        topic_prefix=args.topic_prefix,
        seed=args.seed,
        faults=chosen_faults(tuple(n.strip() for n in args.faults.split(",") if n.strip())),
        shop_only=args.shop_only,
        traces_url=args.traces_url,
        schema_registry=args.schema_registry,
        registry_port=args.registry_port,
        no_registry=args.no_registry,
    )
    try:
        with_faults(Odds(), options.faults)
    except ValueError as exc:
        print(f"eventscope demo: --faults: {exc}", file=sys.stderr)
        return 2
    try:
        return run(options)
    except DemoError as exc:
        return main_error(exc)


def config_check(args: argparse.Namespace) -> int:
    settings = _settings(args)
    print(json.dumps(redacted(settings), indent=2))
    return 0


def _index(args: argparse.Namespace) -> Engine:
    from collectors.index import migrate
    from collectors.index.engine import create_index_engine

    engine = create_index_engine(_settings(args).index.url)
    migrate.upgrade(engine)
    return engine


def _read_password() -> str:
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass("Password: ")
    return sys.stdin.readline().rstrip("\n")


def _user_change(args: argparse.Namespace, **changes: object) -> int:
    from console.stores import audit as audit_store
    from console.stores import auth as auth_store

    engine = _index(args)
    try:
        auth_store.update_user(engine, args.username, **changes)  # type: ignore[arg-type]
    except ValueError as exc:
        print(f"eventscope users: {exc}", file=sys.stderr)
        return 1
    for action, detail in audit_store.user_change_entries(dict(changes)):
        audit_store.record(engine, audit_store.cli_actor(), action, args.username, detail, "local")
    print(f"user {args.username} updated")
    return 0


def users_add(args: argparse.Namespace) -> int:
    from console.stores import audit as audit_store
    from console.stores import auth as auth_store

    engine = _index(args)
    try:
        auth_store.create_user(engine, args.username, _read_password(), args.role)
    except ValueError as exc:
        print(f"eventscope users: {exc}", file=sys.stderr)
        return 1
    actor = audit_store.cli_actor()
    audit_store.record(engine, actor, "user.create", args.username, {"role": args.role}, "local")
    print(f"user {args.username} added with role {args.role}")
    return 0


def users_list(args: argparse.Namespace) -> int:
    from console.stores import auth as auth_store

    for user in auth_store.list_users(_index(args)):
        state = "disabled" if user["disabled"] else "active"
        print(f"{user['username']}\t{user['role']}\t{state}")
    return 0


def users_passwd(args: argparse.Namespace) -> int:
    return _user_change(args, password=_read_password())


def users_set_role(args: argparse.Namespace) -> int:
    return _user_change(args, role=args.role)


def users_toggle(args: argparse.Namespace) -> int:
    return _user_change(args, disabled=args.disabled)


def tokens_create(args: argparse.Namespace) -> int:
    from console.stores import audit as audit_store
    from console.stores import auth as auth_store

    engine = _index(args)
    token_id, token = auth_store.create_token(engine, args.name, args.role, "cli")
    audit_store.record(engine, audit_store.cli_actor(), "token.create", str(token_id),
                 {"role": args.role, "name": args.name}, "local")  # fmt: skip
    print(f"token {token_id} ({args.role}); shown once, keep it safe:", file=sys.stderr)
    print(token)
    return 0


def tokens_list(args: argparse.Namespace) -> int:
    from console.stores import auth as auth_store

    for token in auth_store.list_tokens(_index(args)):
        state = "revoked" if token["revoked_at_ms"] else "active"
        print(f"{token['id']}\t{token['name']}\t{token['role']}\t{token['prefix']}…\t{state}")
    return 0


def tokens_revoke(args: argparse.Namespace) -> int:
    from console.stores import audit as audit_store
    from console.stores import auth as auth_store

    engine = _index(args)
    if not auth_store.revoke_token(engine, args.token_id):
        print(f"eventscope tokens: no active token {args.token_id}", file=sys.stderr)
        return 1
    audit_store.record(
        engine, audit_store.cli_actor(), "token.revoke", str(args.token_id), {}, "local"
    )
    print(f"token {args.token_id} revoked")
    return 0


def assets_fetch(args: argparse.Namespace) -> int:
    from console import assets

    directory = assets.vendor_dir()
    try:
        fetched = assets.fetch(directory)
    except (assets.VendorError, OSError) as exc:
        print(f"eventscope assets: {exc}", file=sys.stderr)
        return 1
    names = ", ".join(f"{p.name} {p.version}" for p in fetched) or "nothing to fetch"
    print(f"browser libraries in {directory}: {names}")
    return 0


def fetch_browser_libraries() -> None:
    """At the console's start: fetch what is missing, or say once why pages lack it."""
    from console import assets

    problem = assets.ensure()
    if problem:
        logging.getLogger("eventscope").warning("%s", problem)


def docs_conventions(args: argparse.Namespace) -> int:
    from collectors.conventions import Conventions
    from collectors.conventions_doc import render

    settings = _settings(args)
    print(render(Conventions.from_mapping(settings.conventions)), end="")
    return 0


def index_upgrade(args: argparse.Namespace) -> int:
    from collectors.index import migrate
    from collectors.index.engine import create_index_engine

    settings = _settings(args)
    engine = create_index_engine(settings.index.url)
    migrate.upgrade(engine)
    print(f"index at revision {migrate.current_revision(engine)}")
    return 0


def index_status(args: argparse.Namespace) -> int:
    """Read-only: a SQLite index that does not exist is reported, not created."""
    from collectors.index import migrate
    from collectors.index.engine import create_index_engine, sqlite_file

    url = _settings(args).index.url
    head = migrate.head_revision()
    path = sqlite_file(url)
    if path is not None and not path.is_file():
        print(json.dumps({"current": None, "head": head, "up_to_date": False,
                          "error": f"no index at {path.absolute()}"}))  # fmt: skip
        return 1
    engine = create_index_engine(url)
    current = migrate.current_revision(engine)
    engine.dispose()
    print(json.dumps({"current": current, "head": head, "up_to_date": current == head}))
    return 0 if current == head else 1


if __name__ == "__main__":
    raise SystemExit(main())
