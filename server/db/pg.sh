#!/usr/bin/env bash
# The dev/test/CI PostgreSQL: Debian's `postgresql` package, a private cluster on 127.0.0.1:5433.
#
#   server/db/pg.sh start    install the package if missing, initdb (once), start, wait until
#                            ready, create the roles and databases (idempotent)
#   server/db/pg.sh stop     stop the cluster this script started
#   server/db/pg.sh status   say whether it runs and answers
#   server/db/pg.sh url [DB] print the database URL (DB: inflow or inflow_test)
#
# The cluster lives in the git-ignored .cache/pg/ (data/, pg.log, the socket directory run/) and
# belongs to the `postgres` OS user (initdb and postgres refuse to run as root): as root every
# server command goes through runuser; as another user the cluster belongs to that user. It
# listens on 127.0.0.1 only (and a socket in .cache/pg/run), never on the machine's addresses.
#
# Roles and databases: `inflow` owns the database `inflow` (make run's) and `inflow_test` owns
# `inflow_test` and may create databases (tests make one per test from a template). Passwords
# are the role names: dev only, on a loopback port.
#
# Environment knobs: INFLOW_PG_PORT (5433), INFLOW_PG_START_TIMEOUT (seconds, 60).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PORT="${INFLOW_PG_PORT:-5433}"
TIMEOUT="${INFLOW_PG_START_TIMEOUT:-60}"
CACHE="${ROOT}/.cache/pg"
DATA="${CACHE}/data"
RUN="${CACHE}/run"
LOG="${CACHE}/pg.log"

say() { printf 'postgres: %s\n' "$*"; }
die() { printf 'postgres: error: %s\n' "$*" >&2; exit 1; }

bindir() {
  # The newest installed PostgreSQL's programs (Debian keeps them out of PATH).
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
  [[ -n "${dir}" && -x "${dir}/pg_ctl" ]] && printf '%s' "${dir}"
}

install_pg() {
  if [[ -z "$(bindir)" ]]; then
    [[ "$(id -u)" == 0 ]] || die "Debian's postgresql package is missing; install it (apt-get install postgresql) or run this as root"
    say "installing Debian's postgresql"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    # The package starts its own cluster on 5432; ours is separate and that one is not needed.
    if command -v pg_ctlcluster >/dev/null; then
      for conf in /etc/postgresql/*/main; do
        [[ -d "${conf}" ]] && pg_ctlcluster "$(basename "$(dirname "${conf}")")" main stop 2>/dev/null || true
      done
    fi
  fi
  BIN="$(bindir)" || die "PostgreSQL's programs were not found under /usr/lib/postgresql/*/bin"
}

# Run a PostgreSQL program as the cluster's owner.
as_owner() {
  if [[ "$(id -u)" == 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

psql_admin() {
  as_owner "${BIN}/psql" -h "${RUN}" -p "${PORT}" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA "$@"
}

ready() { "${BIN}/pg_isready" -q -h 127.0.0.1 -p "${PORT}" -t 2 >/dev/null 2>&1; }

init_cluster() {
  [[ -f "${DATA}/PG_VERSION" ]] && return 0
  say "creating the cluster in ${DATA}"
  mkdir -p "${CACHE}"
  if [[ "$(id -u)" == 0 ]]; then
    getent passwd postgres >/dev/null || die "the postgres OS user is missing (Debian's package creates it)"
    chown postgres: "${CACHE}"
    # The owner must reach .cache/pg through the checkout's folders.
    local dir="${CACHE}"
    while [[ "${dir}" != / ]]; do
      dir="$(dirname "${dir}")"
      chmod o+x "${dir}" 2>/dev/null || true
    done
  fi
  as_owner "${BIN}/initdb" -D "${DATA}" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    -E UTF8 --locale=C.UTF-8 >"${CACHE}/initdb.log" 2>&1 \
    || die "initdb failed (see ${CACHE}/initdb.log)"
  cat >>"${DATA}/postgresql.conf" <<CONF
# Inflow's dev/test cluster (server/db/pg.sh)
listen_addresses = '127.0.0.1'
port = ${PORT}
unix_socket_directories = '${RUN}'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
}

start() {
  install_pg
  if ready && [[ ! -f "${DATA}/postmaster.pid" ]]; then
    # Another checkout's cluster (or another PostgreSQL) already serves the port: like
    # auth/keycloak.sh, use it when it has our roles rather than fail on a busy port.
    say "something else already serves 127.0.0.1:${PORT} (not started from this checkout); leaving it alone"
    PGPASSWORD=inflow_test "${BIN}/psql" -h 127.0.0.1 -p "${PORT}" -U inflow_test -d inflow_test \
      -qtA -c 'SELECT 1' >/dev/null 2>&1 \
      || die "the PostgreSQL on 127.0.0.1:${PORT} has no inflow_test role; stop it or set INFLOW_PG_PORT"
    say "ready: $(url inflow)"
    return 0
  fi
  init_cluster
  as_owner mkdir -p "${RUN}"
  if ready; then
    say "running on 127.0.0.1:${PORT}"
  else
    say "starting on 127.0.0.1:${PORT} (log: ${LOG})"
    as_owner "${BIN}/pg_ctl" -D "${DATA}" -l "${LOG}" -w -t "${TIMEOUT}" start >/dev/null \
      || { tail -n 20 "${LOG}" >&2 2>/dev/null; die "PostgreSQL did not start within ${TIMEOUT}s (see ${LOG})"; }
    ready || die "PostgreSQL started but does not answer on 127.0.0.1:${PORT}"
  fi
  ensure_role inflow NOCREATEDB
  ensure_role inflow_test CREATEDB
  ensure_db inflow inflow
  ensure_db inflow_test inflow_test
  say "ready: $(url inflow)"
}

ensure_role() {
  local role="$1" opt="$2"
  if [[ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '${role}'")" != 1 ]]; then
    psql_admin -c "CREATE ROLE ${role} LOGIN ${opt} PASSWORD '${role}'"
  fi
}

ensure_db() {
  local db="$1" owner="$2"
  if [[ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '${db}'")" != 1 ]]; then
    psql_admin -c "CREATE DATABASE ${db} OWNER ${owner}"
  fi
}

stop() {
  BIN="$(bindir)" || { say "not installed"; return 0; }
  if [[ -f "${DATA}/postmaster.pid" ]]; then
    as_owner "${BIN}/pg_ctl" -D "${DATA}" -m fast -w stop >/dev/null && say "stopped"
  else
    say "not running"
  fi
}

status() {
  BIN="$(bindir)" || { say "not installed"; exit 1; }
  if ready; then say "running on 127.0.0.1:${PORT}"; else say "not running"; exit 1; fi
}

url() {
  local db="${1:-inflow}"
  printf 'postgresql+psycopg://%s:%s@127.0.0.1:%s/%s\n' "${db}" "${db}" "${PORT}" "${db}"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  url) url "${2:-inflow}" ;;
  *) echo "usage: $0 start|stop|status|url [inflow|inflow_test]" >&2; exit 2 ;;
esac
