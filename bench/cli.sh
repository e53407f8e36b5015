#!/usr/bin/env bash
# bench/cli.sh — the command-line client against curl, with hyperfine.
#
# Starts one branch on 127.0.0.1 in a temporary data dir (two fake peers
# registered, so the list is not empty) and times, with hyperfine (no shell,
# warm-up runs first), pairs of commands that do the same thing:
#   start-up    branchgate version                 vs curl --version
#   API call    branchgate branch list --json     vs curl GET /api/v1/branches
#               (--data DIR: listen.url, admin.token)  (the same token, -H @file)
# Recorded: mean ± stddev, median, min, user + system CPU of each command and
# the ratio branchgate ÷ curl of the means. hyperfine's JSON is kept in the
# temp dir only. Writes the results into docs/performance.md between
# <!-- cli:begin --> and <!-- cli:end -->. Fails if a command fails.
#
# Environment: BRANCHGATE_BIN (default <repo>/build/branchgate),
#              CLI_RUNS       (runs per command, default 100; warm-up 5).
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${BRANCHGATE_BIN:-$repo/build/branchgate}
runs=${CLI_RUNS:-100}
doc=$repo/docs/performance.md

die() { echo "cli: $*" >&2; exit 1; }
[[ $runs =~ ^[1-9][0-9]{0,4}$ ]] || die "CLI_RUNS must be 1-99999"
((runs >= 2)) || die "CLI_RUNS must be at least 2 (hyperfine's standard deviation)"
[[ -x $bin ]] || die "no executable at $bin (build it, or set BRANCHGATE_BIN)"
[[ $bin != *[[:space:]\'\"]* ]] || die "BRANCHGATE_BIN must not contain spaces or quotes"
bench_need_tools hyperfine:hyperfine curl:curl || die "missing tools"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bg-bench-cli.XXXXXX")
server_pid=
cleanup() {
    local rc=$?
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if ((rc != 0)); then
        for f in "$tmp"/*.log; do [[ -s $f ]] && { echo "--- $f" >&2; tail -n 15 "$f" >&2; }; done
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the branch ----
data=$tmp/branch
timeout 30 "$bin" init --data "$data" --name bench --type top_branch >"$tmp/init.log" 2>&1 ||
    die "branchgate init failed"
BRANCHGATE_LOG_ACCESS=false "$bin" serve --data "$data" --listen 127.0.0.1:0 >"$tmp/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 150); do
    [[ -s $data/listen.url ]] && break
    kill -0 "$server_pid" 2>/dev/null || die "the branch exited during start-up"
    sleep 0.1
done
base=$(head -n1 "$data/listen.url")
[[ $base =~ ^http://127\.0\.0\.1:[0-9]+$ ]] || die "unexpected listen URL '$base'"
# The token for curl in a header file (not on a command line).
printf 'Authorization: Bearer %s\n' "$(head -n1 "$data/admin.token")" >"$tmp/auth.h"
for i in 1 2; do
    code=$(curl -sS --max-time 10 -o "$tmp/register.json" -w '%{http_code}' -H "@$tmp/auth.h" \
        -H 'Content-Type: application/json' \
        --data "{\"branch_name\":\"peer-$i\",\"branch_url\":\"http://127.0.0.$((i + 1)):9\",\"branch_type\":\"master_branch\",\"api_key\":\"bench-cli-fake-peer-key-$i-0123456789\"}" \
        "$base/api/v1/branches")
    [[ $code == 200 || $code == 201 ]] || die "registering peer-$i answered $code: $(head -c 300 "$tmp/register.json")"
done

# Both sides of the API pair must print the same list.
"$bin" branch list --json --data "$data" >"$tmp/cli.json" 2>"$tmp/cli.log" || die "branchgate branch list failed"
curl -sS --fail --max-time 10 -H "@$tmp/auth.h" "$base/api/v1/branches" >"$tmp/curl.json" || die "curl failed"
grep -q '"peer-2"' "$tmp/cli.json" || die "branch list does not show the peers: $(head -c 300 "$tmp/cli.json")"
grep -q '"peer-2"' "$tmp/curl.json" || die "GET /api/v1/branches does not show the peers"

# ---- hyperfine ----
# pair NAME CLI-COMMAND CURL-COMMAND: hyperfine without a shell; JSON in $tmp/NAME.json
pair() {
    echo "cli: $1, $runs runs per command" >&2
    hyperfine -N --warmup 5 --runs "$runs" --style none --export-json "$tmp/$1.json" \
        -n branchgate "$2" -n curl "$3" >"$tmp/$1.log" 2>&1 || die "hyperfine $1 failed: $(tail -n 5 "$tmp/$1.log")"
    kill -0 "$server_pid" 2>/dev/null || die "the branch died during $1"
}
cmd_ver="'$bin' version"
cmd_curlver="curl --version"
cmd_list="'$bin' branch list --json --data '$data'"
cmd_curl="curl -sS --fail -H @$tmp/auth.h $base/api/v1/branches"
pair start "$cmd_ver" "$cmd_curlver"
pair list "$cmd_list" "$cmd_curl"

# fig FILE NAME -> "mean median stddev min cpu" in ms, from hyperfine's JSON
# (serde's pretty printing: one key per line).
fig() {
    awk -v want="$2" '
        /"command":/ { c = $0; sub(/.*"command": *"/, "", c); sub(/".*/, "", c); on = (c == want) }
        on && /"(mean|median|stddev|min|user|system)":/ {
            k = $1; gsub(/[":]/, "", k); v = $2; sub(/,$/, "", v); f[k] = v * 1000
        }
        END {
            if (!("mean" in f)) exit 1
            printf "%.2f %.2f %.2f %.2f %.2f\n", f["mean"], f["median"], f["stddev"], f["min"], f["user"] + f["system"]
        }' "$1"
}
declare -A res=()
for p in start list; do
    for c in branchgate curl; do
        res[$p.$c]=$(fig "$tmp/$p.json" "$c") || die "no figures for $c in hyperfine's $p.json"
    done
done

# ---- the section ----
when=$(date -u '+%Y-%m-%d %H:%M UTC')
machine="$(nproc) CPUs, $(uname -srm)"
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
[[ -n $cpu_model ]] && machine="$machine, $cpu_model"
version=$(timeout 10 "$bin" version | awk 'NR == 1')
curlv=$(curl --version | awk 'NR == 1 { print $1, $2 }')
hfv=$(hyperfine --version)
nlibs=$(ldd "$bin" 2>/dev/null | grep -c '=>' || true)
nlibs_curl=$(ldd "$(command -v curl)" 2>/dev/null | grep -c '=>' || true)
show() { # command -> with the temp dir and port masked
    local s=$1
    s=${s//"$tmp"/\$TMP}
    s=${s//"$base"/http://127.0.0.1:PORT}
    s=${s//"'$bin'"/branchgate}
    s=${s//"$bin"/branchgate}
    printf '%s\n' "$s"
}
row() { # label pair cmd
    local m md sd mn cpu cm cmd csd cmn ccpu
    read -r m md sd mn cpu <<<"${res[$2.branchgate]}"
    read -r cm cmd csd cmn ccpu <<<"${res[$2.curl]}"
    printf '| %s | %s ± %s | %s | %s | %s | %s ± %s | %s | %s | %s | **%s** |\n' "$1" \
        "$m" "$sd" "$md" "$mn" "$cpu" "$cm" "$csd" "$cmd" "$cmn" "$ccpu" \
        "$(awk -v a="$m" -v b="$cm" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
}
section=$tmp/section.md
{
    echo "## Command-line client against curl (bench/cli.sh)"
    echo
    echo "Run of $when. Machine: $machine; load average before: $(cut -d' ' -f1-3 /proc/loadavg)."
    echo "$version against $curlv, timed by $hfv without a shell (\`-N\`), 5 warm-up"
    echo "runs, then $runs runs per command; one branch on 127.0.0.1 with two registered"
    echo "peers, access log off. The API pair makes the same request: \`GET /api/v1/branches\`"
    echo "with the admin token (branchgate reads the URL and the token from the data dir, curl"
    echo "the token from a header file). Times in ms; CPU is user + system."
    echo
    echo '```'
    show "hyperfine -N --warmup 5 --runs $runs -n branchgate \"$cmd_ver\" -n curl \"$cmd_curlver\""
    show "hyperfine -N --warmup 5 --runs $runs -n branchgate \"$cmd_list\" -n curl \"$cmd_curl\""
    echo '```'
    echo
    echo "| pair | branchgate mean | median | min | CPU | curl mean | median | min | CPU | ratio of means |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    row "start-up: \`branchgate version\` vs \`curl --version\`" start
    row "API call: \`branchgate branch list --json\` vs \`curl\` GET /api/v1/branches" list
    echo
    read -r vm _ <<<"${res[start.branchgate]}"
    read -r lm _ <<<"${res[list.branchgate]}"
    echo "Both sides start a process each time. \`branchgate branch list --json\` took"
    echo "$(awk -v a="$lm" -v b="$vm" 'BEGIN { printf "%.2f", a - b }') ms more than \`branchgate version\` (mean against mean); the rest is"
    echo "start-up: the branchgate binary is the server too and links $nlibs shared libraries (h2o,"
    echo "OpenSSL, SQLite, libcurl, jansson, libsodium, FFmpeg's libav and theirs) that the dynamic"
    echo "loader maps and resolves at every start; curl links $nlibs_curl."
} >"$section"
cat "$section"
bench_write_section cli "$section" "$doc" "$machine" "$tmp" || die "results not written"
