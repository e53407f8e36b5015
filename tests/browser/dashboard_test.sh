#!/usr/bin/env bash
# Browser test of the dashboard at GET / (docs/dashboard.md): starts a top branch and a master
# branch on free loopback ports, registers them with each other and pings so the master is up,
# checks the page's headers with curl, then drives headless Chromium through
# tests/browser/dashboard.mjs (playwright-core from tests/js): sign in by keyboard, the master's
# row turns "up", live events over SSE, a dead letter requeued, no horizontal overflow at 375 px,
# forget token. Screenshots go to BG_ARTIFACTS_DIR (default ./tests/browser-artifacts).
#
# Environment:
#   BRANCHGATE_BIN     the binary (ctest sets it; default <repo>/build/branchgate)
#   CHROMIUM_BIN       default /usr/bin/chromium (Debian's chromium package)
#   BG_ARTIFACTS_DIR   where screenshots go
#   BG_DASHBOARD_SKIP_REGISTER=1
#                      registers nothing: the test must then FAIL (the master never shows up);
#                      this is how to check that the test can fail.
# Missing chromium, node or npm is a failure, not a skip: scripts/install-deps.sh installs them.
set -Eeuo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "${SCRIPT_DIR}/../.." && pwd)"
JS_DIR="${REPO_DIR}/tests/js"

BRANCHGATE_BIN="${BRANCHGATE_BIN:-${REPO_DIR}/build/branchgate}"
CHROMIUM_BIN="${CHROMIUM_BIN:-/usr/bin/chromium}"
BG_ARTIFACTS_DIR="${BG_ARTIFACTS_DIR:-${PWD}/tests/browser-artifacts}"
unset BRANCHGATE_ADMIN_TOKEN BRANCHGATE_DATA BRANCHGATE_LISTEN

readonly START_DEADLINE_S=20
readonly PEER="master-1"

WORK_DIR=""
PIDS=()
PASSED=0

fail() {
  printf 'dashboard-browser: FAIL: %s\n' "$*" >&2
  exit 1
}

step() {
  printf '\n== %s\n' "$*"
}

on_exit() {
  local rc=$? pid name
  for pid in "${PIDS[@]}"; do
    kill -TERM "${pid}" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do
      kill -0 "${pid}" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "${pid}" 2>/dev/null || true
    wait "${pid}" 2>/dev/null || true
  done
  if [[ -n "${WORK_DIR}" && -d "${WORK_DIR}" ]]; then
    if ((rc != 0 || PASSED == 0)); then
      for name in top "${PEER}"; do
        if [[ -f "${WORK_DIR}/${name}.log" ]]; then
          printf -- '--- last lines of %s.log\n' "${name}" >&2
          tail -n 15 "${WORK_DIR}/${name}.log" >&2 || true
        fi
      done
    fi
    rm -rf "${WORK_DIR}"
  fi
  if ((rc == 0 && PASSED == 1)); then
    printf 'dashboard-browser: 1 passed, 0 failed\n'
    exit 0
  fi
  printf 'dashboard-browser: 0 passed, 1 failed\n'
  exit 1
}
trap 'printf "dashboard-browser: FAIL: command failed (line %s): %s\n" "${LINENO}" "${BASH_COMMAND}" >&2' ERR
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

check_tools() {
  [[ -x "${BRANCHGATE_BIN}" ]] || fail "no executable at ${BRANCHGATE_BIN}"
  [[ -x "${CHROMIUM_BIN}" ]] ||
    fail "chromium not found at ${CHROMIUM_BIN}: install Debian's chromium (scripts/install-deps.sh)"
  command -v node >/dev/null || fail "node not found: install nodejs (scripts/install-deps.sh)"
  command -v npm >/dev/null || fail "npm not found: install npm (scripts/install-deps.sh)"
  command -v curl >/dev/null || fail "curl not found"
  [[ -f "${JS_DIR}/package.json" ]] || fail "${JS_DIR}/package.json is missing"
  grep -q '"playwright-core"' "${JS_DIR}/package.json" ||
    fail "tests/js/package.json does not list playwright-core"
}

# Installs tests/js's packages when playwright-core is not there yet. Other tests may install
# into the same folder at the same time, hence the lock.
install_js() {
  [[ -f "${JS_DIR}/node_modules/playwright-core/package.json" ]] && return 0
  step "npm install (tests/js)"
  local lock="${TMPDIR:-/tmp}/branchgate-tests-js.lock"
  (
    if command -v flock >/dev/null; then
      flock -w 600 9 || exit 1
    fi
    [[ -f "${JS_DIR}/node_modules/playwright-core/package.json" ]] ||
      npm install --prefix "${JS_DIR}" --no-audit --no-fund
  ) 9>"${lock}" || fail "npm install in tests/js failed"
  [[ -f "${JS_DIR}/node_modules/playwright-core/package.json" ]] ||
    fail "playwright-core is still missing after npm install"
}

# The page must not be able to run anything but its own script, nor load anything from
# elsewhere, nor turn server data into markup.
check_sources() {
  local dash="${REPO_DIR}/gateway/dashboard" hits
  hits="$(grep -nE 'innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|setAttribute\(.style' \
    "${dash}/dashboard.js" || true)"
  [[ -z "${hits}" ]] || fail "dashboard.js builds markup from strings: ${hits}"
  hits="$(grep -niE '<script>|<script [^>]*>[^<]|<style|style=|(src|href)="(https?:)?//|@import|url\(' \
    "${dash}/index.html" "${dash}/dashboard.css" || true)"
  [[ -z "${hits}" ]] || fail "inline code or external assets in the dashboard: ${hits}"
}

# start_branch NAME TYPE: init + serve on a free port; sets URL_<NAME> and TOKEN_<NAME>.
declare -A URL=() TOKEN=()
start_branch() {
  local name="$1" type="$2" data="${WORK_DIR}/$1" deadline pid
  "${BRANCHGATE_BIN}" init --data "${data}" --name "${name}" --type "${type}" >/dev/null 2>&1 ||
    fail "init of ${name} failed"
  BRANCHGATE_TEMPLATES_DIR="${REPO_DIR}/templates" \
    "${BRANCHGATE_BIN}" serve --data "${data}" --listen 127.0.0.1:0 >"${WORK_DIR}/${name}.log" 2>&1 &
  pid=$!
  PIDS+=("${pid}")
  deadline=$((SECONDS + START_DEADLINE_S))
  until [[ -s "${data}/listen.url" ]]; do
    kill -0 "${pid}" 2>/dev/null || fail "${name} exited during start-up"
    ((SECONDS < deadline)) || fail "${name} wrote no listen.url within ${START_DEADLINE_S}s"
    sleep 0.05
  done
  URL["${name}"]="$(<"${data}/listen.url")"
  TOKEN["${name}"]="$(<"${data}/admin.token")"
  until curl -fsS --max-time 2 "${URL["${name}"]}/healthz" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "${name} does not answer /healthz"
    sleep 0.05
  done
  printf 'dashboard-browser: %s (%s) at %s, pid %s\n' "${name}" "${type}" "${URL["${name}"]}" "${pid}"
}

# api METHOD BRANCH PATH [JSON]: admin call; the token and body reach curl on stdin only.
# Sets HTTP_STATUS and HTTP_BODY.
HTTP_STATUS=""
HTTP_BODY=""
api() {
  local method="$1" name="$2" path="$3" body="${4:-}" out="${WORK_DIR}/response" config
  config="url = \"${URL["${name}"]}${path}\""
  config+=$'\n'"request = \"${method}\""
  config+=$'\n'"header = \"Authorization: Bearer ${TOKEN["${name}"]}\""
  config+=$'\n'"header = \"Accept: application/json\""
  if [[ -n "${body}" ]]; then
    printf '%s' "${body}" >"${WORK_DIR}/request.json"
    config+=$'\n'"header = \"Content-Type: application/json\""
    config+=$'\n'"data-binary = \"@${WORK_DIR}/request.json\""
  fi
  config+=$'\n'"output = \"${out}\""
  config+=$'\n'"write-out = \"%{http_code}\""
  HTTP_STATUS="$(curl --silent --show-error --max-time 30 --config - <<<"${config}")" || HTTP_STATUS="000"
  HTTP_BODY=""
  [[ -f "${out}" ]] && HTTP_BODY="$(<"${out}")" && rm -f "${out}"
  rm -f "${WORK_DIR}/request.json"
}

register_pair() {
  local key
  key="$(head -c 32 /dev/urandom | base64 | tr -d '/+=\n' | head -c 40)"
  api POST top /api/v1/branches \
    "{\"branch_name\":\"${PEER}\",\"branch_url\":\"${URL["${PEER}"]}\",\"branch_type\":\"master_branch\",\"api_key\":\"${key}\"}"
  [[ "${HTTP_STATUS}" == 201 ]] || fail "registering ${PEER} on top: HTTP ${HTTP_STATUS} ${HTTP_BODY}"
  api POST "${PEER}" /api/v1/branches \
    "{\"branch_name\":\"top\",\"branch_url\":\"${URL[top]}\",\"branch_type\":\"top_branch\",\"api_key\":\"${key}\"}"
  [[ "${HTTP_STATUS}" == 201 ]] || fail "registering top on ${PEER}: HTTP ${HTTP_STATUS} ${HTTP_BODY}"
  api POST top "/api/v1/branches/${PEER}/ping"
  [[ "${HTTP_STATUS}" == 200 && "${HTTP_BODY}" == *'"ok":true'* ]] ||
    fail "top cannot ping ${PEER}: HTTP ${HTTP_STATUS} ${HTTP_BODY}"
  api POST "${PEER}" /api/v1/branches/top/ping
  [[ "${HTTP_STATUS}" == 200 && "${HTTP_BODY}" == *'"ok":true'* ]] ||
    fail "${PEER} cannot ping top: HTTP ${HTTP_STATUS} ${HTTP_BODY}"
}

# header FILE NAME: value of a response header in a curl -D dump (lower-cased name).
header() {
  { grep -i "^$2:" "$1" || true; } | head -n 1 | cut -d: -f2- | tr -d '\r' | sed 's/^ *//'
}

check_negotiation() {
  local base="${URL[top]}" h="${WORK_DIR}/headers" body v
  body="$(curl -fsS -D "${h}" -H 'Accept: text/html,application/xhtml+xml,*/*;q=0.8' "${base}/")"
  [[ "$(header "${h}" content-type)" == "text/html; charset=utf-8" ]] || fail "GET / (html): content-type $(header "${h}" content-type)"
  [[ "${body}" == '<!doctype html>'* ]] || fail "GET / (html) is not the page"
  v="$(header "${h}" content-security-policy)"
  [[ "${v}" == *"default-src 'none'"* && "${v}" == *"script-src 'self'"* && "${v}" != *unsafe* ]] ||
    fail "GET / (html): content-security-policy '${v}'"
  [[ "$(header "${h}" x-content-type-options)" == nosniff ]] || fail "GET / (html): no nosniff"
  [[ "$(header "${h}" cache-control)" == no-cache ]] || fail "GET / (html): cache-control"
  for path in /dashboard.js /dashboard.css; do
    curl -fsS -D "${h}" -o /dev/null "${base}${path}" || fail "GET ${path} failed"
    [[ "$(header "${h}" x-content-type-options)" == nosniff ]] || fail "GET ${path}: no nosniff"
    [[ -n "$(header "${h}" content-security-policy)" ]] || fail "GET ${path}: no CSP"
  done
  [[ "$(header "${h}" content-type)" == "text/css; charset=utf-8" ]] || fail "GET /dashboard.css: content-type"
  body="$(curl -fsS -H 'Accept: application/json' "${base}/")"
  [[ "${body}" == *'"branch":"top"'* && "${body}" == *'"branch_type":"top_branch"'* ]] ||
    fail "GET / (Accept: application/json) is not the service description: ${body}"
  body="$(curl -fsS "${base}/")"
  [[ "${body}" == *'"service":"branchgate"'* ]] || fail "GET / (curl default Accept) is not JSON: ${body}"
}

main() {
  check_tools
  check_sources
  install_js
  mkdir -p "${BG_ARTIFACTS_DIR}"
  WORK_DIR="$(mktemp -d)"
  chmod 700 "${WORK_DIR}"

  step "start top and ${PEER}"
  start_branch top top_branch
  start_branch "${PEER}" master_branch

  if [[ "${BG_DASHBOARD_SKIP_REGISTER:-0}" == 1 ]]; then
    step "registration skipped (BG_DASHBOARD_SKIP_REGISTER=1): this run must fail"
  else
    step "register top <-> ${PEER} and ping"
    register_pair
  fi

  step "content negotiation and headers of GET /"
  check_negotiation

  step "browser (${CHROMIUM_BIN})"
  printf '%s' "${TOKEN[top]}" >"${WORK_DIR}/top.token"
  BG_URL="${URL[top]}" BG_TOKEN_FILE="${WORK_DIR}/top.token" BG_PEER="${PEER}" \
    BG_JS_DIR="${JS_DIR}" BG_ARTIFACTS_DIR="${BG_ARTIFACTS_DIR}" CHROMIUM_BIN="${CHROMIUM_BIN}" \
    node "${SCRIPT_DIR}/dashboard.mjs" || fail "the browser checks failed"

  PASSED=1
}

main "$@"
