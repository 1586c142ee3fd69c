#!/usr/bin/env bash
# The dev/test/CI Keycloak: a real Keycloak on 127.0.0.1:8081 with the realms in auth/realm-*.json.
#
#   auth/keycloak.sh start    fetch (once), unpack, start in the background, wait until ready
#   auth/keycloak.sh stop     stop the Keycloak this script started
#   auth/keycloak.sh status   say whether it runs and answers
#   auth/keycloak.sh reset    stop, wipe its database, start again (fresh realms from the files)
#
# Bootstrap admin (master realm, admin console at http://127.0.0.1:8081/admin/): admin / admin,
# set through KC_BOOTSTRAP_ADMIN_USERNAME / KC_BOOTSTRAP_ADMIN_PASSWORD. Dev only.
#
# Everything lives in the git-ignored .cache/keycloak/: dist/ (the zip Maven fetched),
# keycloak-<version>/ (unpacked; data/h2 is the dev-file database), keycloak.log, keycloak.pid,
# realms.sha256 (hash of the imported realm files). When a realm file changes, `start` stops
# Keycloak, wipes data/h2 and starts again, because --import-realm skips realms that exist.
#
# Environment knobs: KEYCLOAK_VERSION, KEYCLOAK_PORT, KEYCLOAK_HOSTNAME (the public URL baked into
# token issuers), KEYCLOAK_START_TIMEOUT (seconds), JAVA_HOME (must be Java 21 or newer).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KC_VERSION="${KEYCLOAK_VERSION:-26.7.3}"
PORT="${KEYCLOAK_PORT:-8081}"
HOSTNAME_URL="${KEYCLOAK_HOSTNAME:-http://127.0.0.1:${PORT}}"
TIMEOUT="${KEYCLOAK_START_TIMEOUT:-240}"
CACHE="${ROOT}/.cache/keycloak"
DIST_DIR="${CACHE}/dist"
ZIP="${DIST_DIR}/keycloak-quarkus-dist-${KC_VERSION}.zip"
HOME_DIR="${CACHE}/keycloak-${KC_VERSION}"
LOG="${CACHE}/keycloak.log"
PID_FILE="${CACHE}/keycloak.pid"
HASH_FILE="${CACHE}/realms.sha256"
BASE_URL="http://127.0.0.1:${PORT}"
READY_URL="${BASE_URL}/realms/inflow/.well-known/openid-configuration"

say() { printf 'keycloak: %s\n' "$*"; }
die() { printf 'keycloak: error: %s\n' "$*" >&2; exit 1; }

answers() { curl -fsS -o /dev/null --max-time 3 "${READY_URL}" 2>/dev/null; }

running_pid() {
  # The pid from our pid file, if that process still lives; nothing otherwise.
  [[ -f "${PID_FILE}" ]] || return 1
  local pid
  pid="$(cat "${PID_FILE}")"
  [[ -n "${pid}" ]] && kill -0 "${pid}" 2>/dev/null || return 1
  printf '%s' "${pid}"
}

realm_hash() {
  { printf '%s\n' "${KC_VERSION} ${HOSTNAME_URL}"; cat "${ROOT}"/auth/realm-*.json; } \
    | sha256sum | cut -d' ' -f1
}

java_major() {
  # Major version of the given java binary ("17", "21", "25"), or nothing.
  "$1" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1
}

pick_java() {
  local candidates=() c v
  [[ -n "${JAVA_HOME:-}" ]] && candidates+=("${JAVA_HOME}")
  candidates+=(/usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/temurin-21-jdk-amd64)
  for c in /usr/lib/jvm/*; do candidates+=("${c}"); done
  for c in "${candidates[@]}"; do
    [[ -x "${c}/bin/java" ]] || continue
    v="$(java_major "${c}/bin/java")"
    if [[ -n "${v}" && "${v}" -ge 21 ]]; then
      printf '%s' "${c}"
      return 0
    fi
  done
  return 1
}

fetch() {
  if [[ -f "${ZIP}" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found; it fetches Keycloak from Maven Central"
  say "fetching org.keycloak:keycloak-quarkus-dist:${KC_VERSION}:zip with Maven"
  mkdir -p "${DIST_DIR}"
  mvn -q dependency:copy \
    "-Dartifact=org.keycloak:keycloak-quarkus-dist:${KC_VERSION}:zip" \
    "-DoutputDirectory=${DIST_DIR}"
  [[ -f "${ZIP}" ]] || die "Maven did not produce ${ZIP}"
}

unpack() {
  if [[ -x "${HOME_DIR}/bin/kc.sh" ]]; then
    return 0
  fi
  say "unpacking into ${HOME_DIR}"
  rm -rf "${HOME_DIR}.tmp"
  mkdir -p "${HOME_DIR}.tmp"
  unzip -q "${ZIP}" -d "${HOME_DIR}.tmp"
  mv "${HOME_DIR}.tmp/keycloak-${KC_VERSION}" "${HOME_DIR}"
  rm -rf "${HOME_DIR}.tmp"
}

do_stop() {
  local pid i
  if ! pid="$(running_pid)"; then
    rm -f "${PID_FILE}"
    say "not running (started by this script)"
    return 0
  fi
  say "stopping pid ${pid}"
  kill -TERM "${pid}" 2>/dev/null || true
  for i in $(seq 1 60); do
    kill -0 "${pid}" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "${pid}" 2>/dev/null; then
    say "pid ${pid} did not stop in 30 s; killing it"
    kill -KILL "${pid}" 2>/dev/null || true
  fi
  rm -f "${PID_FILE}"
  say "stopped"
}

wait_ready() {
  local pid="$1" start now elapsed last=-1
  start="$(date +%s)"
  while true; do
    if answers; then
      now="$(date +%s)"
      say "ready after $((now - start)) s: ${BASE_URL} (realms inflow, other; admin/admin)"
      return 0
    fi
    if ! kill -0 "${pid}" 2>/dev/null; then
      rm -f "${PID_FILE}"
      printf 'keycloak: error: it exited during start-up; last lines of %s:\n' "${LOG}" >&2
      tail -n 40 "${LOG}" >&2 || true
      exit 1
    fi
    now="$(date +%s)"
    elapsed=$((now - start))
    if ((elapsed >= TIMEOUT)); then
      printf 'keycloak: error: not ready after %s s; last lines of %s:\n' "${TIMEOUT}" "${LOG}" >&2
      tail -n 40 "${LOG}" >&2 || true
      exit 1
    fi
    if ((elapsed / 10 != last)); then
      last=$((elapsed / 10))
      say "waiting for ${READY_URL} (${elapsed} s of ${TIMEOUT} s)"
    fi
    sleep 1
  done
}

do_start() {
  local pid want have java_home
  want="$(realm_hash)"
  have="$(cat "${HASH_FILE}" 2>/dev/null || true)"
  if pid="$(running_pid)"; then
    if [[ "${want}" == "${have}" ]]; then
      if answers; then
        say "already running (pid ${pid}) at ${BASE_URL}"
        return 0
      fi
      wait_ready "${pid}"
      return 0
    fi
    say "realm files changed since the last import: restarting with a fresh database"
    do_stop
  elif answers; then
    say "something else already serves ${READY_URL} (not started by this script); leaving it alone"
    return 0
  fi

  fetch
  unpack
  java_home="$(pick_java)" || die "no Java 21+ found (set JAVA_HOME; Keycloak ${KC_VERSION} needs it)"

  if [[ "${want}" != "${have}" ]]; then
    say "importing realms afresh (wiping ${HOME_DIR}/data/h2)"
    rm -rf "${HOME_DIR}/data/h2"
  fi
  rm -rf "${HOME_DIR}/data/import"
  mkdir -p "${HOME_DIR}/data/import"
  cp "${ROOT}"/auth/realm-*.json "${HOME_DIR}/data/import/"

  say "starting Keycloak ${KC_VERSION} with ${java_home}; log: ${LOG}"
  # start-dev: dev-file database (H2 under data/h2), local caches, HTTP. The JVM flags trade peak
  # speed for start-up time, which is what tests and CI wait for.
  # setsid: Keycloak outlives the shell that started it. The child writes its own pid, which is
  # the pid of kc.sh (it forwards TERM to the JVM), before it execs.
  rm -f "${PID_FILE}"
  (
    export JAVA_HOME="${java_home}"
    export PATH="${java_home}/bin:${PATH}"
    export KC_BOOTSTRAP_ADMIN_USERNAME=admin
    export KC_BOOTSTRAP_ADMIN_PASSWORD=admin
    export KC_DB=dev-file
    export JAVA_OPTS_APPEND="${JAVA_OPTS_APPEND:--XX:TieredStopAtLevel=1}"
    cd "${HOME_DIR}"
    exec setsid bash -c 'printf "%s\n" "$$" >"$0"; exec bin/kc.sh "$@"' "${PID_FILE}" \
      start-dev \
      --http-port "${PORT}" --http-host 127.0.0.1 \
      --hostname "${HOSTNAME_URL}" \
      --import-realm --cache=local \
      >"${LOG}" 2>&1 </dev/null 9>&-
  ) &
  for _ in $(seq 1 50); do
    [[ -s "${PID_FILE}" ]] && break
    sleep 0.1
  done
  pid="$(cat "${PID_FILE}" 2>/dev/null)" || die "Keycloak did not start; see ${LOG}"
  wait_ready "${pid}"
  printf '%s\n' "${want}" >"${HASH_FILE}"
}

do_status() {
  local pid
  if pid="$(running_pid)"; then
    if answers; then
      say "running (pid ${pid}) and answering at ${BASE_URL}"
    else
      say "running (pid ${pid}) but ${READY_URL} does not answer yet"
    fi
    return 0
  fi
  if answers; then
    say "not started by this script, but ${READY_URL} answers"
    return 0
  fi
  say "not running"
  return 3
}

mkdir -p "${CACHE}"
if [[ "${1:-}" != status ]]; then
  # One start/stop at a time (parallel test sessions may all try to start Keycloak).
  exec 9>"${CACHE}/lock"
  flock -w 900 9 || die "another auth/keycloak.sh holds ${CACHE}/lock"
fi
case "${1:-}" in
  start) do_start ;;
  stop) do_stop ;;
  status) do_status ;;
  reset)
    do_stop
    rm -f "${HASH_FILE}"
    do_start
    ;;
  *)
    printf 'usage: %s start|stop|status|reset\n' "$0" >&2
    exit 2
    ;;
esac
