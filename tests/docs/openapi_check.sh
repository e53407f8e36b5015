#!/usr/bin/env bash
# tests/docs/openapi_check.sh — ctest docs_openapi: docs/openapi.yaml keeps
# up with the server.
#  1. Every (method, path) of the route table in gateway/routes.c is an
#     operation under `paths:` of the OpenAPI file, and the file documents no
#     operation the server does not route.
#  2. The file is valid OpenAPI 3.1 for a real validator
#     (@apidevtools/swagger-parser, plus the checks of openapi_validate.js),
#     installed with npm into tests/js/node_modules when missing; no network
#     or no npm is a failure, never a pass.
# OPENAPI_FILE overrides the file checked (to prove the check fails on a
# copy with a route removed).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
routes_c="$root/gateway/routes.c"
spec="${OPENAPI_FILE:-$root/docs/openapi.yaml}"
js_dir="$root/tests/js"
failed=0

fail() {
  echo "docs_openapi: FAIL: $*" >&2
  failed=1
}

[ -f "$routes_c" ] || { echo "docs_openapi: FAIL: $routes_c not found" >&2; exit 1; }
[ -f "$spec" ] || { echo "docs_openapi: FAIL: $spec not found" >&2; exit 1; }

# ---- 1. routes of gateway/routes.c vs. operations of the OpenAPI file ----

# Route table lines look like {"GET", "/api/v1/branches/{name}", handler, ...
routes=$(grep -oE '\{"(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS)", *"/[^"]*"' "$routes_c" |
  sed -E 's/^\{"([A-Z]+)", *"([^"]*)"$/\1 \2/' | sort -u)
nroutes=$(printf '%s\n' "$routes" | grep -c .)
# A table that suddenly yields almost nothing means the extraction broke.
if [ "$nroutes" -lt 20 ]; then
  fail "only $nroutes routes extracted from $routes_c; has the route table format changed?"
fi

# Paths are the keys indented by two spaces under `paths:`, methods the keys
# indented by four below them (the layout docs/openapi.yaml keeps).
documented=$(awk '
  /^paths:[[:space:]]*$/ { inp = 1; next }
  inp && /^[^[:space:]#]/ { inp = 0 }
  !inp { next }
  /^  [^[:space:]#]/ {
    path = $0
    sub(/^  /, "", path); sub(/:[[:space:]]*$/, "", path)
    gsub(/^["'\'']|["'\'']$/, "", path)
    next
  }
  path != "" && /^    (get|put|post|delete|options|head|patch|trace):/ {
    m = $1; sub(/:$/, "", m)
    print toupper(m) " " path
  }' "$spec" | sort -u)
ndoc=$(printf '%s\n' "$documented" | grep -c .)

missing=$(comm -23 <(printf '%s\n' "$routes") <(printf '%s\n' "$documented") | grep . || true)
extra=$(comm -13 <(printf '%s\n' "$routes") <(printf '%s\n' "$documented") | grep . || true)
if [ -n "$missing" ]; then
  fail "routes of gateway/routes.c missing from $spec:"
  printf '%s\n' "$missing" | sed 's/^/  /' >&2
fi
if [ -n "$extra" ]; then
  fail "operations in $spec that gateway/routes.c does not route:"
  printf '%s\n' "$extra" | sed 's/^/  /' >&2
fi
if [ -z "$missing" ] && [ -z "$extra" ]; then
  echo "docs_openapi: $nroutes routes of gateway/routes.c, $ndoc operations documented: all match"
fi

# ---- 2. OpenAPI 3.1 validation with the npm validator ----

# True when every dependency of tests/js/package.json is installed at its
# pinned version.
modules_ok() {
  # shellcheck disable=SC2016 # JavaScript, not shell, inside the quotes
  node -e '
    const fs = require("fs"), path = require("path");
    const dir = process.argv[1];
    const deps = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")).dependencies || {};
    for (const [name, want] of Object.entries(deps)) {
      let got = null;
      try {
        got = JSON.parse(fs.readFileSync(path.join(dir, "node_modules", name, "package.json"), "utf8")).version;
      } catch (e) { /* not installed */ }
      if (got !== want) { console.error(`${name}: want ${want}, have ${got}`); process.exit(1); }
    }' "$js_dir" 2>/dev/null
}

validate() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    fail "node and npm are needed for the OpenAPI validator; run scripts/install-deps.sh"
    return
  fi
  if ! modules_ok; then
    echo "docs_openapi: installing the validator (npm install --prefix tests/js)"
    local log lock="${TMPDIR:-/tmp}/branchgate-tests-js.lock"
    log=$(mktemp)
    # One install at a time: tests/browser installs into tests/js too, under
    # the same lock file.
    if ! (
      if command -v flock >/dev/null; then
        flock -w 600 9 || exit 1
      fi
      modules_ok || npm install --prefix "$js_dir" --no-audit --no-fund
    ) 9>"$lock" >"$log" 2>&1; then
      cat "$log" >&2
      rm -f "$log"
      fail "npm install failed (no network or no registry?): cannot validate $spec"
      return
    fi
    rm -f "$log"
    if ! modules_ok; then
      fail "npm install ran but tests/js/node_modules does not hold the versions of tests/js/package.json"
      return
    fi
  fi
  if ! node "$here/openapi_validate.js" "$js_dir" "$spec"; then
    fail "$spec is not valid OpenAPI 3.1 (see above)"
  fi
}
validate

if [ "$failed" -ne 0 ]; then
  echo "docs_openapi: FAILED" >&2
  exit 1
fi
echo "docs_openapi: ok"
