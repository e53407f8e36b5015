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
#   create_organization    an organisation on top (found by name, else created) with an owner
#                          and a member
#   sync_organization      syncs it to both masters; waits until each lists it with its users
#   license_check          issues a license on top and validates it on master-1
#   login_member           the member logs in at master-1 (federated: the user's home is top)
#   submit_assembly        as the member, an assembly (template probe) on master-1: create, tus
#                          upload of a short WAV (ffmpeg's sine, or a generated WAV without
#                          ffmpeg), then polls until ASSEMBLY_COMPLETED and prints a summary
#                          of the result
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
#   BG_WAIT_TIMEOUT                    seconds to wait for /healthz, the sync and the assembly
#                                      (default 60)
#   BG_SETUP_ORG, BG_SETUP_OWNER_EMAIL, BG_SETUP_MEMBER_EMAIL, BG_SETUP_DOMAIN
#                                      the organisation's name, its users, the license's domain
#   BG_SETUP_PASSWORD                  the users' password; when unset, read from
#                                      BG_STATE_DIR/user-password, else generated (and saved there)
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

# ---- organisation, users, sync, license, login, assembly ----

# First "KEY":"string" value of JSON text (our answers are compact JSON).
json_str() {
  local v
  v="$(printf '%s' "$1" | grep -o "\"$2\":\"[^\"]*\"" | head -n 1)" || true
  v="${v#*\":\"}"
  printf '%s' "${v%\"}"
}

# write_json FILE TEXT: a request body (may hold a password), private to us.
write_json() {
  printf '%s' "$2" >"$1"
}

ORG_ID=""
ORG_NAME="${BG_SETUP_ORG:-Cross-branch demo}"
OWNER_EMAIL="${BG_SETUP_OWNER_EMAIL:-owner@demo.example}"
MEMBER_EMAIL="${BG_SETUP_MEMBER_EMAIL:-member@demo.example}"
USER_PASSWORD=""
LICENSE_KEY=""
LICENSE_DOMAIN="${BG_SETUP_DOMAIN:-demo.example}"
USER_TOKEN=""
ASSEMBLY_ID=""

# The users' password: BG_SETUP_PASSWORD, else BG_STATE_DIR/user-password, else a new one.
load_password() {
  local file="${BG_STATE_DIR}/user-password"
  if [[ -n "${BG_SETUP_PASSWORD:-}" ]]; then
    USER_PASSWORD="${BG_SETUP_PASSWORD}"
  elif [[ -r "${file}" ]]; then
    USER_PASSWORD="$(<"${file}")"
  else
    USER_PASSWORD="$(head -c 24 /dev/urandom | base64 | tr -d '/+=\n' | head -c 24)"
    if [[ -d "${BG_STATE_DIR}" ]]; then
      printf '%s\n' "${USER_PASSWORD}" >"${file}"
    fi
  fi
}

# The organisation on top: found by name, else created; then an owner and a member.
create_organization() {
  local body="${WORK_DIR}/org.json" line email role
  api GET top "/api/v1/organizations?limit=500"
  [[ "${HTTP_STATUS}" == 200 ]] || die "listing organisations on top: HTTP ${HTTP_STATUS}"
  line="$(printf '%s' "${HTTP_BODY}" | sed 's/},{/}\n{/g' | grep -F "\"name\":\"$(json_escape "${ORG_NAME}")\"" | head -n 1)" || true
  ORG_ID="$(json_str "${line}" id)"
  if [[ -z "${ORG_ID}" ]]; then
    write_json "${body}" "{\"name\":\"$(json_escape "${ORG_NAME}")\"}"
    api POST top /api/v1/organizations "${body}"
    [[ "${HTTP_STATUS}" == 201 ]] || die "creating the organisation: HTTP ${HTTP_STATUS} $(error_code "${HTTP_BODY}")"
    ORG_ID="$(json_str "${HTTP_BODY}" id)"
    log "created organisation '${ORG_NAME}' (${ORG_ID}) on top"
  else
    log "organisation '${ORG_NAME}' (${ORG_ID}) already on top"
  fi
  for email in "${OWNER_EMAIL}" "${MEMBER_EMAIL}"; do
    role=member
    [[ "${email}" == "${OWNER_EMAIL}" ]] && role=owner
    write_json "${body}" "{\"email\":\"$(json_escape "${email}")\",\"name\":\"${role^}\",\"password\":\"$(json_escape "${USER_PASSWORD}")\",\"role\":\"${role}\"}"
    api POST top "/api/v1/organizations/${ORG_ID}/users" "${body}"
    case "${HTTP_STATUS}" in
      201) log "created ${role} ${email}" ;;
      409) log "${role} ${email} already exists" ;;
      *) rm -f "${body}"; die "creating ${email}: HTTP ${HTTP_STATUS} $(error_code "${HTTP_BODY}")" ;;
    esac
  done
  rm -f "${body}"
}

# Sync the organisation to both masters and wait until each lists it with its users.
sync_organization() {
  local body="${WORK_DIR}/sync.json" name deadline
  write_json "${body}" '{"branches":["master-1","master-2"]}'
  api POST top "/api/v1/organizations/${ORG_ID}/sync" "${body}"
  rm -f "${body}"
  [[ "${HTTP_STATUS}" == 202 ]] || die "queueing the sync: HTTP ${HTTP_STATUS} $(error_code "${HTTP_BODY}")"
  for name in master-1 master-2; do
    deadline=$((SECONDS + BG_WAIT_TIMEOUT))
    while :; do
      api GET "${name}" "/api/v1/organizations/${ORG_ID}/users"
      if [[ "${HTTP_STATUS}" == 200 && "${HTTP_BODY}" == *"${MEMBER_EMAIL}"* && "${HTTP_BODY}" == *"${OWNER_EMAIL}"* ]]; then
        break
      fi
      ((SECONDS < deadline)) || die "the organisation did not reach ${name} within ${BG_WAIT_TIMEOUT}s"
      sleep "${POLL_INTERVAL}"
    done
    log "organisation and its users are on ${name}"
  done
}

# Issue a license on top; validate it on master-1 (answered through the top).
license_check() {
  local body="${WORK_DIR}/license.json" code
  write_json "${body}" "{\"organization_id\":\"${ORG_ID}\",\"tier\":\"pro\",\"domains\":[\"$(json_escape "${LICENSE_DOMAIN}")\"],\"features\":[\"media\"],\"limits\":{\"branches\":3,\"users\":10},\"expires_at\":\"$(date -u -d '+365 days' '+%Y-%m-%dT%H:%M:%SZ')\"}"
  api POST top /api/v1/licenses "${body}"
  [[ "${HTTP_STATUS}" == 201 ]] || die "issuing the license: HTTP ${HTTP_STATUS} $(error_code "${HTTP_BODY}")"
  LICENSE_KEY="$(json_str "${HTTP_BODY}" license_key)"
  log "issued license $(json_str "${HTTP_BODY}" id) on top"
  write_json "${body}" "{\"license_key\":\"${LICENSE_KEY}\",\"domain\":\"$(json_escape "${LICENSE_DOMAIN}")\"}"
  api POST master-1 /api/v1/licenses/validate "${body}"
  rm -f "${body}"
  code="$(json_str "${HTTP_BODY}" code)"
  [[ "${HTTP_STATUS}" == 200 && "${HTTP_BODY}" == *'"valid":true'* ]] ||
    die "validating the license on master-1: HTTP ${HTTP_STATUS} ${code}"
  log "license validated on master-1: ${code} (checked by $(json_str "${HTTP_BODY}" checked_by))"
}

# Log in at master-1 as the member (homed on top: a federated login).
login_member() {
  local body="${WORK_DIR}/login.json" out="${WORK_DIR}/login.out" status
  write_json "${body}" "{\"email\":\"$(json_escape "${MEMBER_EMAIL}")\",\"password\":\"$(json_escape "${USER_PASSWORD}")\",\"organization_id\":\"${ORG_ID}\"}"
  status="$(curl --silent --show-error --max-time 30 -o "${out}" -w '%{http_code}' \
    -H 'Content-Type: application/json' --data-binary "@${body}" "${URL[master-1]}/api/v1/auth/login")" || status=000
  rm -f "${body}"
  [[ "${status}" == 200 ]] || die "logging in at master-1: HTTP ${status} $(error_code "$(cat "${out}" 2>/dev/null)")"
  USER_TOKEN="$(json_str "$(<"${out}")" token)"
  rm -f "${out}"
  log "${MEMBER_EMAIL} logged in at master-1"
}

# A small WAV: ffmpeg's sine when ffmpeg exists, else a generated 1 s 200 Hz square wave.
make_media() {
  local f="$1"
  if command -v ffmpeg >/dev/null; then
    ffmpeg -nostdin -hide_banner -loglevel error -y -f lavfi -i sine=frequency=440:duration=2 "${f}" && return 0
  fi
  # RIFF header + 1 s of 8 kHz 8-bit mono (8000 bytes): a 200 Hz square wave
  {
    printf 'RIFF'; printf '\x64\x1f\x00\x00'; printf 'WAVEfmt '
    printf '\x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x40\x1f\x00\x00\x01\x00\x08\x00'
    printf 'data'; printf '\x40\x1f\x00\x00'
    for _ in $(seq 200); do printf '\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20\xe0\xe0\xe0\xe0\xe0\xe0\xe0\xe0\xe0\xe0\xe0\xe0\xe0\xe0\xe0\xe0\xe0\xe0\xe0\xe0'; done
  } >"${f}"
}

# reach BRANCH URL: URL (absolute, from one of BRANCH's answers, or a path) as this script
# reaches BRANCH. A branch answers with its public URL (http://master-1:8001 under docker
# compose), which the host running this script may not resolve; the path is what counts.
reach() {
  local name="$1" u="$2"
  if [[ "${u}" == *://* ]]; then
    u="${u#*://}"
    if [[ "${u}" == */* ]]; then
      u="/${u#*/}"
    else
      u="/"
    fi
  fi
  [[ "${u}" == /* ]] || u="/${u}"
  printf '%s%s' "${URL["${name}"]}" "${u}"
}

# First number value of "KEY" in JSON text (nothing when absent).
json_num() {
  local v
  v="$(printf '%s' "$1" | grep -o "\"$2\":-\?[0-9][0-9.eE+-]*" | head -n 1)" || true
  printf '%s' "${v#*:}"
}

# One line about a completed probe assembly: what its meta step found, and how long it took.
assembly_summary() {
  local st="$1" loud
  loud="$(json_num "${st}" integrated_lufs)"
  printf 'results: meta (%s, %s s, %s %s Hz %s ch%s); execution %s s, queue %s s' \
    "$(json_str "${st}" format)" "$(json_num "${st}" duration)" "$(json_str "${st}" audio_codec)" \
    "$(json_num "${st}" sample_rate)" "$(json_num "${st}" channels)" \
    "${loud:+, ${loud} LUFS}" "$(json_num "${st}" execution_duration)" \
    "$(json_num "${st}" queue_duration)"
}

# user_call METHOD URL OUTFILE [curl args...]: a request with the user's token (from stdin).
user_call() {
  local method="$1" url="$2" out="$3"
  shift 3
  curl --silent --show-error --max-time 60 -X "${method}" -o "${out}" -w '%{http_code}' \
    -H @- "$@" "${url}" <<<"Authorization: Bearer ${USER_TOKEN}" || printf '000'
}

# Submit an assembly on master-1 as the member: create, tus upload, wait for completion.
submit_assembly() {
  local media="${WORK_DIR}/tone.wav" out="${WORK_DIR}/asm.out" size status tus loc aid fname deadline st ok
  make_media "${media}"
  size="$(stat -c %s "${media}")"
  status="$(user_call POST "${URL[master-1]}/api/v1/assemblies" "${out}" -H 'Content-Type: application/json' \
    --data-binary "{\"template_id\":\"probe\",\"files\":[{\"name\":\"tone.wav\",\"size\":${size}}]}")"
  [[ "${status}" == 201 || "${status}" == 200 ]] || die "creating the assembly on master-1: HTTP ${status} $(error_code "$(<"${out}")")"
  ASSEMBLY_ID="$(json_str "$(<"${out}")" assembly_id)"
  tus="$(json_str "$(<"${out}")" tus_url)"
  [[ "${ASSEMBLY_ID}" =~ ^[0-9a-f]{64}$ ]] || die "the assembly on master-1 has no id: $(head -c 300 "${out}")"
  [[ -n "${tus}" ]] || die "the assembly on master-1 has no tus_url"
  aid="$(printf '%s' "${ASSEMBLY_ID}" | base64 | tr -d '\n')"
  fname="$(printf 'tone.wav' | base64 | tr -d '\n')"
  tus="$(reach master-1 "${tus}")"
  status="$(curl --silent --show-error --max-time 60 -o /dev/null -D "${WORK_DIR}/tus.h" -w '%{http_code}' -X POST \
    -H @- -H 'Tus-Resumable: 1.0.0' -H "Upload-Length: ${size}" \
    -H "Upload-Metadata: assembly_id ${aid},filename ${fname}" "${tus}" <<<"Authorization: Bearer ${USER_TOKEN}")" || status=000
  [[ "${status}" == 201 ]] || die "creating the upload: HTTP ${status}"
  loc="$(grep -i '^location:' "${WORK_DIR}/tus.h" | tr -d '\r' | cut -d' ' -f2)"
  [[ -n "${loc}" ]] || die "the upload was created without a Location"
  loc="$(reach master-1 "${loc}")"
  status="$(user_call PATCH "${loc}" /dev/null -H 'Tus-Resumable: 1.0.0' -H 'Upload-Offset: 0' \
    -H 'Content-Type: application/offset+octet-stream' --data-binary "@${media}")"
  [[ "${status}" == 204 ]] || die "uploading: HTTP ${status}"
  log "uploaded tone.wav (${size} bytes) to assembly ${ASSEMBLY_ID} on master-1"
  deadline=$((SECONDS + BG_WAIT_TIMEOUT))
  while :; do
    status="$(user_call GET "${URL[master-1]}/api/v1/assemblies/${ASSEMBLY_ID}" "${out}")"
    st="$(<"${out}")"
    ok="$(json_str "${st}" ok)"
    [[ "${ok}" == ASSEMBLY_COMPLETED ]] && break
    [[ -n "$(json_str "${st}" error)" ]] && die "the assembly failed: $(json_str "${st}" error) $(json_str "${st}" message)"
    ((SECONDS < deadline)) || die "the assembly did not complete within ${BG_WAIT_TIMEOUT}s (${ok:-no state})"
    sleep "${POLL_INTERVAL}"
  done
  log "assembly ${ASSEMBLY_ID} completed on master-1: $(assembly_summary "${st}")"
  rm -f "${out}" "${media}" "${WORK_DIR}/tus.h"
}

main() {
  trap cleanup EXIT
  load_config
  load_password
  wait_for_branches
  register_pairs
  verify_communication
  ((FAILED == 0)) || return "${FAILED}"
  create_organization
  sync_organization
  license_check
  login_member
  submit_assembly
  log "done: organisation ${ORG_ID}, license validated, assembly ${ASSEMBLY_ID} completed"
  return "${FAILED}"
}

main "$@"
