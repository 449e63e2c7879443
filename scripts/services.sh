#!/usr/bin/env bash
# Start, stop or check the services Eddy's demo and tests need:
#   - a Kafka-protocol broker on 127.0.0.1:9092 (Tansu 0.6.0, SQLite storage) unless one already answers;
#   - PostgreSQL on 127.0.0.1:5432 (started with pg_ctlcluster if it is down).
# Usage: scripts/services.sh up|down|status|tansu-path
#   tansu-path: print the path of the Tansu binary, installing it first if needed (the
#   tests that stop or load a broker start one of their own with it).
# Only what this script started is stopped by `down` (it records that under $EDDY_RUN_DIR).
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
RUN_DIR=${EDDY_RUN_DIR:-$HERE/target/services}
BROKER_HOST=127.0.0.1
BROKER_PORT=${EDDY_BROKER_PORT:-9092}
PG_HOST=127.0.0.1
PG_PORT=5432
TANSU_VERSION=0.6.0
TANSU_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/eddy/tansu-$TANSU_VERSION

log() { printf 'services: %s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_port() { # host port seconds what
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    port_open "$1" "$2" && return 0
    sleep 0.1
  done
  log "$4 did not answer on $1:$2 within $3 s"
  return 1
}

tansu_ok() { [ -x "$1" ] && "$1" --version 2>/dev/null | grep -q "tansu $TANSU_VERSION"; }

find_tansu() {
  if [ -n "${EDDY_TANSU:-}" ] && tansu_ok "$EDDY_TANSU"; then echo "$EDDY_TANSU"; return; fi
  if command -v tansu >/dev/null && tansu_ok "$(command -v tansu)"; then command -v tansu; return; fi
  if tansu_ok "$TANSU_CACHE/bin/tansu"; then echo "$TANSU_CACHE/bin/tansu"; return; fi
  mkdir -p "$TANSU_CACHE/bin"
  local shipped
  for shipped in "$HERE/../shared/tools/tansu-$TANSU_VERSION-x86_64-linux.gz" \
                 "${EDDY_SHARED_DIR:-/nonexistent}/tools/tansu-$TANSU_VERSION-x86_64-linux.gz"; do
    if [ -f "$shipped" ]; then
      log "installing Tansu from $shipped"
      gunzip -c "$shipped" >"$TANSU_CACHE/bin/tansu.tmp"
      chmod +x "$TANSU_CACHE/bin/tansu.tmp"
      mv "$TANSU_CACHE/bin/tansu.tmp" "$TANSU_CACHE/bin/tansu"
      tansu_ok "$TANSU_CACHE/bin/tansu" && { echo "$TANSU_CACHE/bin/tansu"; return; }
    fi
  done
  log "building Tansu $TANSU_VERSION from crates.io (about 30 minutes on 2 cores)"
  cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore,libsql --root "$TANSU_CACHE" >&2
  echo "$TANSU_CACHE/bin/tansu"
}

broker_up() {
  if port_open "$BROKER_HOST" "$BROKER_PORT"; then
    log "a broker already answers on $BROKER_HOST:$BROKER_PORT; using it"
    return
  fi
  local tansu data
  tansu=$(find_tansu)
  data="$RUN_DIR/tansu"
  rm -rf "$data"
  mkdir -p "$data"
  # Tansu reads .env from its working directory and resolves the SQLite path against it.
  (cd "$data" && exec "$tansu" broker \
      --listener-url "tcp://$BROKER_HOST:$BROKER_PORT" \
      --advertised-listener-url "tcp://$BROKER_HOST:$BROKER_PORT" \
      --storage-engine sqlite://tansu.db >>"$data/broker.log" 2>&1) &
  echo $! >"$RUN_DIR/tansu.pid"
  wait_port "$BROKER_HOST" "$BROKER_PORT" 30 "Tansu" || { cat "$data/broker.log" >&2; exit 1; }
  log "Tansu $TANSU_VERSION started on $BROKER_HOST:$BROKER_PORT (pid $(cat "$RUN_DIR/tansu.pid"), log $data/broker.log)"
}

# The tests and the demo connect as postgres@127.0.0.1:5432/postgres without a password.
postgres_check() {
  command -v psql >/dev/null || return 0
  local i
  for ((i = 0; i < 30; i++)); do  # a server that just opened its port may still be starting
    psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1 && return 0
    sleep 1
  done
  log "PostgreSQL answers on $PG_HOST:$PG_PORT but user postgres cannot connect to database postgres without a password:"
  psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -Atqc 'SELECT 1' 2>&1 | head -n 3 >&2 || true
  log "the tests need trust authentication for 127.0.0.1 (pg_hba.conf: host all all 127.0.0.1/32 trust)"
  return 1
}

postgres_up() {
  if port_open "$PG_HOST" "$PG_PORT"; then postgres_check; return; fi
  log "PostgreSQL is down; starting it"
  if ! command -v pg_ctlcluster >/dev/null; then
    log "PostgreSQL is not installed; installing it from Debian's packages"
    (apt-get update -qq || apt-get update -qq) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    # A cluster installed here, for tests only: trust local connections, as the tests expect.
    local hba
    hba=$(ls /etc/postgresql/*/main/pg_hba.conf | sort -V | tail -n 1)
    printf 'local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n' >"$hba"
  fi
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  touch "$RUN_DIR/postgres.started"
  wait_port "$PG_HOST" "$PG_PORT" 30 "PostgreSQL"
  postgres_check
}

up() {
  mkdir -p "$RUN_DIR"
  postgres_up
  broker_up
  status
}

broker_stop() {
  if [ -f "$RUN_DIR/tansu.pid" ]; then
    local pid i
    pid=$(cat "$RUN_DIR/tansu.pid")
    if kill "$pid" 2>/dev/null; then
      for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      log "stopped Tansu (pid $pid)"
    fi
    rm -f "$RUN_DIR/tansu.pid"
  fi
}

down() {
  broker_stop
  if [ -f "$RUN_DIR/postgres.started" ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main stop || true
    rm -f "$RUN_DIR/postgres.started"
    log "stopped PostgreSQL"
  fi
}

status() {
  local ok=0
  if port_open "$BROKER_HOST" "$BROKER_PORT"; then log "broker:     up   ($BROKER_HOST:$BROKER_PORT)"; else log "broker:     DOWN ($BROKER_HOST:$BROKER_PORT)"; ok=1; fi
  if port_open "$PG_HOST" "$PG_PORT"; then log "postgresql: up   ($PG_HOST:$PG_PORT)"; else log "postgresql: DOWN ($PG_HOST:$PG_PORT)"; ok=1; fi
  return $ok
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  tansu-path) find_tansu ;;
  *) echo "usage: $0 up|down|status|tansu-path" >&2; exit 2 ;;
esac
