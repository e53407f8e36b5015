#!/usr/bin/env bash
# Integration test of compose/local-multi-branch.sh and compose/setup-cross-branch-testing.sh:
# starts the three-branch topology on free loopback ports in a temporary state dir, connects the
# branches (twice, the second run must be a no-op that still passes), checks status, stops
# everything and checks that every process exited.
# Environment: BRANCHGATE_BIN (ctest sets it; default <repo>/build/branchgate).
set -Eeuo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "${SCRIPT_DIR}/../.." && pwd)"
LOCAL="${REPO_DIR}/compose/local-multi-branch.sh"
SETUP="${REPO_DIR}/compose/setup-cross-branch-testing.sh"

export BRANCHGATE_BIN="${BRANCHGATE_BIN:-${REPO_DIR}/build/branchgate}"
# Nothing from the caller's environment may point the scripts elsewhere.
unset TOP_URL MASTER1_URL MASTER2_URL TOP_PEER_URL MASTER1_PEER_URL MASTER2_PEER_URL \
  TOP_TOKEN MASTER1_TOKEN MASTER2_TOKEN BRANCHGATE_ADMIN_TOKEN BG_SHARED_KEY_1 BG_SHARED_KEY_2 \
  BRANCHGATE_DATA BRANCHGATE_LISTEN

readonly NAMES=("top" "master-1" "master-2")
STATE_DIR=""
PASSED=0

fail() {
  printf 'compose-scripts: FAIL: %s\n' "$*" >&2
  exit 1
}

step() {
  printf '\n== %s\n' "$*"
}

on_exit() {
  local rc=$? name pid
  if [[ -n "${STATE_DIR}" && -d "${STATE_DIR}" ]]; then
    "${LOCAL}" stop >/dev/null 2>&1 || true
    # Whatever survived a failed stop.
    for name in "${NAMES[@]}"; do
      if [[ -f "${STATE_DIR}/${name}.pid" ]]; then
        pid="$(<"${STATE_DIR}/${name}.pid")"
        if [[ "${pid}" =~ ^[0-9]+$ ]]; then
          kill -KILL "${pid}" 2>/dev/null || true
        fi
      fi
    done
    if ((rc != 0)); then
      for name in "${NAMES[@]}"; do
        if [[ -f "${STATE_DIR}/${name}.log" ]]; then
          printf -- '--- last lines of %s.log\n' "${name}" >&2
          tail -n 15 "${STATE_DIR}/${name}.log" >&2 || true
        fi
      done
    fi
    rm -rf "${STATE_DIR}"
  fi
  if ((rc == 0 && PASSED == 1)); then
    printf 'compose-scripts: 1 passed, 0 failed\n'
    exit 0
  fi
  printf 'compose-scripts: 0 passed, 1 failed\n'
  exit 1
}
trap 'printf "compose-scripts: FAIL: command failed (line %s): %s\n" "${LINENO}" "${BASH_COMMAND}" >&2' ERR
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Sets BG_BASE_PORT to the first of three consecutive free ports in 20000-40000.
pick_base_port() {
  local attempt base
  for ((attempt = 0; attempt < 100; attempt++)); do
    base=$((20000 + RANDOM % 19998))
    if ! port_in_use "${base}" && ! port_in_use $((base + 1)) && ! port_in_use $((base + 2)); then
      BG_BASE_PORT="${base}"
      return 0
    fi
  done
  fail "no three consecutive free ports found"
}

# Checks setup output: every test-communication result ok, one per expected peer (4 in all).
check_setup_output() {
  local out="$1" ok_count bad_count
  ok_count="$({ grep -o '"ok":true' <<<"${out}" || true; } | wc -l)"
  bad_count="$({ grep -o '"ok":false' <<<"${out}" || true; } | wc -l)"
  ((bad_count == 0)) || fail "setup reported ${bad_count} failed result(s)"
  ((ok_count == 4)) || fail "expected 4 ok results (top: 2, each master: 1), got ${ok_count}"
  grep -q '^top: {"results":\[' <<<"${out}" || fail "no results printed for top"
  grep -q '^master-1: {"results":\[' <<<"${out}" || fail "no results printed for master-1"
  grep -q '^master-2: {"results":\[' <<<"${out}" || fail "no results printed for master-2"
}

# Fails if OUTPUT contains any admin token, shared key, the users' password or a user token
# (a JWT: its header is base64 of '{"', "eyJ").
check_no_secrets() {
  local out="$1" file secret
  [[ "${out}" != *eyJ* ]] || fail "output contains what looks like a user token"
  for file in "${STATE_DIR}"/*/admin.token "${STATE_DIR}"/shared-key-* "${STATE_DIR}"/user-password; do
    [[ -f "${file}" ]] || continue
    secret="$(<"${file}")"
    [[ -n "${secret}" ]] || continue
    if [[ "${out}" == *"${secret}"* ]]; then
      fail "output contains the secret from ${file##*/}"
    fi
  done
}

# admin_get NAME PATH: GET on branch NAME (top, master-1, master-2) with its admin token, which
# curl reads from stdin. Prints the body.
admin_get() {
  local port=$((BG_BASE_PORT + $(branch_index "$1")))
  curl -sS --max-time 10 -H @- "http://127.0.0.1:${port}$2" <<<"Authorization: Bearer $(<"${STATE_DIR}/$1/admin.token")"
}

# admin_post NAME PATH BODY_FILE: POST of a JSON body on branch NAME. Prints the body.
admin_post() {
  local port=$((BG_BASE_PORT + $(branch_index "$1")))
  curl -sS --max-time 30 -H @- -H 'Content-Type: application/json' --data-binary "@$3" \
    "http://127.0.0.1:${port}$2" <<<"Authorization: Bearer $(<"${STATE_DIR}/$1/admin.token")"
}

branch_index() {
  case "$1" in
    top) printf 0 ;;
    master-1) printf 1 ;;
    master-2) printf 2 ;;
    *) fail "unknown branch $1" ;;
  esac
}

# First "KEY":"string" value of compact JSON text.
json_str() {
  local v
  v="$(grep -o "\"$2\":\"[^\"]*\"" <<<"$1" | head -n 1)" || true
  v="${v#*\":\"}"
  printf '%s' "${v%\"}"
}

# What the later setup steps did, checked on the branches themselves rather than in the
# script's words: the organisation and its two users on master-2 (synced from top); the license
# issued on top, active there and valid when master-2 (which did not take part) validates its key;
# the assembly completed on master-1 with a meta result, submitted by the member (the user the
# federated login at master-1 stands for), not by an admin.
check_federation() {
  local out="$1" org aid lid body key member uid req
  org="$(grep -o "organisation 'Cross-branch demo' ([0-9a-f-]*)" <<<"${out}" | head -n 1 | grep -o '([0-9a-f-]*)' | tr -d '()')"
  [[ -n "${org}" ]] || fail "setup printed no organisation id"
  grep -q 'license validated on master-1: VALID' <<<"${out}" || fail "no license validation on master-1"
  lid="$(grep -o 'issued license [0-9a-f-]\{36\} on top' <<<"${out}" | head -n 1 | cut -d' ' -f3)"
  [[ -n "${lid}" ]] || fail "setup printed no license id"
  aid="$(grep -o 'assembly [0-9a-f]\{64\} completed on master-1' <<<"${out}" | head -n 1 | cut -d' ' -f2)"
  [[ -n "${aid}" ]] || fail "no completed assembly on master-1"

  body="$(admin_get master-2 "/api/v1/organizations/${org}/users")"
  [[ "${body}" == *'owner@demo.example'* && "${body}" == *'member@demo.example'* ]] ||
    fail "the organisation's users are not on master-2: ${body:0:300}"
  body="$(admin_get master-2 "/api/v1/organizations?limit=500")"
  [[ "${body}" == *"\"id\":\"${org}\""* ]] || fail "master-2 does not list organisation ${org}"

  body="$(admin_get top "/api/v1/licenses/${lid}")"
  [[ "${body}" == *'"status":"active"'* && "${body}" == *"\"organization_id\":\"${org}\""* ]] ||
    fail "license ${lid} is not active for ${org} on top: $(json_str "${body}" code)"
  key="$(json_str "${body}" license_key)"
  [[ -n "${key}" ]] || fail "top gives no key for license ${lid}"
  req="$(mktemp "${STATE_DIR}/validate.XXXXXX")"
  printf '{"license_key":"%s","domain":"demo.example"}' "${key}" >"${req}"
  body="$(admin_post master-2 /api/v1/licenses/validate "${req}")"
  rm -f "${req}"
  [[ "${body}" == *'"valid":true'* ]] ||
    fail "license ${lid} is not valid on master-2: $(json_str "${body}" code)"

  body="$(admin_get master-1 "/api/v1/assemblies/${aid}?organization_id=${org}")"
  [[ "${body}" == *'"ok":"ASSEMBLY_COMPLETED"'* && "${body}" == *'"meta":[{'* ]] ||
    fail "assembly ${aid} is not completed on master-1: ${body:0:300}"
  uid="$(grep -o '"user":{"user_id":"[^"]*"' <<<"${body}" | head -n 1)" || true
  uid="${uid##*:\"}"
  uid="${uid%\"}"
  member="$(admin_get master-1 "/api/v1/organizations/${org}/users" | sed 's/},{/}\n{/g' | grep -F '"email":"member@demo.example"' | head -n 1)" || true
  [[ -n "${uid}" && "${uid}" == "$(json_str "${member}" id)" ]] ||
    fail "assembly ${aid} was not submitted by the member (user ${uid:-none})"
}

# True when PID is a live process (a zombie waiting for its parent counts as exited).
pid_alive() {
  local stat
  kill -0 "$1" 2>/dev/null || return 1
  [[ -r "/proc/$1/stat" ]] || return 0
  stat="$(<"/proc/$1/stat")" || return 1
  [[ "${stat##*) }" != Z* ]]
}

running_pids() {
  local name
  for name in "${NAMES[@]}"; do
    [[ -f "${STATE_DIR}/${name}.pid" ]] || fail "no pid file for ${name}"
    printf '%s ' "$(<"${STATE_DIR}/${name}.pid")"
  done
}

main() {
  local out pids pids_again pid count rc
  [[ -x "${BRANCHGATE_BIN}" ]] || fail "no executable at ${BRANCHGATE_BIN}"
  STATE_DIR="$(mktemp -d)"
  export BG_STATE_DIR="${STATE_DIR}"
  pick_base_port
  export BG_BASE_PORT
  printf 'compose-scripts: ports %s-%s, state %s\n' "${BG_BASE_PORT}" $((BG_BASE_PORT + 2)) \
    "${STATE_DIR}"

  step "local-multi-branch.sh start"
  "${LOCAL}" start || fail "start exited $?"
  pids="$(running_pids)"

  step "local-multi-branch.sh start (already running)"
  "${LOCAL}" start || fail "second start exited $?"
  pids_again="$(running_pids)"
  [[ "${pids}" == "${pids_again}" ]] || fail "second start changed the pids (${pids} -> ${pids_again})"

  step "setup-cross-branch-testing.sh"
  out="$("${SETUP}" 2>&1)" || {
    printf '%s\n' "${out}"
    fail "setup exited non-zero"
  }
  printf '%s\n' "${out}"
  check_setup_output "${out}"
  check_no_secrets "${out}"
  count="$(grep -c '^setup-cross-branch-testing: registered ' <<<"${out}")" || true
  ((count == 4)) || fail "expected 4 registrations, got ${count}"
  check_federation "${out}"

  step "setup-cross-branch-testing.sh (again)"
  out="$("${SETUP}" 2>&1)" || {
    printf '%s\n' "${out}"
    fail "second setup exited non-zero"
  }
  printf '%s\n' "${out}"
  check_setup_output "${out}"
  check_no_secrets "${out}"
  count="$(grep -c ' already registered on ' <<<"${out}")" || true
  ((count == 4)) || fail "expected 4 already-registered pairs on the second run, got ${count}"
  grep -q "organisation 'Cross-branch demo' (.*) already on top" <<<"${out}" ||
    fail "the second run created the organisation again"
  check_federation "${out}"

  step "local-multi-branch.sh status"
  out="$("${LOCAL}" status)" || fail "status exited $? while everything runs"
  printf '%s\n' "${out}"
  count="$(grep -c ' up$' <<<"${out}")" || true
  ((count == 3)) || fail "status shows ${count} branches up, expected 3"

  step "local-multi-branch.sh stop"
  "${LOCAL}" stop || fail "stop exited $?"
  for pid in ${pids}; do
    if pid_alive "${pid}"; then
      fail "process ${pid} still running after stop"
    fi
  done

  step "local-multi-branch.sh status (stopped)"
  rc=0
  out="$("${LOCAL}" status)" || rc=$?
  printf '%s\n' "${out}"
  ((rc == 3)) || fail "status exited ${rc} with everything stopped, expected 3"
  count="$(grep -c ' down$' <<<"${out}")" || true
  ((count == 3)) || fail "status shows ${count} branches down, expected 3"

  PASSED=1
}

main "$@"
