#!/usr/bin/env bash
# tests/integration/secret_scan.sh — no secret reaches any log.
#
#   secret_scan.sh reset DIR   empties DIR/logs and DIR/secrets.txt (ctest
#                              runs it before the integration tests)
#   secret_scan.sh scan DIR    searches every branch log the tests kept in
#                              DIR/logs for every secret they recorded in
#                              DIR/secrets.txt (ctest runs it after them)
#
# The harness (tests/integration/harness.c) records the secrets: every
# bearer token sent (admin tokens, user JWTs, peer keys) and every string in
# a request or response body under a secret's name (password, api_key, key,
# webhook_secret, token, ...). It copies each branch's log (stdout + stderr)
# into DIR/logs before removing a test's temp dir. A match prints the log
# file and a masked form of the secret, never the secret itself, and fails.
set -euo pipefail

mode=${1:-}
dir=${2:-}
[[ ($mode == reset || $mode == scan) && -n $dir ]] || { echo "usage: $0 reset|scan DIR" >&2; exit 2; }

if [[ $mode == reset ]]; then
    rm -rf "$dir/logs" "$dir/secrets.txt"
    mkdir -p "$dir/logs"
    : >"$dir/secrets.txt"
    chmod 600 "$dir/secrets.txt"
    exit 0
fi

logs=$dir/logs
[[ -d $logs ]] || { echo "secret scan: no $logs (was the reset step run?)" >&2; exit 1; }
nlogs=$(find "$logs" -type f | wc -l)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# "0123456789abcdef" (repeated) is a placeholder key in tests of refused
# registrations and also the name of an unknown upload id that tests ask
# for; it is not a secret, and it appears in access-log paths.
sort -u "$dir/secrets.txt" | grep -Ev '^(0123456789abcdef)+$' >"$tmp/secrets" || true
nsecrets=$(wc -l <"$tmp/secrets")
if ((nlogs == 0 || nsecrets == 0)); then
    echo "secret scan: nothing to scan ($nlogs logs, $nsecrets secrets): the integration tests did not record" >&2
    exit 1
fi

# The search must be able to fail: a planted copy of a secret is found.
head -n1 "$tmp/secrets" >"$tmp/planted.log"
grep -qFf "$tmp/secrets" "$tmp/planted.log" || { echo "secret scan: self-check failed" >&2; exit 1; }

if grep -rFf "$tmp/secrets" -o "$logs" >"$tmp/hits"; then
    echo "secret scan: FAILED — secrets found in branch logs:" >&2
    while IFS= read -r hit; do
        file=${hit%%:*} secret=${hit#*:}
        printf '  %s: %s… (%d bytes)\n' "$(basename "$file")" "${secret:0:4}" "${#secret}" >&2
    done < <(sort -u "$tmp/hits" | head -n 50)
    exit 1
fi
echo "secret scan: $nsecrets distinct secrets, $nlogs branch logs ($(du -sh "$logs" | cut -f1)): none found"
