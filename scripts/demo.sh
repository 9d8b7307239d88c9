#!/usr/bin/env bash
# From a fresh clone to the running demo: Python environment, then `eventscope demo`, which
# fetches the browser libraries and Apache Kafka's jars on first use, starts a local broker,
# the console and the shop. Arguments go to `eventscope demo` (see --help). Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

system_packages python java mvn
python_env
exec .venv/bin/eventscope demo "$@"
