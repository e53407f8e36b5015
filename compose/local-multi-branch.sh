#!/usr/bin/env bash
# Runs the multi-branch topology of docker-compose.multi-branch.yml as plain
# processes on 127.0.0.1: one top branch and two master branches.
#
#   local-multi-branch.sh start    init (first time) and start every branch, wait until healthy
#   local-multi-branch.sh stop     SIGTERM every branch, wait for exit (SIGKILL after a deadline)
#   local-multi-branch.sh status   one line per branch: name url pid up|down
#
# Environment:
#   BRANCHGATE_BIN      binary (default <repo>/build/branchgate)
#   BG_BASE_PORT        port of "top"; master-1 and master-2 use +1 and +2 (default 8000)
#   BG_STATE_DIR        data dirs, logs and pid files (default ./.local-branches)
#   BG_START_TIMEOUT    seconds to wait for every branch to answer /healthz (default 30)
#   BG_STOP_TIMEOUT     seconds to wait for a branch to exit after SIGTERM (default 15)
# Every BRANCHGATE_* configuration variable (e.g. BRANCHGATE_PEERS_PING_INTERVAL_MS) is passed on
# to the branches.
#
# Each branch NAME has its data dir in $BG_STATE_DIR/NAME (admin token in NAME/admin.token),
# its log in $BG_STATE_DIR/NAME.log and its pid in $BG_STATE_DIR/NAME.pid.
# `start` on a running branch and `stop` on a stopped one do nothing.
# Exit status: 0 on success; `status` exits 3 when any branch is down.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "${SCRIPT_DIR}/.." && pwd)"

BRANCHGATE_BIN="${BRANCHGATE_BIN:-${REPO_DIR}/build/branchgate}"
BG_BASE_PORT="${BG_BASE_PORT:-8000}"
BG_STATE_DIR="${BG_STATE_DIR:-./.local-branches}"
BG_START_TIMEOUT="${BG_START_TIMEOUT:-30}"
BG_STOP_TIMEOUT="${BG_STOP_TIMEOUT:-15}"
# The bundled templates, wherever this script is run from.
export BRANCHGATE_TEMPLATES_DIR="${BRANCHGATE_TEMPLATES_DIR:-${REPO_DIR}/templates}"

readonly HOST="127.0.0.1"
readonly POLL_INTERVAL="0.1"
# name:type:port offset
readonly BRANCHES=(
  "top:top_branch:0"
  "master-1:master_branch:1"
  "master-2:master_branch:2"
)

# Data dirs hold master keys and admin tokens: keep everything we create private.
umask 077

die() {
  printf 'local-multi-branch: %s\n' "$*" >&2
  exit 1
}

log() {
  printf 'local-multi-branch: %s\n' "$*"
}

is_uint() {
  [[ "$1" =~ ^[0-9]+$ ]]
}

check_config() {
  is_uint "${BG_BASE_PORT}" || die "BG_BASE_PORT must be a port number, got '${BG_BASE_PORT}'"
  ((BG_BASE_PORT >= 1 && BG_BASE_PORT + 2 <= 65535)) ||
    die "BG_BASE_PORT must be between 1 and 65533, got ${BG_BASE_PORT}"
  is_uint "${BG_START_TIMEOUT}" || die "BG_START_TIMEOUT must be a whole number of seconds"
  is_uint "${BG_STOP_TIMEOUT}" || die "BG_STOP_TIMEOUT must be a whole number of seconds"
  [[ -n "${BG_STATE_DIR}" ]] || die "BG_STATE_DIR must not be empty"
  # Absolute, so the pid check below can match the data dir on the command line.
  if [[ "${BG_STATE_DIR}" != /* ]]; then
    BG_STATE_DIR="${PWD}/${BG_STATE_DIR#./}"
  fi
  BG_STATE_DIR="${BG_STATE_DIR%/}"
}

# Field accessors for a BRANCHES entry.
branch_name() { printf '%s' "${1%%:*}"; }
branch_type() {
  local rest="${1#*:}"
  printf '%s' "${rest%%:*}"
}
branch_port() { printf '%s' "$((BG_BASE_PORT + ${1##*:}))"; }
branch_url() { printf 'http://%s:%s' "${HOST}" "$(branch_port "$1")"; }

data_dir() { printf '%s/%s' "${BG_STATE_DIR}" "$1"; }
pid_file() { printf '%s/%s.pid' "${BG_STATE_DIR}" "$1"; }
log_file() { printf '%s/%s.log' "${BG_STATE_DIR}" "$1"; }

# Prints the pid recorded for branch NAME (nothing if none).
read_pid() {
  local file pid
  file="$(pid_file "$1")"
  [[ -f "${file}" ]] || return 0
  pid="$(<"${file}")"
  if is_uint "${pid}"; then
    printf '%s' "${pid}"
  fi
}

# True when PID is a live (not zombie) process.
pid_alive() {
  local pid="$1" stat
  kill -0 "${pid}" 2>/dev/null || return 1
  if [[ -r "/proc/${pid}/stat" ]]; then
    stat="$(<"/proc/${pid}/stat")" || return 1
    stat="${stat##*) }"
    [[ "${stat:0:1}" != "Z" ]] || return 1
  fi
  return 0
}

# True when PID is alive and is the branchgate serving data dir DIR (guards against a
# reused pid after a reboot or a crash).
pid_is_branch() {
  local pid="$1" dir="$2" cmdline
  pid_alive "${pid}" || return 1
  if [[ -r "/proc/${pid}/cmdline" ]]; then
    cmdline="$(tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null)" || return 1
    [[ "${cmdline}" == *" serve "* && "${cmdline}" == *" ${dir} "* ]] || return 1
  fi
  return 0
}

# Prints the pid of branch NAME when it is running; fails otherwise.
running_pid() {
  local name="$1" pid
  pid="$(read_pid "${name}")"
  [[ -n "${pid}" ]] || return 1
  pid_is_branch "${pid}" "$(data_dir "${name}")" || return 1
  printf '%s' "${pid}"
}

healthy() {
  local url="$1" body
  body="$(curl --silent --max-time 2 "${url}/healthz" 2>/dev/null)" || return 1
  [[ "${body}" == *'"status":"ok"'* ]]
}

# Initialises branch ENTRY's data dir unless it already is.
init_branch() {
  local entry="$1" name dir
  name="$(branch_name "${entry}")"
  dir="$(data_dir "${name}")"
  [[ -f "${dir}/branchgate.json" ]] && return 0
  # init prints the admin token on stdout: keep it out of the terminal and the log.
  if ! "${BRANCHGATE_BIN}" init --data "${dir}" --name "${name}" \
    --type "$(branch_type "${entry}")" --url "$(branch_url "${entry}")" \
    >/dev/null 2>>"$(log_file "${name}")"; then
    tail -n 20 "$(log_file "${name}")" >&2 || true
    die "init of ${name} failed (log: $(log_file "${name}"))"
  fi
  log "initialised ${name}; admin token in ${dir}/admin.token"
}

# Starts branch ENTRY in the background unless it runs already. Prints nothing on stdout.
launch_branch() {
  local entry="$1" name dir pid
  name="$(branch_name "${entry}")"
  dir="$(data_dir "${name}")"
  if pid="$(running_pid "${name}")"; then
    log "${name} already running (pid ${pid})"
    return 0
  fi
  rm -f "$(pid_file "${name}")" "${dir}/listen.url"
  init_branch "${entry}"
  nohup "${BRANCHGATE_BIN}" serve --data "${dir}" --listen "${HOST}:$(branch_port "${entry}")" \
    </dev/null >>"$(log_file "${name}")" 2>&1 &
  pid=$!
  printf '%s\n' "${pid}" >"$(pid_file "${name}")"
  log "started ${name} (pid ${pid}, log $(log_file "${name}"))"
}

# Waits until every branch has written listen.url and answers GET /healthz.
wait_until_healthy() {
  local deadline=$((SECONDS + BG_START_TIMEOUT)) entry name dir pid url
  local -a pending=("${BRANCHES[@]}") still=()
  while ((${#pending[@]} > 0)); do
    still=()
    for entry in "${pending[@]}"; do
      name="$(branch_name "${entry}")"
      dir="$(data_dir "${name}")"
      if ! pid="$(running_pid "${name}")"; then
        tail -n 20 "$(log_file "${name}")" >&2 || true
        die "${name} exited during start-up (log: $(log_file "${name}"))"
      fi
      url=""
      if [[ -s "${dir}/listen.url" ]]; then
        url="$(<"${dir}/listen.url")"
      fi
      if [[ -n "${url}" ]] && healthy "${url}"; then
        log "${name} up at ${url} (pid ${pid})"
      else
        still+=("${entry}")
      fi
    done
    pending=("${still[@]+"${still[@]}"}")
    ((${#pending[@]} == 0)) && break
    if ((SECONDS >= deadline)); then
      for entry in "${pending[@]}"; do
        name="$(branch_name "${entry}")"
        tail -n 20 "$(log_file "${name}")" >&2 || true
        printf 'local-multi-branch: %s not healthy after %ss\n' "${name}" "${BG_START_TIMEOUT}" >&2
      done
      exit 1
    fi
    sleep "${POLL_INTERVAL}"
  done
}

cmd_start() {
  local entry
  [[ -x "${BRANCHGATE_BIN}" ]] ||
    die "no executable at ${BRANCHGATE_BIN} (build it, or set BRANCHGATE_BIN)"
  command -v curl >/dev/null || die "curl is required"
  mkdir -p "${BG_STATE_DIR}"
  for entry in "${BRANCHES[@]}"; do
    launch_branch "${entry}"
  done
  wait_until_healthy
}

cmd_stop() {
  local entry name pid deadline i
  local -a names=() pids=() left_names=() left_pids=()
  for entry in "${BRANCHES[@]}"; do
    name="$(branch_name "${entry}")"
    if pid="$(running_pid "${name}")"; then
      kill -TERM "${pid}" 2>/dev/null || true
      names+=("${name}")
      pids+=("${pid}")
      log "sent SIGTERM to ${name} (pid ${pid})"
    else
      rm -f "$(pid_file "${name}")"
      log "${name} not running"
    fi
  done
  deadline=$((SECONDS + BG_STOP_TIMEOUT))
  while ((${#pids[@]} > 0)); do
    left_names=()
    left_pids=()
    for i in "${!pids[@]}"; do
      if pid_alive "${pids[i]}"; then
        left_names+=("${names[i]}")
        left_pids+=("${pids[i]}")
      else
        rm -f "$(pid_file "${names[i]}")"
        log "${names[i]} stopped"
      fi
    done
    names=("${left_names[@]+"${left_names[@]}"}")
    pids=("${left_pids[@]+"${left_pids[@]}"}")
    ((${#pids[@]} == 0)) && break
    if ((SECONDS >= deadline)); then
      for i in "${!pids[@]}"; do
        printf 'local-multi-branch: %s (pid %s) still running after %ss; sending SIGKILL\n' \
          "${names[i]}" "${pids[i]}" "${BG_STOP_TIMEOUT}" >&2
        kill -KILL "${pids[i]}" 2>/dev/null || true
        rm -f "$(pid_file "${names[i]}")"
      done
      return 1
    fi
    sleep "${POLL_INTERVAL}"
  done
}

cmd_status() {
  local entry name url pid state all_up=0
  for entry in "${BRANCHES[@]}"; do
    name="$(branch_name "${entry}")"
    url="$(branch_url "${entry}")"
    state="down"
    if pid="$(running_pid "${name}")"; then
      healthy "${url}" && state="up"
    else
      pid="-"
    fi
    [[ "${state}" == "up" ]] || all_up=3
    printf '%-9s %-24s %-8s %s\n' "${name}" "${url}" "${pid}" "${state}"
  done
  return "${all_up}"
}

usage() {
  printf 'usage: %s start|stop|status\n' "${0##*/}" >&2
  exit 2
}

main() {
  (($# == 1)) || usage
  check_config
  case "$1" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) usage ;;
  esac
}

main "$@"
