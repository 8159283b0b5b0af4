#!/usr/bin/env bash
# Cerebro setup: a virtualenv with the project installed, and the system
# services it talks to (RabbitMQ) installed and running. Idempotent: a second
# run only checks. Usage: bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${CEREBRO_VENV:-.venv}

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

apt_install() {
  # Install Debian packages that are missing (needs root, as on these machines).
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    say "please install as root: apt-get install -y ${missing[*]}"; return 1
  fi
  say "installing ${missing[*]} (apt)"
  if [ -z "$(find /var/lib/apt/lists -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
    apt-get update -qq
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# 1. Python environment, reinstalled only when pyproject.toml changed.
if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtualenv $VENV"
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.cerebro-installed"
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing Cerebro and its dependencies into $VENV"
  "$VENV/bin/pip" install -q --upgrade pip >/dev/null 2>&1 || true
  "$VENV/bin/pip" install -q -e '.[test]'
  echo "$want" > "$stamp"
fi

# 2. System tools: wrk for the benchmarks; the RabbitMQ Java client for the Java
#    pub-sub example (the JDK itself ships with these machines).
apt_install wrk || say "wrk is missing: the benchmarks need it (the platform does not)"
apt_install librabbitmq-client-java || say "librabbitmq-client-java is missing: the Java pub-sub example needs it"

# 3. RabbitMQ and Redis, installed and started when nothing answers on their ports.
if [ -f scripts/ensure-rabbitmq.sh ]; then
  bash scripts/ensure-rabbitmq.sh
fi
say "ready: $VENV/bin/cerebro --help"
