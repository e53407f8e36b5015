#!/usr/bin/env bash
# Connects the three branches of the multi-branch topology (top, master-1, master-2) and checks
# that they can talk to each other. Works against local-multi-branch.sh or docker compose.
#
# Steps (each a function; main() runs them in order):
#   wait_for_branches      every branch answers GET /healthz
#   register_pairs         master-1 and master-2 registered on top, top on each master, with one
#                          shared key per pair; 409 BRANCH_EXISTS counts as already done
#   verify_communication   GET /api/v1/cross-branch/test-communication on all three; prints the
#                          JSON results; fails if any result is not ok
#
# Environment:
#   BG_BASE_PORT                       default 8000
#   TOP_URL, MASTER1_URL, MASTER2_URL  where this script reaches each branch
#                                      (default http://127.0.0.1:BG_BASE_PORT, +1, +2)
#   TOP_PEER_URL, MASTER1_PEER_URL, MASTER2_PEER_URL
#                                      the branch's own public URL (its --url), the one the other
#                                      branches call and present as X-Branch-Origin; default the
#                                      *_URL above. Set them for docker compose, e.g.
#                                      TOP_PEER_URL=http://top:8000
#   TOP_TOKEN, MASTER1_TOKEN, MASTER2_TOKEN
#                                      admin tokens; default BG_STATE_DIR/<name>/admin.token when
#                                      readable, else BRANCHGATE_ADMIN_TOKEN
#   BG_STATE_DIR                       default ./.local-branches
#   BG_SHARED_KEY_1, BG_SHARED_KEY_2   keys of the pairs top<->master-1 and top<->master-2; when
#                                      unset, read from BG_STATE_DIR/shared-key-N, else generated
#                                      (and saved there, mode 0600, when BG_STATE_DIR exists, so a
#                                      re-run after a partial run uses the same key)
#   BG_WAIT_TIMEOUT                    seconds to wait for /healthz (default 60)
#
# Keys and tokens are never printed and never passed on a command line (curl reads them from
# its standard input).
set -euo pipefail

if ((BASH_VERSINFO[0] < 4)); then
  printf 'setup-cross-branch-testing: needs bash 4 or later\n' >&2
  exit 1
fi

BG_BASE_PORT="${BG_BASE_PORT:-8000}"
BG_STATE_DIR="${BG_STATE_DIR:-./.local-branches}"
BG_WAIT_TIMEOUT="${BG_WAIT_TIMEOUT:-60}"

readonly POLL_INTERVAL="0.2"
readonly BRANCH_NAMES=("top" "master-1" "master-2")

# Per branch name: URL from here, public URL, type, admin token.
declare -A URL=() PEER_URL=() TYPE=() TOKEN=()
# Per pair number: shared key.
declare -A SHARED_KEY=()

WORK_DIR=""
FAILED=0

umask 077

die() {
  printf 'setup-cross-branch-testing: %s\n' "$*" >&2
  exit 1
}

log() {
  printf 'setup-cross-branch-testing: %s\n' "$*"
}

warn() {
  printf 'setup-cross-branch-testing: %s\n' "$*" >&2
}

cleanup() {
  if [[ -n "${WORK_DIR}" ]]; then
    rm -rf "${WORK_DIR}"
  fi
}

# Escapes a string for use inside a JSON string literal.
json_escape() {
  local s="$1"
  s="${s//\\/\\\\}"
  s="${s//\"/\\\"}"
  printf '%s' "${s}"
}

# Escapes a string for use inside a double-quoted curl config value.
curl_escape() {
  json_escape "$1"
}

# Admin token of branch NAME: VAR from the environment, else the token file, else
# BRANCHGATE_ADMIN_TOKEN.
load_token() {
  local name="$1" var="$2" file token=""
  file="${BG_STATE_DIR}/${name}/admin.token"
  if [[ -n "${!var:-}" ]]; then
    token="${!var}"
  elif [[ -r "${file}" ]]; then
    token="$(<"${file}")"
  elif [[ -n "${BRANCHGATE_ADMIN_TOKEN:-}" ]]; then
    token="${BRANCHGATE_ADMIN_TOKEN}"
  fi
  [[ -n "${token}" ]] ||
    die "no admin token for ${name}: set ${var}, BRANCHGATE_ADMIN_TOKEN or create ${file}"
  TOKEN["${name}"]="${token}"
}

# Shared key of pair N: BG_SHARED_KEY_N, else BG_STATE_DIR/shared-key-N, else a new key
# (saved to that file when BG_STATE_DIR exists).
load_shared_key() {
  local n="$1" var="BG_SHARED_KEY_$1" file key=""
  file="${BG_STATE_DIR}/shared-key-${n}"
  if [[ -n "${!var:-}" ]]; then
    key="${!var}"
  elif [[ -r "${file}" ]]; then
    key="$(<"${file}")"
  else
    key="$(head -c 32 /dev/urandom | base64 | tr -d '/+=\n' | head -c 40)"
    if [[ -d "${BG_STATE_DIR}" ]]; then
      printf '%s\n' "${key}" >"${file}"
    fi
  fi
  ((${#key} >= 16)) || die "shared key ${n} is shorter than 16 characters"
  SHARED_KEY["${n}"]="${key}"
}

load_config() {
  [[ "${BG_BASE_PORT}" =~ ^[0-9]+$ ]] || die "BG_BASE_PORT must be a port number"
  [[ "${BG_WAIT_TIMEOUT}" =~ ^[0-9]+$ ]] || die "BG_WAIT_TIMEOUT must be a whole number of seconds"
  command -v curl >/dev/null || die "curl is required"

  URL[top]="${TOP_URL:-http://127.0.0.1:${BG_BASE_PORT}}"
  URL[master-1]="${MASTER1_URL:-http://127.0.0.1:$((BG_BASE_PORT + 1))}"
  URL[master-2]="${MASTER2_URL:-http://127.0.0.1:$((BG_BASE_PORT + 2))}"
  local name
  for name in "${BRANCH_NAMES[@]}"; do
    URL["${name}"]="${URL["${name}"]%/}"
  done
  PEER_URL[top]="${TOP_PEER_URL:-${URL[top]}}"
  PEER_URL[master-1]="${MASTER1_PEER_URL:-${URL[master-1]}}"
  PEER_URL[master-2]="${MASTER2_PEER_URL:-${URL[master-2]}}"
  TYPE[top]="top_branch"
  TYPE[master-1]="master_branch"
  TYPE[master-2]="master_branch"

  load_token top TOP_TOKEN
  load_token master-1 MASTER1_TOKEN
  load_token master-2 MASTER2_TOKEN
  load_shared_key 1
  load_shared_key 2

  WORK_DIR="$(mktemp -d)"
}

# api METHOD BRANCH PATH [BODY_FILE]: calls BRANCH's admin API. Sets HTTP_STATUS and HTTP_BODY.
# The token (and the body, which may hold a key) reach curl through files and stdin only.
HTTP_STATUS=""
HTTP_BODY=""
api() {
  local method="$1" name="$2" path="$3" body_file="${4:-}" out="${WORK_DIR}/response"
  local config
  config="url = \"$(curl_escape "${URL["${name}"]}${path}")\""
  config+=$'\n'"request = \"${method}\""
  config+=$'\n'"header = \"Authorization: Bearer $(curl_escape "${TOKEN["${name}"]}")\""
  config+=$'\n'"header = \"Accept: application/json\""
  if [[ -n "${body_file}" ]]; then
    config+=$'\n'"header = \"Content-Type: application/json\""
    config+=$'\n'"data-binary = \"@$(curl_escape "${body_file}")\""
  fi
  config+=$'\n'"output = \"$(curl_escape "${out}")\""
  config+=$'\n'"write-out = \"%{http_code}\""
  HTTP_BODY=""
  if ! HTTP_STATUS="$(curl --silent --show-error --connect-timeout 5 --max-time 30 \
    --config - <<<"${config}")"; then
    HTTP_STATUS="000"
  fi
  if [[ -f "${out}" ]]; then
    HTTP_BODY="$(<"${out}")"
    rm -f "${out}"
  fi
}

# Prints the "code" of an error body (nothing when there is none).
error_code() {
  local code
  code="$(printf '%s' "$1" | grep -o '"code"[[:space:]]*:[[:space:]]*"[^"]*"' | head -n 1)" || true
  code="${code%\"}"
  printf '%s' "${code##*\"}"
}

wait_for_branches() {
  local deadline=$((SECONDS + BG_WAIT_TIMEOUT)) name body
  for name in "${BRANCH_NAMES[@]}"; do
    while :; do
      body="$(curl --silent --max-time 2 "${URL["${name}"]}/healthz" 2>/dev/null)" || body=""
      [[ "${body}" == *'"status"'*'"ok"'* ]] && break
      ((SECONDS < deadline)) ||
        die "${name} does not answer ${URL["${name}"]}/healthz after ${BG_WAIT_TIMEOUT}s"
      sleep "${POLL_INTERVAL}"
    done
    log "${name} is up at ${URL["${name}"]}"
  done
}

# register ON PEER PAIR: registers branch PEER on branch ON with the key of pair PAIR.
register() {
  local on="$1" peer="$2" pair="$3" body_file="${WORK_DIR}/register.json" code
  printf '{"branch_name":"%s","branch_url":"%s","branch_type":"%s","api_key":"%s"}' \
    "$(json_escape "${peer}")" "$(json_escape "${PEER_URL["${peer}"]}")" \
    "${TYPE["${peer}"]}" "$(json_escape "${SHARED_KEY["${pair}"]}")" >"${body_file}"
  api POST "${on}" /api/v1/branches "${body_file}"
  rm -f "${body_file}"
  code="$(error_code "${HTTP_BODY}")"
  case "${HTTP_STATUS}" in
    201)
      log "registered ${peer} on ${on}"
      ;;
    409)
      if [[ "${code}" != "BRANCH_EXISTS" ]]; then
        warn "registering ${peer} on ${on}: HTTP 409 ${code}"
        return 1
      fi
      log "${peer} already registered on ${on}"
      ;;
    000)
      warn "registering ${peer} on ${on}: ${URL["${on}"]} unreachable"
      return 1
      ;;
    *)
      warn "registering ${peer} on ${on}: HTTP ${HTTP_STATUS} ${code}"
      return 1
      ;;
  esac
}

register_pairs() {
  local rc=0
  register top master-1 1 || rc=1
  register master-1 top 1 || rc=1
  register top master-2 2 || rc=1
  register master-2 top 2 || rc=1
  ((rc == 0)) || die "registration failed"
}

# check_results BRANCH EXPECTED_PEER...: runs test-communication on BRANCH, prints the JSON and
# fails unless every result is ok and every expected peer has a result.
check_results() {
  local name="$1" peer line results rc=0
  shift
  api GET "${name}" /api/v1/cross-branch/test-communication
  printf '%s: %s\n' "${name}" "${HTTP_BODY}"
  if [[ "${HTTP_STATUS}" != "200" ]]; then
    warn "test-communication on ${name}: HTTP ${HTTP_STATUS} $(error_code "${HTTP_BODY}")"
    return 1
  fi
  # The body is compact JSON: one result object per line.
  results="${HTTP_BODY#*\"results\":[}"
  results="${results%\]\}}"
  results="${results//\},\{/\}$'\n'\{}"
  while IFS= read -r line; do
    [[ "${line}" == *'"branch_name"'* ]] || continue
    if ! printf '%s' "${line}" | grep -q '"ok"[[:space:]]*:[[:space:]]*true'; then
      warn "${name} cannot reach a peer: ${line}"
      rc=1
    fi
  done <<<"${results}"
  for peer in "$@"; do
    if ! printf '%s\n' "${results}" | grep -q "\"branch_name\"[[:space:]]*:[[:space:]]*\"${peer}\""; then
      warn "test-communication on ${name} has no result for ${peer}"
      rc=1
    fi
  done
  return "${rc}"
}

verify_communication() {
  local rc=0
  check_results top master-1 master-2 || rc=1
  check_results master-1 top || rc=1
  check_results master-2 top || rc=1
  if ((rc != 0)); then
    warn "cross-branch communication check failed (a 403 INVALID_BRANCH_CREDENTIALS usually means"
    warn "the two sides of a pair hold different keys: set BG_SHARED_KEY_1/2 to the key used first)"
    FAILED=1
    return 0
  fi
  log "all branches reach each other"
}

main() {
  trap cleanup EXIT
  load_config
  wait_for_branches
  register_pairs
  # Later steps (organisations, licenses, assemblies) go here.
  verify_communication
  return "${FAILED}"
}

main "$@"
