#!/usr/bin/env bash
# From a fresh clone to the running demo: Python environment, then `eventscope demo`, which
# fetches the browser libraries, Apache Kafka's jars and the schema registry on first use,
# starts a local broker and registry, the console and the shop. Arguments go to `eventscope demo` (see --help). Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

system_packages python java mvn
python_env
registry_java
exec .venv/bin/eventscope demo "$@"
