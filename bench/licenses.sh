#!/usr/bin/env bash
# bench/licenses.sh — license validations per second, by where the answer
# comes from.
#
# Starts a top branch and two master branches on 127.0.0.1 in temporary data
# dirs, registers them with each other (one shared key), issues a license on
# the top and measures POST /api/v1/licenses/validate with wrk on:
#   top       the top answering locally (signature, record, branch count)
#   cached    master "master-1" (licenses.cache_ttl_s 3600) answering from the
#             top's signed receipt, cached by a first validation
#   through   master "master-2" (licenses.cache_ttl_s 0): every validation is
#             checked locally and then asked of the top (master -> top call)
# against the trivial route of the same run, GET /healthz on master-1.
# Every run must answer 2xx only, and every validation it made must have
# answered VALID (checked with the servers' license counters in /metrics).
# Prints a markdown table and writes it into docs/performance.md between
# <!-- licenses:begin --> and <!-- licenses:end -->.
#
# Environment: BRANCHGATE_BIN    (default <repo>/build/branchgate),
#              BENCH_SECONDS     (duration of each measured run, default 10),
#              BENCH_ROUNDS      (rounds of the four runs, default 3; the table
#                                 shows medians),
#              BENCH_CONNECTIONS (wrk connections, default 50).
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${BRANCHGATE_BIN:-$repo/build/branchgate}
secs=${BENCH_SECONDS:-10}
rounds=${BENCH_ROUNDS:-3}
conns=${BENCH_CONNECTIONS:-50}
doc=$repo/docs/performance.md
begin_marker='<!-- licenses:begin -->'
end_marker='<!-- licenses:end -->'
key=bench-licenses-shared-key-0123456789abcdef
domain=example.com

die() { echo "licenses: $*" >&2; exit 1; }

[[ $secs =~ ^[1-9][0-9]{0,3}$ ]] || die "BENCH_SECONDS must be a whole number of seconds (1-9999)"
[[ $rounds =~ ^[1-9][0-9]?$ ]] || die "BENCH_ROUNDS must be 1-99"
[[ $conns =~ ^[1-9][0-9]{0,4}$ ]] || die "BENCH_CONNECTIONS must be 1-99999"
[[ -x $bin ]] || die "no executable at $bin (build it, or set BRANCHGATE_BIN)"
for tool in wrk curl timeout awk; do
    command -v "$tool" >/dev/null || die "$tool is not installed (Debian: apt-get install -y $tool)"
done
need_fds=$((conns + 256))
if (($(ulimit -n) < need_fds)); then
    ulimit -n "$need_fds" 2>/dev/null ||
        die "need ulimit -n >= $need_fds for $conns connections (hard limit: $(ulimit -Hn))"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bg-bench-licenses.XXXXXX")
declare -A pid=()
cleanup() {
    local rc=$? name
    for name in "${!pid[@]}"; do
        kill -TERM "${pid[$name]}" 2>/dev/null || true
    done
    for name in "${!pid[@]}"; do
        if ! timeout 10 tail --pid="${pid[$name]}" -f /dev/null 2>/dev/null; then
            echo "licenses: $name did not stop within 10 s of SIGTERM; killing it" >&2
            kill -KILL "${pid[$name]}" 2>/dev/null || true
        fi
        wait "${pid[$name]}" 2>/dev/null || true
    done
    if ((rc != 0)); then
        for f in "$tmp"/*.log; do
            [[ -f $f ]] && { echo "--- last lines of $f" >&2; tail -n 15 "$f" >&2; }
        done
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { date +%s%3N; }

# start NAME TYPE CACHE_TTL_S: runs a branch, waits for its listen.url.
start() {
    local name=$1 type=$2 ttl=$3 dir=$tmp/$1
    timeout 30 "$bin" init --data "$dir" --name "$name" --type "$type" >"$tmp/$name-init.out" 2>&1 ||
        die "branchgate init of $name failed: $(tail -n 5 "$tmp/$name-init.out")"
    BRANCHGATE_LOG_ACCESS=false BRANCHGATE_LICENSES_CACHE_TTL_S=$ttl \
        BRANCHGATE_PEERS_PING_INTERVAL_MS=200 \
        BRANCHGATE_PEERS_RATE_LIMIT_RPS=10000000 BRANCHGATE_PEERS_RATE_BURST=10000000 \
        "$bin" serve --data "$dir" --listen 127.0.0.1:0 >"$tmp/$name.log" 2>&1 &
    pid[$name]=$!
    local deadline=$(($(now_ms) + 15000))
    until [[ -s $dir/listen.url ]]; do
        kill -0 "${pid[$name]}" 2>/dev/null || die "$name exited during start-up"
        (($(now_ms) < deadline)) || die "no $dir/listen.url after 15 s"
        sleep 0.05
    done
    [[ $(url "$name") =~ ^http://127\.0\.0\.1:[0-9]+$ ]] || die "unexpected listen URL '$(url "$name")'"
}
url() { head -n1 "$tmp/$1/listen.url"; }
token() { head -n1 "$tmp/$1/admin.token"; }

# api BRANCH METHOD PATH [JSON]: prints the body; fails on a 4xx/5xx.
api() {
    local args=(-sS --max-time 10 --fail-with-body -X "$2" -H "Authorization: Bearer $(token "$1")")
    [[ $# -ge 4 ]] && args+=(-H 'Content-Type: application/json' --data-binary "$4")
    curl "${args[@]}" "$(url "$1")$3" || die "$2 $3 on $1 failed"
}
register() { # ON NAME PEER TYPE
    api "$1" POST /api/v1/branches \
        "{\"branch_name\":\"$2\",\"branch_url\":\"$(url "$3")\",\"branch_type\":\"$4\",\"api_key\":\"$key\"}" >/dev/null
}
# wait_up MASTER: until the master's last ping of the top succeeded, i.e. it
# has learnt the top's public key from the top's health answer.
wait_up() {
    local deadline=$(($(now_ms) + 15000))
    until api "$1" GET /api/v1/branches/top/status | grep -q '"state":"up"'; do
        (($(now_ms) < deadline)) || die "$1 does not see the top as up after 15 s"
        sleep 0.1
    done
}

# ---- the topology ----
start top top_branch 300
start master-1 master_branch 3600
start master-2 master_branch 0
register top master-1 master-1 master_branch
register top master-2 master-2 master_branch
register master-1 top top top_branch
register master-2 top top top_branch
wait_up master-1
wait_up master-2

org=$(api top GET /api/v1/organizations | sed -n 's/.*"id":"\([^"]*\)","name":"default".*/\1/p')
[[ $org =~ ^[0-9a-f-]{36}$ ]] || die "no default organisation on the top"
issued=$(api top POST /api/v1/licenses \
    "{\"organization_id\":\"$org\",\"tier\":\"pro\",\"domains\":[\"$domain\"],\"features\":[],\"limits\":{\"branches\":10,\"users\":10},\"expires_at\":\"2030-01-01T00:00:00Z\"}")
license_key=$(sed -n 's/.*"license_key":"\(BG1\.[A-Za-z0-9_.-]*\)".*/\1/p' <<<"$issued")
[[ -n $license_key ]] || die "no license_key in the answer: $(head -c 300 <<<"$issued")"
body="{\"license_key\":\"$license_key\",\"domain\":\"$domain\"}"

# validate BRANCH: one validation; must answer VALID.
validate() {
    local out
    out=$(api "$1" POST /api/v1/licenses/validate "$body")
    grep -q '"code":"VALID"' <<<"$out" || die "validation on $1 answered: $(head -c 300 <<<"$out")"
    printf '%s\n' "$out"
}
validate top >/dev/null
validate master-2 >/dev/null
# The first validation on master-1 asks the top and caches its receipt; the
# second must come from that receipt.
validate master-1 >/dev/null
validate master-1 | grep -q "answered from the top's receipt" ||
    die "master-1 did not answer its second validation from the cached receipt"

# ---- wrk ----
# One Lua script per branch (its admin token); they live in the private temp dir.
for b in top master-1 master-2; do
    cat >"$tmp/validate-$b.lua" <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $(token "$b")"
LUA
done

kinds=(health top cached through)
declare -A label=([health]="GET /healthz on master-1 (baseline)"
    [top]="validate on the top (local)"
    [cached]="validate on master-1, cached receipt"
    [through]="validate on master-2, through the top")
declare -A target=([health]=master-1 [top]=top [cached]=master-1 [through]=master-2)

wrk_cmd() { # kind -> the command as an array in "cmd"
    cmd=(wrk -t2 "-c$conns" "-d${secs}s" --latency)
    if [[ $1 == health ]]; then
        cmd+=("$(url master-1)/healthz")
    else
        cmd+=(-s "$tmp/validate-${target[$1]}.lua" "$(url "${target[$1]}")/api/v1/licenses/validate")
    fi
}

# wrk's latency lines look like "     99%    4.60ms"; print the value in ms.
latency_ms() { # percentile wrk-output-file
    awk -v p="$1%" '$1 == p {
        v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
        f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : -1
        if (f < 0) exit 1
        printf "%.2f", v * f; found = 1; exit
    } END { if (!found) exit 1 }' "$2"
}
# Socket errors as "0" or e.g. "timeout 12".
socket_errors_of() {
    awk '/Socket errors:/ {
            gsub(/,/, ""); for (i = 3; i < NF; i += 2) if ($(i + 1) > 0) { e = e sep $i " " $(i + 1); sep = ", " }
         }
         END { print (e ? e : "0") }' "$1"
}
non2xx_of() { awk '/Non-2xx or 3xx responses:/ { n = $NF } END { print n + 0 }' "$1"; }

clk_tck=$(getconf CLK_TCK)
# User + system clock ticks of every server of the bench.
servers_cpu_ticks() {
    local name t=0
    for name in "${!pid[@]}"; do
        t=$((t + $(awk '{ print $14 + $15 }' "/proc/${pid[$name]}/stat")))
    done
    echo "$t"
}
# The license answers counted by a branch so far, as "code=n code=n ...".
lic_counts() {
    api "$1" GET /metrics | awk -F'[{}"= ]+' '/^branchgate_license_validations_total\{/ { printf "%s=%s ", $3, $NF }'
}
# count CODE COUNTS
count_of() { tr ' ' '\n' <<<"$2" | awk -F= -v c="$1" '$1 == c { print $2 }'; }
# check_answers KIND BEFORE AFTER REQUESTS: every validation of the run on the
# measured branch answered VALID.
check_answers() {
    local kind=$1 code other=0 valid
    valid=$(($(count_of VALID "$3") - $(count_of VALID "$2")))
    for code in $(tr ' ' '\n' <<<"$3" | cut -d= -f1); do
        [[ -n $code && $code != VALID ]] || continue
        other=$((other + $(count_of "$code" "$3") - $(count_of "$code" "$2")))
    done
    ((other == 0)) || die "$kind run: $other validations did not answer VALID (${target[$kind]}: $3)"
    ((valid >= $4)) || die "$kind run: only $valid VALID answers for $4 requests"
}

run_wrk() { # kind out-file
    local cmd before after t0 t1 n name
    wrk_cmd "$1"
    [[ $1 == health ]] || before=$(lic_counts "${target[$1]}")
    t0=$(servers_cpu_ticks)
    timeout $((secs + 30)) "${cmd[@]}" >"$2" 2>&1 || die "wrk failed: $(tail -n 5 "$2")"
    t1=$(servers_cpu_ticks)
    for name in "${!pid[@]}"; do
        kill -0 "${pid[$name]}" 2>/dev/null || die "$name died during the $1 run"
    done
    n=$(awk '/ requests in / { print $1; exit }' "$2")
    [[ -n $n ]] || die "no request count in wrk output: $(cat "$2")"
    (($(non2xx_of "$2") == 0)) || die "$1 run: $(non2xx_of "$2") non-2xx answers: $(cat "$2")"
    if [[ $1 != health ]]; then
        after=$(lic_counts "${target[$1]}")
        check_answers "$1" "$before" "$after" "$n"
    fi
    echo "$n $((t1 - t0))" >"$2.meta"
}

# A short unrecorded warm-up of every path (page faults, TCP, SQLite caches).
secs_saved=$secs
secs=2
for kind in "${kinds[@]}"; do run_wrk "$kind" "$tmp/warm-$kind.txt"; done
secs=$secs_saved

declare -A rps p50 p99 cpu serr
for ((r = 1; r <= rounds; r++)); do
    order=("${kinds[@]}")
    if ((r % 2 == 0)); then order=(through cached top health); fi
    for kind in "${order[@]}"; do
        k=$kind,$r
        out=$tmp/wrk-$r-$kind.txt
        echo "licenses: round $r/$rounds, $kind, ${secs} s ..." >&2
        run_wrk "$kind" "$out"
        read -r n ticks <"$out.meta"
        rps[$k]=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")
        cpu[$k]=$(awk -v t="$ticks" -v hz="$clk_tck" -v n="$n" 'BEGIN { printf "%.1f", (n > 0 ? t * 1e6 / hz / n : 0) }')
        p50[$k]=$(latency_ms 50 "$out") || die "no p50 in wrk output"
        p99[$k]=$(latency_ms 99 "$out") || die "no p99 in wrk output"
        serr[$k]=$(socket_errors_of "$out")
    done
done

# ---- report ----
# The wrk command of "cmd" as one shell line, with port and script dir masked.
show_cmd() {
    local a line='' name
    for a in "${cmd[@]}"; do
        for name in top master-1 master-2; do a=${a//"$(url "$name")"/http://127.0.0.1:PORT}; done
        a=${a//"$tmp"/\$TMP}
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

median() { # format values...
    local fmt=$1
    shift
    printf '%s\n' "$@" | sort -g |
        awk -v f="$fmt" '{ a[NR] = $1 } END { printf f, (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
# med KIND FIGURE FORMAT: the median of one figure (rps, p50, p99, cpu) over the rounds.
med() {
    local r v=()
    for ((r = 1; r <= rounds; r++)); do
        case $2 in
        rps) v+=("${rps[$1,$r]}") ;;
        p50) v+=("${p50[$1,$r]}") ;;
        p99) v+=("${p99[$1,$r]}") ;;
        cpu) v+=("${cpu[$1,$r]}") ;;
        esac
    done
    median "$3" "${v[@]}"
}
# Median (and range) of the per-round req/s ratios KIND / BASE.
rps_ratio() { # kind base
    local r v=() lo hi
    for ((r = 1; r <= rounds; r++)); do v+=("$(ratio "${rps[$1,$r]}" "${rps[$2,$r]}")"); done
    lo=$(printf '%s\n' "${v[@]}" | sort -g | awk 'NR == 1')
    hi=$(printf '%s\n' "${v[@]}" | sort -g | awk 'END { print }')
    if ((rounds > 1)); then
        printf '**%s** (%s–%s)' "$(median %.2f "${v[@]}")" "$lo" "$hi"
    else
        printf '**%s**' "${v[0]}"
    fi
}
errors() { # kind
    local r e=
    for ((r = 1; r <= rounds; r++)); do
        if [[ ${serr[$1,$r]} != 0 ]]; then e+="${e:+; }run $r: ${serr[$1,$r]}"; fi
    done
    echo "${e:-0}"
}

section=$tmp/section.md
{
    echo "## License validation (bench/licenses.sh)"
    echo
    echo "Run of $when: $rounds round(s) of ${secs} s per path, wrk with $conns connections."
    echo "Machine: $machine; wrk runs on the same cores as the servers."
    echo "Binary: $version; a top and two masters on 127.0.0.1, access log off, peer rate limit"
    echo "raised out of the way, health pings every 200 ms. One license (1 domain, issued on the"
    echo "top), validated for \`$domain\` with an admin token:"
    echo
    echo "- *top*: the top answers itself (signature, record, revocation, times, domain, branch count, signed receipt);"
    echo "- *cached*: master-1 (\`licenses.cache_ttl_s\` 3600) checks signature, times and domain"
    echo "  itself and answers from the top's receipt, cached by a first validation;"
    echo "- *through the top*: master-2 (\`licenses.cache_ttl_s\` 0) does the same local checks, then"
    echo "  asks the top (\`POST /api/v1/cross-branch/validate-license\`) and stores its receipt, every time."
    echo
    echo "Every run answered 2xx only, and every validation VALID (the license counters of"
    echo "\`/metrics\` on the measured branch, before and after each run). The rounds alternate the"
    echo "order of the four runs. Commands (ports and temp dir vary per run; each Lua script sets"
    echo "\`POST\`, the JSON body, \`Content-Type\` and \`Authorization: Bearer <admin token>\`):"
    echo
    echo '```'
    for kind in "${kinds[@]}"; do
        wrk_cmd "$kind"
        show_cmd
    done
    echo '```'
    echo
    echo "| path | req/s | p50 ms | p99 ms | CPU µs/req, all servers | ÷ /healthz req/s | socket errors |"
    echo "|---|---:|---:|---:|---:|---:|---|"
    for kind in "${kinds[@]}"; do
        if [[ $kind == health ]]; then rel=1.00; else rel=$(rps_ratio "$kind" health); fi
        echo "| ${label[$kind]} | $(med "$kind" rps %.0f) | $(med "$kind" p50 %.2f) | $(med "$kind" p99 %.2f) | $(med "$kind" cpu %.1f) | $rel | $(errors "$kind") |"
    done
    echo
    echo "Through the top ÷ cached: $(rps_ratio through cached) in req/s."
    echo
    echo "Figures are medians over the rounds; ratios are medians of the per-round ratios (range"
    echo "in brackets). CPU per request is the user + system time of all three servers during a"
    echo "run divided by the requests wrk completed (so *through the top* counts the master's and"
    echo "the top's work); it includes their background pings, which are negligible at these rates."
} >"$section"

cat "$section"

# ---- write docs/performance.md ----
bench_write_section licenses "$section" "$doc" "$machine" "$tmp" || die "results not written"
echo "licenses: results written to ${doc#"$repo"/}" >&2
