#!/usr/bin/env bash
# bench/peer-auth.sh — what inbound peer authentication costs.
#
# Starts one branchgate on 127.0.0.1 in a temporary data dir, registers a fake
# peer (its URL points at the discard port; the peer is never called, only
# the inbound check is measured) and compares, with wrk on the same machine:
#   baseline       GET /healthz                     (public route)
#   authenticated  GET /api/v1/cross-branch/health  (X-Branch-Origin + Bearer key)
# at 100 and 1000 connections, alternating baseline and authenticated runs,
# and records req/s, latency, the server's CPU time per request and its VmHWM.
# Prints a markdown table and writes it into docs/performance.md between
# <!-- peer-auth:begin --> and <!-- peer-auth:end -->.
#
# Environment: BRANCHGATE_BIN (default <repo>/build/branchgate),
#              BENCH_SECONDS  (duration of each measured run, default 10),
#              BENCH_ROUNDS   (baseline/authenticated pairs per connection count,
#                              default 3; the table shows medians),
#              BENCH_CONNECTIONS (default "100 1000").
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${BRANCHGATE_BIN:-$repo/build/branchgate}
secs=${BENCH_SECONDS:-10}
conns=${BENCH_CONNECTIONS:-100 1000}
rounds=${BENCH_ROUNDS:-3}
doc=$repo/docs/performance.md
begin_marker='<!-- peer-auth:begin -->'
end_marker='<!-- peer-auth:end -->'
peer_url=http://127.0.0.1:9
target_ratio=0.8

die() { echo "peer-auth: $*" >&2; exit 1; }

[[ $secs =~ ^[1-9][0-9]{0,3}$ ]] || die "BENCH_SECONDS must be a whole number of seconds (1-9999)"
[[ $rounds =~ ^[1-9][0-9]?$ ]] || die "BENCH_ROUNDS must be 1-99"
[[ -x $bin ]] || die "no executable at $bin (build it, or set BRANCHGATE_BIN)"
for tool in wrk curl timeout awk; do
    command -v "$tool" >/dev/null || die "$tool is not installed (Debian: apt-get install -y $tool)"
done

# Every connection is a descriptor in wrk and in the server; the server
# inherits this limit, so raise it before starting it.
max_conns=0
for c in $conns; do
    [[ $c =~ ^[1-9][0-9]{0,5}$ ]] || die "bad connection count '$c' in BENCH_CONNECTIONS"
    if ((c > max_conns)); then max_conns=$c; fi
done
need_fds=$((max_conns + 256))
if (($(ulimit -n) < need_fds)); then
    ulimit -n "$need_fds" 2>/dev/null ||
        die "need ulimit -n >= $need_fds for $max_conns connections (hard limit: $(ulimit -Hn))"
fi

data=$(mktemp -d "${TMPDIR:-/tmp}/bg-bench-peer-auth.XXXXXX")
server_pid=
cleanup() {
    local rc=$?
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 100); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$server_pid" 2>/dev/null; then
            echo "peer-auth: server did not stop within 10 s of SIGTERM; killing it" >&2
            kill -KILL "$server_pid" 2>/dev/null || true
        fi
        wait "$server_pid" 2>/dev/null || true
    fi
    if ((rc != 0)) && [[ -s $data/server.log ]]; then
        echo "--- last lines of the server log ---" >&2
        tail -n 20 "$data/server.log" >&2
    fi
    rm -rf "$data"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- start the branch ----
timeout 30 "$bin" init --data "$data" --name bench --type top_branch >"$data/init.log" 2>&1 ||
    die "branchgate init failed: $(tail -n 5 "$data/init.log")"
BRANCHGATE_LOG_ACCESS=false BRANCHGATE_PEERS_RATE_LIMIT_RPS=10000000 \
    BRANCHGATE_PEERS_RATE_BURST=10000000 \
    "$bin" serve --data "$data" --listen 127.0.0.1:0 >"$data/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 150); do
    [[ -s $data/listen.url ]] && break
    kill -0 "$server_pid" 2>/dev/null || die "the server exited during start-up"
    sleep 0.1
done
[[ -s $data/listen.url ]] || die "no $data/listen.url after 15 s"
base=$(head -n 1 "$data/listen.url")
[[ $base =~ ^http://127\.0\.0\.1:[0-9]+$ ]] || die "unexpected listen URL '$base'"
admin_token=$(cat "$data/admin.token")

# ---- register the fake peer ----
api_key=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' | cut -c1-40)
status=$(curl -sS --max-time 5 -o "$data/register.json" -w '%{http_code}' \
    -H "Authorization: Bearer $admin_token" -H 'Content-Type: application/json' \
    --data "{\"branch_name\":\"peer\",\"branch_url\":\"$peer_url\",\"branch_type\":\"master_branch\",\"api_key\":\"$api_key\"}" \
    "$base/api/v1/branches")
[[ $status == 200 || $status == 201 ]] ||
    die "registering the peer answered $status: $(head -c 300 "$data/register.json")"

auth_path=/api/v1/cross-branch/health
check() { # expected-status path [curl header args...]
    local want=$1 path=$2 got
    shift 2
    got=$(curl -sS --max-time 5 -o "$data/check.json" -w '%{http_code}' "$@" "$base$path")
    [[ $got == "$want" ]] ||
        die "GET $path answered $got, expected $want: $(head -c 300 "$data/check.json")"
}
check 200 /healthz
check 200 "$auth_path" -H "X-Branch-Origin: $peer_url" -H "Authorization: Bearer $api_key"
check 401 "$auth_path"

# ---- measure ----
# wrk's latency lines look like "     99%    4.60ms"; print the value in ms.
latency_ms() { # percentile wrk-output-file
    awk -v p="$1%" '$1 == p {
        v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
        f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : -1
        if (f < 0) exit 1
        printf "%.2f", v * f; found = 1; exit
    } END { if (!found) exit 1 }' "$2"
}
# Socket errors and non-2xx answers, as "0" or e.g. "timeout 12, non-2xx 3".
errors_of() {
    awk '/Socket errors:/ {
            gsub(/,/, ""); for (i = 3; i < NF; i += 2) if ($(i + 1) > 0) { e = e sep $i " " $(i + 1); sep = ", " }
         }
         /Non-2xx or 3xx responses:/ { e = e (e ? ", " : "") "non-2xx " $NF }
         END { print (e ? e : "0") }' "$1"
}
vmhwm_mib() {
    awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$server_pid/status"
}

wrk_cmd() { # connections kind -> the command as an array in "cmd"
    cmd=(wrk -t2 "-c$1" "-d${secs}s" --latency)
    if [[ $2 == auth ]]; then
        cmd+=(-H "X-Branch-Origin: $peer_url" -H "Authorization: Bearer $api_key" "$base$auth_path")
    else
        cmd+=("$base/healthz")
    fi
}

run_wrk() { # connections kind out-file
    local cmd
    wrk_cmd "$1" "$2"
    timeout $((secs + 30)) "${cmd[@]}" >"$3" 2>&1 || die "wrk failed: $(tail -n 5 "$3")"
    kill -0 "$server_pid" 2>/dev/null || die "the server died during the $2 run at $1 connections"
}

# A short unrecorded warm-up of both routes (page faults, TCP, caches).
secs_saved=$secs
secs=2
run_wrk 100 base "$data/warm-base.txt"
run_wrk 100 auth "$data/warm-auth.txt"
secs=$secs_saved

# Server CPU (user + system) in clock ticks; divided by the requests wrk
# completed it gives a cost per request that does not depend on how the
# scheduler shared the cores between wrk and the server.
clk_tck=$(getconf CLK_TCK)
server_cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$server_pid/stat"; }

declare -A rps p50 p99 cpu errs rss
for ((r = 1; r <= rounds; r++)); do
    for c in $conns; do
        for kind in base auth; do
            k=$c,$kind,$r
            out=$data/wrk-$r-$c-$kind.txt
            echo "peer-auth: round $r/$rounds, $kind, $c connections, ${secs} s ..." >&2
            t0=$(server_cpu_ticks)
            run_wrk "$c" "$kind" "$out"
            t1=$(server_cpu_ticks)
            rps[$k]=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")
            n=$(awk '/ requests in / { print $1; exit }' "$out")
            [[ -n ${rps[$k]} && -n $n ]] || die "no request count in wrk output: $(cat "$out")"
            cpu[$k]=$(awk -v t=$((t1 - t0)) -v hz="$clk_tck" -v n="$n" \
                'BEGIN { printf "%.2f", (n > 0 ? t * 1e6 / hz / n : 0) }')
            p50[$k]=$(latency_ms 50 "$out") || die "no p50 in wrk output"
            p99[$k]=$(latency_ms 99 "$out") || die "no p99 in wrk output"
            errs[$k]=$(errors_of "$out")
            rss[$c,$kind]=$(vmhwm_mib)
        done
    done
done

# ---- report ----
# The wrk command of "cmd" as one shell line, with the port and key masked.
show_cmd() {
    local a line=
    for a in "${cmd[@]}"; do
        a=${a//"$api_key"/<peer key>}
        a=${a//"$base"/http://127.0.0.1:PORT}
        [[ $a == *' '* ]] && a="'$a'"
        line+="${line:+ }$a"
    done
    printf '%s\n' "$line"
}
when=$(date -u '+%Y-%m-%d %H:%M UTC')
machine="$(nproc) CPUs, $(uname -srm)"
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
if [[ -n $cpu_model ]]; then machine="$machine, $cpu_model"; fi
version=$(timeout 10 "$bin" version | awk 'NR == 1')

# Median of the arguments, printed with the given printf format.
median() { # format values...
    local fmt=$1
    shift
    printf '%s\n' "$@" | sort -g |
        awk -v f="$fmt" '{ a[NR] = $1 } END { printf f, (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
# One connection count's figures for one kind, as "req/s|p50|p99|cpu|errors".
summary() { # connections kind
    local c=$1 kind=$2 r v_rps=() v_p50=() v_p99=() v_cpu=() e=
    for ((r = 1; r <= rounds; r++)); do
        v_rps+=("${rps[$c,$kind,$r]}")
        v_p50+=("${p50[$c,$kind,$r]}")
        v_p99+=("${p99[$c,$kind,$r]}")
        v_cpu+=("${cpu[$c,$kind,$r]}")
        if [[ ${errs[$c,$kind,$r]} != 0 ]]; then e+="${e:+; }run $r: ${errs[$c,$kind,$r]}"; fi
    done
    printf '%s|%s|%s|%s|%s\n' "$(median %.0f "${v_rps[@]}")" "$(median %.2f "${v_p50[@]}")" \
        "$(median %.2f "${v_p99[@]}")" "$(median %.2f "${v_cpu[@]}")" "${e:-0}"
}
# Median and range of the per-round auth/baseline throughput ratios.
rps_ratio() { # connections
    local r v=()
    for ((r = 1; r <= rounds; r++)); do
        v+=("$(ratio "${rps[$1,auth,$r]}" "${rps[$1,base,$r]}")")
    done
    local lo hi
    lo=$(printf '%s\n' "${v[@]}" | sort -g | awk 'NR == 1')
    hi=$(printf '%s\n' "${v[@]}" | sort -g | awk 'END { print }')
    if ((rounds > 1)); then
        printf '**%s** (%s–%s)' "$(median %.2f "${v[@]}")" "$lo" "$hi"
    else
        printf '**%s**' "${v[0]}"
    fi
}

section=$data/section.md
{
    echo "## Inbound peer authentication (bench/peer-auth.sh)"
    echo
    echo "Run of $when: $rounds round(s) of ${secs} s per route and connection count."
    echo "Machine: $machine; wrk runs on the same cores as the server."
    echo "Binary: $version, default \`http.threads\` (one loop per core), access log off,"
    echo "peer rate limit raised out of the way."
    echo
    echo "Baseline is \`GET /healthz\` (public); authenticated is"
    echo "\`GET $auth_path\` with \`X-Branch-Origin\` and a 40-character"
    echo "bearer key of a registered peer (URL normalisation, keyed BLAKE2b of the key, snapshot"
    echo "look-up under a read lock, per-peer rate bucket). In each round the baseline and"
    echo "the authenticated run alternate at each connection count. Commands (port and key"
    echo "vary per run):"
    echo
    echo '```'
    for c in $conns; do
        for kind in base auth; do
            wrk_cmd "$c" "$kind"
            show_cmd
        done
    done
    echo '```'
    echo
    echo "| connections | route | req/s | p50 ms | p99 ms | server CPU µs/req | auth/baseline req/s | auth/baseline CPU per req | errors | server VmHWM MiB |"
    echo "|---:|---|---:|---:|---:|---:|---:|---:|---|---:|"
    for c in $conns; do
        IFS='|' read -r b_rps b_p50 b_p99 b_cpu b_err < <(summary "$c" base)
        IFS='|' read -r a_rps a_p50 a_p99 a_cpu a_err < <(summary "$c" auth)
        echo "| $c | GET /healthz | $b_rps | $b_p50 | $b_p99 | $b_cpu | | | $b_err | ${rss[$c,base]} |"
        echo "| $c | GET $auth_path | $a_rps | $a_p50 | $a_p99 | $a_cpu | $(rps_ratio "$c") | $(ratio "$a_cpu" "$b_cpu")× | $a_err | ${rss[$c,auth]} |"
    done
    echo
    echo "Figures are medians over the rounds; the req/s ratio is the median of the per-round"
    echo "ratios (range in brackets). Server CPU per request is the server's user + system time"
    echo "during a run divided by the requests wrk completed: it does not depend on how the two"
    echo "cores were shared between wrk and the server, which moves req/s by tens of percent"
    echo "from one run to the next. VmHWM is the server's peak resident set since start, read"
    echo "after the last run of each row."
    if [[ " $conns " == *" 100 "* ]]; then
        r100=$(rps_ratio 100)
        r100=${r100#\*\*}
        r100=${r100%%\*\**}
        met=$(awk -v r="$r100" -v t="$target_ratio" 'BEGIN { print (r >= t) ? "met" : "NOT met" }')
        echo
        echo "Target: authenticated ≥ ${target_ratio}× baseline throughput at 100 connections:"
        echo "$met in this run (${r100}×)."
    fi
} >"$section"

cat "$section"

# ---- write docs/performance.md ----
bench_write_section peer-auth "$section" "$doc" "$machine" "$data" || die "results not written"
echo "peer-auth: results written to ${doc#"$repo"/}" >&2
