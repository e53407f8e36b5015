#!/usr/bin/env bash
# bench/sync.sh — organisation sync and outbox throughput, top → master.
#
# Starts a top and a master branch on 127.0.0.1 in temporary data dirs,
# registers them with each other and measures:
#   1. full sync: an organisation of SYNC_USERS users (default 10000) from
#      POST /organizations/{id}/sync until the top's outbox to the master is
#      empty (every message acknowledged, i.e. applied by the master);
#   2. outbox throughput: SYNC_DELIVERIES (default 2000) queued changes
#      drained to one peer (one delivery in flight, in order);
#   3. the baseline of the same run: sequential authenticated peer calls
#      over one connection (wrk -c1 on the master's cross-branch health),
#      the ceiling for "one in flight per destination".
# Writes the results into docs/performance.md between
# <!-- sync:begin --> and <!-- sync:end -->.
#
# argon2id is run at its minimum cost here: creating the users is set-up,
# not what is measured (docs/performance.md says so next to the figures).
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${BRANCHGATE_BIN:-$repo/build/branchgate}
users=${SYNC_USERS:-10000}
deliveries=${SYNC_DELIVERIES:-2000}
doc=$repo/docs/performance.md
key=bench-sync-shared-key-0123456789abcdef

die() { echo "sync: $*" >&2; exit 1; }
[[ $users =~ ^[1-9][0-9]{0,5}$ ]] || die "SYNC_USERS must be 1-999999"
[[ $deliveries =~ ^[1-9][0-9]{0,5}$ ]] || die "SYNC_DELIVERIES must be 1-999999"
[[ -x $bin ]] || die "no executable at $bin (build it, or set BRANCHGATE_BIN)"
for tool in curl wrk awk; do
    command -v "$tool" >/dev/null || die "$tool is not installed (Debian: apt-get install -y $tool)"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bg-bench-sync.XXXXXX")
declare -A pid=()
cleanup() {
    local rc=$?
    for name in "${!pid[@]}"; do
        kill -TERM "${pid[$name]}" 2>/dev/null || true
    done
    for name in "${!pid[@]}"; do
        timeout 10 tail --pid="${pid[$name]}" -f /dev/null 2>/dev/null || kill -KILL "${pid[$name]}" 2>/dev/null || true
    done
    if ((rc != 0)); then
        for f in "$tmp"/*.log; do [[ -f $f ]] && { echo "--- $f" >&2; tail -n 15 "$f" >&2; }; done
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { date +%s%3N; }

# start NAME TYPE [LISTEN]: runs a branch, waits for its listen.url.
start() {
    local name=$1 type=$2 listen=${3:-127.0.0.1:0} dir=$tmp/$1
    [[ -d $dir ]] || "$bin" init --data "$dir" --name "$name" --type "$type" >/dev/null 2>&1
    rm -f "$dir/listen.url"
    BRANCHGATE_LOG_ACCESS=false BRANCHGATE_AUTH_PWHASH_OPSLIMIT=1 BRANCHGATE_AUTH_PWHASH_MEMLIMIT_KIB=8 \
        BRANCHGATE_OUTBOX_BACKOFF_MAX_S=1 BRANCHGATE_PEERS_RATE_LIMIT_RPS=1000000 \
        BRANCHGATE_PEERS_RATE_BURST=1000000 BRANCHGATE_PEERS_BREAKER_OPEN_MS=200 \
        "$bin" serve --data "$dir" --listen "$listen" >>"$tmp/$name.log" 2>&1 &
    pid[$name]=$!
    local deadline=$(($(now_ms) + 10000))
    until [[ -s $dir/listen.url ]]; do
        (($(now_ms) < deadline)) || die "$name did not start"
        sleep 0.05
    done
}
url() { head -n1 "$tmp/$1/listen.url"; }
token() { head -n1 "$tmp/$1/admin.token"; }

# api BRANCH METHOD PATH [JSON]: prints the body; fails on a 4xx/5xx.
api() {
    local args=(-sS --fail-with-body -X "$2" -H "Authorization: Bearer $(token "$1")")
    [[ $# -ge 4 ]] && args+=(-H 'Content-Type: application/json' --data-binary "$4")
    curl "${args[@]}" "$(url "$1")$3"
}

depth() { api top GET /api/v1/branches/master/status | sed -n 's/.*"outbox":{"depth":\([0-9]*\).*/\1/p'; }

wait_empty() {
    local deadline=$(($(now_ms) + $1))
    while :; do
        [[ $(depth) == 0 ]] && return 0
        (($(now_ms) < deadline)) || die "outbox did not drain within $1 ms"
        sleep 0.02
    done
}

start top top_branch
start master master_branch
api top POST /api/v1/branches "{\"branch_name\":\"master\",\"branch_url\":\"$(url master)\",\"branch_type\":\"master_branch\",\"api_key\":\"$key\"}" >/dev/null
api master POST /api/v1/branches "{\"branch_name\":\"top\",\"branch_url\":\"$(url top)\",\"branch_type\":\"top_branch\",\"api_key\":\"$key\"}" >/dev/null
org=$(api top POST /api/v1/organizations '{"name":"bench"}' | sed 's/.*"id":"\([^"]*\)".*/\1/')

echo "sync: creating $users users" >&2
# The request list holds the admin token: it lives in the private temp dir.
cfg=$tmp/users.curl
{
    for ((i = 1; i <= users; i++)); do
        ((i > 1)) && printf 'next\n'
        printf 'url = "%s/api/v1/organizations/%s/users"\n' "$(url top)" "$org"
        printf 'header = "Authorization: Bearer %s"\nheader = "Content-Type: application/json"\n' "$(token top)"
        printf 'data = "{\\"email\\":\\"user%d@bench.test\\",\\"name\\":\\"User %d\\",\\"password\\":\\"bench-password-%d\\"}"\n' "$i" "$i" "$i"
        printf 'output = "/dev/null"\nsilent\nshow-error\nfail\n'
    done
} >"$cfg"
curl --no-progress-meter --parallel --parallel-max 16 -K "$cfg"

echo "sync: full sync of $users users" >&2
t0=$(now_ms)
queued=$(api top POST "/api/v1/organizations/$org/sync" '{"branches":["master"]}' | sed 's/.*"queued":\([0-9]*\).*/\1/')
wait_empty 600000
t1=$(now_ms)
sync_ms=$((t1 - t0))
# Every user must be on the master.
count=0 cursor=
while :; do
    page=$(api master GET "/api/v1/organizations/$org/users?limit=500${cursor:+&cursor=$cursor}")
    count=$((count + $(grep -o '"email"' <<<"$page" | wc -l)))
    cursor=$(sed -n 's/.*"next_cursor":"\([^"]*\)".*/\1/p' <<<"$page")
    [[ -n $cursor ]] || break
done
((count == users)) || die "master holds $count users, expected $users"

echo "sync: outbox throughput with $deliveries queued changes" >&2
master_listen=$(url master); master_listen=${master_listen#http://}
kill -KILL "${pid[master]}"; wait "${pid[master]}" 2>/dev/null || true; unset 'pid[master]'
cfg=$tmp/patch.curl
{
    for ((i = 1; i <= deliveries; i++)); do
        ((i > 1)) && printf 'next\n'
        printf 'url = "%s/api/v1/organizations/%s"\n' "$(url top)" "$org"
        printf 'header = "Authorization: Bearer %s"\nheader = "Content-Type: application/json"\n' "$(token top)"
        printf 'request = "PATCH"\ndata = "{\\"name\\":\\"bench %d\\"}"\n' "$i"
        printf 'output = "/dev/null"\nsilent\nshow-error\nfail\n'
    done
} >"$cfg"
curl --no-progress-meter --parallel --parallel-max 16 -K "$cfg"
start master master_branch "$master_listen"
t0=$(now_ms)
api top POST /api/v1/branches/master/ping >/dev/null # resets the backoff at once
wait_empty 600000
t1=$(now_ms)
drain_ms=$((t1 - t0))

echo "sync: baseline, sequential authenticated calls on one connection" >&2
base=$(wrk -t1 -c1 -d5s -H "X-Branch-Origin: $(url top)" -H "Authorization: Bearer $key" \
    "$(url master)/api/v1/cross-branch/health" | awk '/^Requests\/sec:/ { printf "%.0f", $2 }')

users_per_s=$(awk -v u="$users" -v t="$sync_ms" 'BEGIN { printf "%.0f", u * 1000 / t }')
msgs_per_s=$(awk -v q="$queued" -v t="$sync_ms" 'BEGIN { printf "%.1f", q * 1000 / t }')
deliv_per_s=$(awk -v d="$deliveries" -v t="$drain_ms" 'BEGIN { printf "%.0f", d * 1000 / t }')
ratio=$(awk -v a="$deliv_per_s" -v b="$base" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')

section=$(cat <<MD
## Organisation sync and outbox (bench/sync.sh)

Run $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores, $("$bin" version | head -n1); top and master on
127.0.0.1, access log off. Users are created with argon2id at its minimum cost (set-up, not measured).

| measurement | result |
|---|---|
| full sync, $users users ($queued messages of up to 500 users) | $sync_ms ms ($users_per_s users/s, $msgs_per_s messages/s) |
| outbox drain, $deliveries queued changes to one peer | $drain_ms ms, **$deliv_per_s deliveries/s** |
| baseline: sequential authenticated peer calls, 1 connection (wrk -t1 -c1 -d5s) | $base req/s |
| ratio deliveries/s ÷ baseline | $ratio |

One delivery is in flight per destination (in order), so the baseline is the ceiling: each delivery
also commits its removal from the outbox on the top and applies the change, with its idempotency
key, in one transaction on the master.
MD
)
printf '%s\n' "$section" | tee "$tmp/section"
bench_write_section sync "$tmp/section" "$doc" "$(nproc) CPUs, $(uname -srm)" "$tmp" || die "results not written"
