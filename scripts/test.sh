#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what is missing (as root: Debian packages),
# starts Apache Kafka, the schema registry, a Kafka Connect worker and PostgreSQL on free
# loopback ports, validates docker-compose.yml, then runs ruff, mypy and pytest. With arguments, only pytest runs, with those arguments.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

system_packages python java mvn postgresql chromium compose
python_env dev
registry_java
.venv/bin/eventscope assets fetch
say "axe-core (the accessibility checker of the browser tests, into the cache folder)"
.venv/bin/python -m tests.axe_core >/dev/null
say "the AsyncAPI 3.0 schema (the catalog export's tests, into the cache folder)"
.venv/bin/python -m tests.asyncapi_spec >/dev/null

work="$(pwd)/.eventscope/test"
mkdir -p "$work"
chmod 755 .eventscope "$work"  # PostgreSQL runs as its own user when we are root

free_port() {  # a port p with p .. p+span-1 free
  .venv/bin/python - "$1" <<'PY'
import socket, sys
span = int(sys.argv[1])
for _ in range(500):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    ok = port + span < 65535
    for p in range(port, port + span):
        with socket.socket() as s:
            try: s.bind(("127.0.0.1", p))
            except OSError: ok = False; break
    if ok:
        print(port); break
PY
}

kafka_args=(--port "$(free_port 2)" --data-dir "$work/kafka")
registry_args=(--port "$(free_port 2)" --data-dir "$work/registry")
connect_args=(--port "$(free_port 1)" --data-dir "$work/connect")
pg_port="$(free_port 1)"
cleanup() {
  .venv/bin/eventscope kafka stop "${kafka_args[@]}" >/dev/null 2>&1 || true
  .venv/bin/eventscope registry stop "${registry_args[@]}" >/dev/null 2>&1 || true
  .venv/bin/eventscope connect stop "${connect_args[@]}" >/dev/null 2>&1 || true
  bash scripts/postgres.sh stop "$work/postgres" || true
}
trap cleanup EXIT

rm -rf "$work/kafka" "$work/registry" "$work/connect" "$work/postgres"
.venv/bin/eventscope kafka start "${kafka_args[@]}"
EVENTSCOPE_TEST_KAFKA="127.0.0.1:${kafka_args[1]}"
.venv/bin/eventscope registry start "${registry_args[@]}"
EVENTSCOPE_TEST_REGISTRY="http://127.0.0.1:${registry_args[1]}/apis/ccompat/v7"
.venv/bin/eventscope connect start "${connect_args[@]}" --bootstrap "$EVENTSCOPE_TEST_KAFKA"
EVENTSCOPE_TEST_CONNECT="http://127.0.0.1:${connect_args[1]}"
say "PostgreSQL on 127.0.0.1:$pg_port"
EVENTSCOPE_TEST_PG_URL="$(bash scripts/postgres.sh start "$work/postgres" "$pg_port")"
export EVENTSCOPE_TEST_KAFKA EVENTSCOPE_TEST_REGISTRY EVENTSCOPE_TEST_CONNECT EVENTSCOPE_TEST_PG_URL

if [ "$#" -gt 0 ]; then
  .venv/bin/python -m pytest "$@"
  exit
fi
say "docker-compose.yml"
docker-compose -f docker-compose.yml config -q
say "ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
say "mypy"
.venv/bin/mypy
say "pytest"
.venv/bin/python -m pytest
