#!/usr/bin/env bash
# Installs what geowarn needs on a Debian machine and starts the services it uses. Idempotent:
# it only installs what is missing. Used by scripts/demo.sh (core only) and scripts/test.sh (all).
#   scripts/setup.sh core   -> Python virtualenv with geowarn
#   scripts/setup.sh test   -> core + PostgreSQL/PostGIS running + dev tools
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-core}"
log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
apt_updated=0
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ $apt_updated = 0 ]; then log "apt-get update"; $SUDO apt-get update -qq; apt_updated=1; fi
  log "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
}

python_env() {
  local py="${PYTHON:-python3}"
  if [ ! -x .venv/bin/python ]; then
    log "creating .venv with $($py --version)"
    "$py" -m venv .venv
  fi
  local extra=""
  [ "$what" = test ] && extra="[dev]"
  # Reinstall only when pyproject.toml changed since the last install.
  local stamp=".venv/.installed$extra"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    log "pip install -e .$extra"
    .venv/bin/pip install -q --disable-pip-version-check -e ".$extra" 2>&1 | grep -v "is ignored: it is neither" >&2 || true
    .venv/bin/python -c "import geowarn" || { log "pip install failed"; exit 1; }
    touch "$stamp"
  fi
}

postgres_up() {
  local pgver
  apt_install postgresql
  pgver=$(ls /etc/postgresql 2>/dev/null | sort -n | tail -n 1)
  apt_install "postgresql-${pgver}-postgis-3"
  if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
    log "starting PostgreSQL $pgver"
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$pgver" main start || $SUDO pg_ctlcluster "$pgver" main start
    for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
  fi
  # The tests connect as postgres over TCP on loopback without a password (trust on 127.0.0.1).
  if ! psql "postgresql://postgres@127.0.0.1:5432/postgres" -Atqc "select 1" >/dev/null 2>&1; then
    log "PostgreSQL on 127.0.0.1:5432 does not accept user postgres without a password;"
    log "set GEOWARN_TEST_PG=postgresql://USER:PASSWORD@127.0.0.1:5432"
    [ -n "${GEOWARN_TEST_PG:-}" ] || exit 1
  fi
}

web_assets() {
  # Front-end libraries are served by geowarn itself (no CDN); --ignore-scripts keeps
  # install-time telemetry of some packages from running.
  command -v npm >/dev/null 2>&1 || apt_install nodejs npm
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    log "npm ci (front-end libraries)"
    npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2
  fi
}

mosquitto_up() {
  # Tests start private brokers for fault tests and use the machine's broker on 127.0.0.1:1883.
  apt_install mosquitto mosquitto-clients
  if ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then
    log "starting Mosquitto on 127.0.0.1:1883"
    $SUDO mosquitto -d -c /etc/mosquitto/mosquitto.conf
    for _ in $(seq 1 20); do (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null && break; sleep 0.5; done
  fi
}

fonts() {
  # The cards (PDF) and the UI need a CJK font; fc-list proves it is installed.
  apt_install fonts-noto-cjk fontconfig
}

browser() {
  # UI tests drive Debian's Chromium through Playwright (playwright install cannot download here).
  apt_install chromium
}

python_env
web_assets
fonts
if [ "$what" = test ]; then
  browser
  postgres_up
  mosquitto_up
fi
log "ready ($what)"
