#!/usr/bin/env bash
# bench/soak.sh — a mixed load on a top branch and a master branch at once,
# with pass criteria.
#
# Starts a top ("top") and a master ("master") on 127.0.0.1 in temporary
# data dirs, registers each on the other with one shared key, and on each
# branch runs a `probe` assembly (a generated 2 s wav, tus upload) to
# completion. Then SOAK_CONNECTIONS (default 1000) connections hit both
# branches for SOAK_SECONDS (default 60), half on each branch:
#   healthz   wrk, GET /healthz
#   peer      wrk, GET /api/v1/cross-branch/health with X-Branch-Origin and
#             the shared key (the other branch calling)
#   status    wrk, GET /api/v1/assemblies/{id} of the completed assembly,
#             admin token
#   sse       SOAK_SSE (default 100) curl -N processes on
#             GET /api/stream?branch=NAME (admin token), heartbeat every
#             SOAK_SSE_HEARTBEAT_S (default 5) s
# The SSE streams take their share first; the rest is split evenly over the
# three wrk parts and the two branches (one wrk process of one thread each).
# Half-way through, one more probe assembly is made on each branch: each
# stream of that branch must deliver its assembly:completed event.
#
# Pass criteria (the script exits 1 when one fails, after writing the
# section): every wrk run had zero socket errors (connect, read, write,
# timeout) and zero non-2xx answers (so zero 5xx); every SSE stream answered
# 200, was still open when the load ended, carried at least
# floor(open seconds / heartbeat) - 1 heartbeats and the mid-soak assembly's
# completion; both mid-soak assemblies completed; both branches survived;
# each branch's open file descriptors (ls /proc/PID/fd) came back to within
# +20 of their count before the load (both idle, after a warm-up), read
# once the count has settled after two heartbeat periods (see "after the
# load" below). Recorded besides: requests, req/s, latency p50 / p99 / p99.9
# of each part (wrk's histogram through a Lua `done` hook), VmRSS before,
# the largest during and after the load, and VmHWM before and after.
# Writes the results into docs/performance.md between <!-- soak:begin -->
# and <!-- soak:end -->.
#
# Environment: BRANCHGATE_BIN       (default <repo>/build/branchgate),
#              SOAK_SECONDS         (default 60),
#              SOAK_CONNECTIONS     (all parts, both branches, default 1000),
#              SOAK_SSE             (SSE streams, both branches, default 100),
#              SOAK_SSE_HEARTBEAT_S (default 5),
#              SOAK_WARMUP_SECONDS  (unrecorded warm-up of the wrk parts, default 5).
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${BRANCHGATE_BIN:-$repo/build/branchgate}
secs=${SOAK_SECONDS:-60}
conns=${SOAK_CONNECTIONS:-1000}
nsse=${SOAK_SSE:-100}
hb=${SOAK_SSE_HEARTBEAT_S:-5}
warm=${SOAK_WARMUP_SECONDS:-5}
doc=$repo/docs/performance.md
key=bench-soak-shared-key-0123456789abcdef
fd_slack=20

die() { echo "soak: $*" >&2; exit 1; }
[[ $secs =~ ^[1-9][0-9]{0,4}$ ]] || die "SOAK_SECONDS must be 1-99999"
[[ $conns =~ ^[1-9][0-9]{0,4}$ ]] || die "SOAK_CONNECTIONS must be 1-99999"
[[ $nsse =~ ^(0|[1-9][0-9]{0,3})$ ]] || die "SOAK_SSE must be 0-9999"
[[ $hb =~ ^[1-9][0-9]{0,2}$ ]] || die "SOAK_SSE_HEARTBEAT_S must be 1-999"
[[ $warm =~ ^[0-9]{1,3}$ ]] || die "SOAK_WARMUP_SECONDS must be 0-999"
((nsse % 2 == 0)) || die "SOAK_SSE must be even (half on each branch)"
# wrk connections per part and branch (3 parts × 2 branches)
per=$(((conns - nsse) / 6))
((per >= 1)) || die "SOAK_CONNECTIONS - SOAK_SSE leaves no connection for the wrk parts"
[[ -x $bin ]] || die "no executable at $bin (build it, or set BRANCHGATE_BIN)"
bench_need_tools wrk:wrk curl:curl ffmpeg:ffmpeg || die "missing tools"

# Every connection is a descriptor in its client and in a server; the
# servers inherit this limit.
need_fds=$((conns + 1024))
if (($(ulimit -n) < need_fds)); then
    ulimit -n "$need_fds" 2>/dev/null || die "need ulimit -n >= $need_fds (hard limit $(ulimit -Hn))"
fi

failures=()
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bg-bench-soak.XXXXXX")
declare -A pid=()
sse_pids=() wrk_pids=()
stop_pid() { # pid
    [[ -n $1 ]] && kill -0 "$1" 2>/dev/null || return 0
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
cleanup() {
    local rc=$? p name
    for p in "${wrk_pids[@]}" "${sse_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${wrk_pids[@]}" "${sse_pids[@]}"; do wait "$p" 2>/dev/null || true; done
    for name in "${!pid[@]}"; do stop_pid "${pid[$name]}"; done
    if ((rc != 0)); then
        for f in "$tmp"/*.log; do [[ -s $f ]] && { echo "--- $f" >&2; tail -n 15 "$f" >&2; }; done
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo "$((10#$t / 1000))"; }
url() { head -n1 "$tmp/$1/listen.url"; }
token() { head -n1 "$tmp/$1/admin.token"; }
alive() { # name
    kill -0 "${pid[$1]}" 2>/dev/null || die "$1 died (its log follows)"
}
# jfield NAME JSON: the scalar value of the first "NAME": in JSON (strings unquoted).
jfield() { { grep -o "\"$1\":\(\"[^\"]*\"\|[^,}]*\)" <<<"$2" || true; } | sed -n "1 { s/^\"$1\"://; s/^\"//; s/\"\$//; p }"; }

# start NAME TYPE: runs a branch, waits for its listen.url.
start() {
    local name=$1 dir=$tmp/$1
    timeout 30 "$bin" init --data "$dir" --name "$name" --type "$2" >"$tmp/$name-init.out" 2>&1 ||
        die "branchgate init of $name failed: $(tail -n 5 "$tmp/$name-init.out")"
    BRANCHGATE_LOG_ACCESS=false BRANCHGATE_TEMPLATES_DIR="$repo/templates" \
        BRANCHGATE_SSE_HEARTBEAT_S=$hb \
        BRANCHGATE_PEERS_RATE_LIMIT_RPS=10000000 BRANCHGATE_PEERS_RATE_BURST=10000000 \
        "$bin" serve --data "$dir" --listen 127.0.0.1:0 >"$tmp/$name.log" 2>&1 &
    pid[$name]=$!
    local deadline=$(($(now_ms) + 15000))
    until [[ -s $dir/listen.url ]]; do
        alive "$name"
        (($(now_ms) < deadline)) || die "no $dir/listen.url after 15 s"
        sleep 0.05
    done
    [[ $(url "$name") =~ ^http://127\.0\.0\.1:[0-9]+$ ]] || die "unexpected listen URL '$(url "$name")'"
}
# api BRANCH METHOD PATH [JSON]: prints the body; fails on a 4xx/5xx.
api() {
    local args=(-sS --max-time 30 --fail-with-body -X "$2" -H "Authorization: Bearer $(token "$1")")
    [[ $# -ge 4 ]] && args+=(-H 'Content-Type: application/json' --data-binary "$4")
    curl "${args[@]}" "$(url "$1")$3" || die "$2 $3 on $1 failed"
}

# ---- the topology ----
start top top_branch
start master master_branch
api top POST /api/v1/branches \
    "{\"branch_name\":\"master\",\"branch_url\":\"$(url master)\",\"branch_type\":\"master_branch\",\"api_key\":\"$key\"}" >/dev/null
api master POST /api/v1/branches \
    "{\"branch_name\":\"top\",\"branch_url\":\"$(url top)\",\"branch_type\":\"top_branch\",\"api_key\":\"$key\"}" >/dev/null
other() { [[ $1 == top ]] && echo master || echo top; }

# ---- a probe assembly on each branch ----
ffmpeg -nostdin -hide_banner -loglevel error -y -f lavfi -i sine=frequency=440:sample_rate=8000 -t 2 \
    "$tmp/tone.wav" 2>"$tmp/ffmpeg.log" || die "cannot generate the wav"
wav_size=$(stat -c %s "$tmp/tone.wav")
# submit BRANCH: creates a probe assembly and uploads the wav over tus; prints the id.
submit() {
    local b=$1 u st id loc code
    u=$(url "$b")
    st=$(api "$b" POST /api/v1/assemblies \
        "{\"template_id\":\"probe\",\"files\":[{\"name\":\"tone.wav\",\"size\":$wav_size}]}")
    id=$(jfield assembly_id "$st")
    [[ $id =~ ^[0-9a-f]{64}$ ]] || die "unexpected create answer on $b: $(head -c 300 <<<"$st")"
    loc=$(curl -sS --max-time 30 --fail-with-body -o /dev/null -w '%header{location}' -X POST \
        -H "Authorization: Bearer $(token "$b")" -H 'Tus-Resumable: 1.0.0' -H "Upload-Length: $wav_size" \
        -H "Upload-Metadata: assembly_id $(printf %s "$id" | base64 -w0),filename $(printf tone.wav | base64 -w0)" \
        "$u/api/v1/uploads/") || die "tus POST on $b failed"
    [[ $loc == "$u"/api/v1/uploads/* ]] || die "unexpected upload Location on $b: $loc"
    code=$(curl -sS --max-time 30 -o /dev/null -w '%{http_code}' -X PATCH \
        -H "Authorization: Bearer $(token "$b")" -H 'Tus-Resumable: 1.0.0' -H 'Upload-Offset: 0' \
        -H 'Content-Type: application/offset+octet-stream' --data-binary "@$tmp/tone.wav" "$loc") ||
        die "tus PATCH on $b failed"
    [[ $code == 204 ]] || die "tus PATCH on $b answered $code"
    echo "$id"
}
# settled BRANCH ID SECONDS: waits for the assembly to complete; fails otherwise.
settled() {
    local b=$1 id=$2 deadline=$(($(now_ms) + $3 * 1000)) st ok
    while :; do
        st=$(api "$b" GET "/api/v1/assemblies/$id")
        ok=$(jfield ok "$st")
        [[ $ok == ASSEMBLY_COMPLETED ]] && return 0
        [[ -n $(jfield error "$st") ]] && { echo "assembly $id on $b failed: $(head -c 300 <<<"$st")" >&2; return 1; }
        (($(now_ms) < deadline)) || { echo "assembly $id on $b is '$ok' after $3 s" >&2; return 1; }
        sleep 0.2
    done
}
declare -A asm=()
for b in top master; do
    asm[$b]=$(submit "$b")
    settled "$b" "${asm[$b]}" 60 || die "the first probe assembly did not complete"
done

# ---- the load parts ----
cat >"$tmp/pct.lua" <<'EOF'
done = function(summary, latency, requests)
    io.write(string.format("PCT %d %d %d\n", latency:percentile(50), latency:percentile(99),
                           latency:percentile(99.9)))
end
EOF
parts=(healthz peer status)
declare -A part_label=([healthz]="GET /healthz"
    [peer]="GET /api/v1/cross-branch/health (peer key)"
    [status]="GET /api/v1/assemblies/{id} (admin token)")
# route PART BRANCH -> the request's headers and URL (wrk and curl syntax) in "rargs"
route() {
    local u
    u=$(url "$2")
    case $1 in
    healthz) rargs=("$u/healthz") ;;
    peer) rargs=(-H "X-Branch-Origin: $(url "$(other "$2")")" -H "Authorization: Bearer $key"
        "$u/api/v1/cross-branch/health") ;;
    status) rargs=(-H "Authorization: Bearer $(token "$2")" "$u/api/v1/assemblies/${asm[$2]}") ;;
    esac
}
# wrk_args PART BRANCH CONNS SECONDS -> the command in "cmd"
wrk_args() {
    local rargs
    route "$1" "$2"
    cmd=(wrk -t1 "-c$3" "-d${4}s" --timeout 10s -s "$tmp/pct.lua" "${rargs[@]}")
}
# Each route once, checked.
for b in top master; do
    for p in "${parts[@]}"; do
        route "$p" "$b"
        code=$(curl -sS --max-time 10 -o "$tmp/check.json" -w '%{http_code}' "${rargs[@]}") ||
            die "$p on $b: curl failed"
        [[ $code == 200 ]] || die "$p on $b answered $code: $(head -c 300 "$tmp/check.json")"
    done
done
grep -q '"ok":"ASSEMBLY_COMPLETED"' "$tmp/check.json" || die "the status poll does not see a completed assembly"

# run_wrks SECONDS TAG: the six wrk processes in the background (pids in wrk_pids).
run_wrks() {
    local b p
    wrk_pids=()
    for b in top master; do
        for p in "${parts[@]}"; do
            wrk_args "$p" "$b" "$per" "$1"
            timeout $(($1 + 60)) "${cmd[@]}" >"$tmp/wrk-$2-$p-$b.out" 2>&1 &
            wrk_pids+=($!)
        done
    done
}
wait_wrks() {
    local p rc=0
    for p in "${wrk_pids[@]}"; do wait "$p" || rc=1; done
    wrk_pids=()
    return $rc
}

fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# ---- warm-up, then the idle figures ----
if ((warm > 0)); then
    echo "soak: warm-up, $warm s" >&2
    run_wrks "$warm" warm
    wait_wrks || die "a warm-up wrk failed: $(tail -n 3 "$tmp"/wrk-warm-*.out)"
fi
sleep 2
declare -A rss0 fd0 rssmax fdmax rss1 fd1 hwm hwm0
for b in top master; do
    alive "$b"
    rss0[$b]=$(status_kib "${pid[$b]}" VmRSS)
    fd0[$b]=$(fds "${pid[$b]}")
    hwm0[$b]=$(status_kib "${pid[$b]}" VmHWM)
    rssmax[$b]=${rss0[$b]}
    fdmax[$b]=${fd0[$b]}
done

# ---- the soak ----
sample() {
    local b v
    for b in top master; do
        alive "$b"
        v=$(status_kib "${pid[$b]}" VmRSS)
        ((v > rssmax[$b])) && rssmax[$b]=$v
        v=$(fds "${pid[$b]}")
        ((v > fdmax[$b])) && fdmax[$b]=$v
    done
    return 0
}
echo "soak: $nsse SSE streams + 6 × $per wrk connections for $secs s" >&2
declare -A sse_branch=()
for ((i = 0; i < nsse; i++)); do
    b=top
    ((i % 2)) && b=master
    curl -sS -N --max-time $((secs + 300)) -D "$tmp/sse-$i.h" -o "$tmp/sse-$i.body" \
        -H "Authorization: Bearer $(token "$b")" "$(url "$b")/api/stream?branch=$b" 2>"$tmp/sse-$i.err" &
    sse_pids+=($!)
    sse_branch[$i]=$b
done
deadline=$(($(now_ms) + 20000))
for ((i = 0; i < nsse; i++)); do
    until grep -q '^HTTP/[0-9.]* 200' "$tmp/sse-$i.h" 2>/dev/null; do
        kill -0 "${sse_pids[$i]}" 2>/dev/null || die "SSE stream $i ended before its answer: $(cat "$tmp/sse-$i.h" "$tmp/sse-$i.err" 2>/dev/null | head -c 300)"
        (($(now_ms) < deadline)) || die "SSE stream $i has no 200 answer after 20 s"
        sleep 0.05
    done
done
sse_t0=$(now_ms)
load0=$(cut -d' ' -f1-3 /proc/loadavg)
run_wrks "$secs" soak
t_end=$(($(now_ms) + secs * 1000))
mid_done=0
declare -A mid=()
submit_mid() {
    local b
    for b in top master; do
        mid[$b]=$(submit "$b") || failures+=("cannot submit the mid-soak assembly on $b")
    done
    mid_done=1
}
while (($(now_ms) < t_end)); do
    sleep 2
    sample
    ((!mid_done && $(now_ms) >= t_end - secs * 500)) && submit_mid
done
((mid_done)) || submit_mid # a run too short for a sample half-way
wrk_ok=1
wait_wrks || wrk_ok=0
sample
# The streams: each must still be running, then they are stopped.
declare -A sse_alive=()
for ((i = 0; i < nsse; i++)); do
    if kill -0 "${sse_pids[$i]}" 2>/dev/null; then sse_alive[$i]=1; else sse_alive[$i]=0; fi
done
sse_secs=$((($(now_ms) - sse_t0) / 1000))
for p in "${sse_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
for p in "${sse_pids[@]}"; do wait "$p" 2>/dev/null || true; done
sse_pids=()
sse_stop=$(now_ms)

# ---- after the load ----
for b in top master; do
    if [[ -n ${mid[$b]:-} ]]; then
        settled "$b" "${mid[$b]}" 60 || failures+=("the mid-soak assembly on $b did not complete")
    fi
done
# Descriptors back to the idle count. A branch notices that an SSE client
# has gone only when a write fails: the first heartbeat after the client's
# FIN draws a reset, the next one fails. So the count is read until it is at
# most the count before, or, once two heartbeat periods (+ 2 s) have passed
# since the streams were stopped, until it has not moved for 2 s; at most
# 20 s after that.
settle_from=$((sse_stop + (2 * hb + 2) * 1000))
deadline=$((settle_from + 20000))
declare -A fd_secs=()
for b in top master; do
    last=-1 same=0
    while :; do
        alive "$b"
        fd1[$b]=$(fds "${pid[$b]}")
        ((fd1[$b] <= fd0[$b])) && break
        if ((fd1[$b] == last)); then same=$((same + 1)); else same=0 last=${fd1[$b]}; fi
        ((same >= 4 && $(now_ms) >= settle_from)) && break
        (($(now_ms) < deadline)) || break
        sleep 0.5
    done
    fd_secs[$b]=$(awk -v a="$sse_stop" -v b="$(now_ms)" 'BEGIN { printf "%.1f", (b - a) / 1000 }')
    ((fd1[$b] <= fd0[$b] + fd_slack)) ||
        failures+=("$b: ${fd1[$b]} open descriptors ${fd_secs[$b]} s after the load, ${fd0[$b]} before")
    rss1[$b]=$(status_kib "${pid[$b]}" VmRSS)
    hwm[$b]=$(status_kib "${pid[$b]}" VmHWM)
done

# wrk figures: "requests|rps|p50|p99|p999|errors-text|errors-count"
wrk_fig() { # file
    awk '
        / requests in / { n = $1 }
        /^Requests\/sec:/ { rps = $2 }
        /^PCT / { p50 = $2 / 1000; p99 = $3 / 1000; p999 = $4 / 1000; pct = 1 }
        /Socket errors:/ {
            gsub(/,/, "")
            for (i = 3; i < NF; i += 2) if ($(i + 1) > 0) { e = e sep $i " " $(i + 1); sep = ", "; c += $(i + 1) }
        }
        /Non-2xx or 3xx responses:/ { e = e (e ? ", " : "") "non-2xx " $NF; c += $NF }
        END {
            if (n == "" || !pct) { print "0|0|0|0|0|no wrk output|1"; exit }
            printf "%d|%.0f|%.2f|%.2f|%.2f|%s|%d\n", n, rps, p50, p99, p999, (e ? e : "0"), c
        }' "$1"
}
declare -A fig=()
for b in top master; do
    for p in "${parts[@]}"; do
        f=$tmp/wrk-soak-$p-$b.out
        fig[$p.$b]=$(wrk_fig "$f")
        IFS='|' read -r _ _ _ _ _ etxt ecount <<<"${fig[$p.$b]}"
        ((ecount == 0)) || failures+=("$p on $b: errors: $etxt")
    done
done
((wrk_ok)) || failures+=("a wrk process failed or was cut off by its timeout")

# SSE figures per branch
min_hb=$((sse_secs / hb - 1))
declare -A sse_n sse_open sse_hbmin sse_hbmax sse_ev
for b in top master; do
    sse_n[$b]=0 sse_open[$b]=0 sse_hbmin[$b]=999999 sse_hbmax[$b]=0 sse_ev[$b]=0
done
for ((i = 0; i < nsse; i++)); do
    b=${sse_branch[$i]}
    sse_n[$b]=$((sse_n[$b] + 1))
    ((sse_alive[$i])) && sse_open[$b]=$((sse_open[$b] + 1))
    n=$(grep -c '^: heartbeat$' "$tmp/sse-$i.body" || true)
    ((n < sse_hbmin[$b])) && sse_hbmin[$b]=$n
    ((n > sse_hbmax[$b])) && sse_hbmax[$b]=$n
    # the mid-soak assembly's completion on this branch's stream
    if [[ -n ${mid[$b]:-} ]] && awk -v id="${mid[$b]}" '
            /^event: assembly:completed$/ { want = 1; next }
            want && /^data: / && index($0, id) { found = 1 }
            /^$/ { want = 0 }
            END { exit !found }' "$tmp/sse-$i.body"; then
        sse_ev[$b]=$((sse_ev[$b] + 1))
    fi
done
for b in top master; do
    ((sse_n[$b] == 0)) && { sse_hbmin[$b]=0; continue; }
    ((sse_open[$b] == sse_n[$b])) || failures+=("$b: $((sse_n[$b] - sse_open[$b])) of ${sse_n[$b]} SSE streams ended early")
    ((sse_hbmin[$b] >= min_hb)) || failures+=("$b: an SSE stream got ${sse_hbmin[$b]} heartbeats in $sse_secs s (at least $min_hb expected)")
    if ((mid_done)); then
        ((sse_ev[$b] == sse_n[$b])) ||
            failures+=("$b: $((sse_n[$b] - sse_ev[$b])) of ${sse_n[$b]} SSE streams missed the mid-soak assembly:completed")
    fi
done
((mid_done)) || failures+=("the mid-soak assemblies were not submitted")

# ---- the section ----
when=$(date -u '+%Y-%m-%d %H:%M UTC')
machine="$(nproc) CPUs, $(uname -srm)"
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
[[ -n $cpu_model ]] && machine="$machine, $cpu_model"
version=$(timeout 10 "$bin" version | awk 'NR == 1')
if ((${#failures[@]} == 0)); then result=PASS; else result=FAIL; fi
section=$tmp/section.md
tot_n=0 tot_rps=0
{
    echo "## Soak: mixed load on a top and a master (bench/soak.sh)"
    echo
    echo "Run of $when. Machine: $machine; load average before the load: $load0."
    echo "Binary: $version; a top and a master on 127.0.0.1, registered on each other with"
    echo "one shared key, access log off, peer rate limit raised out of the way, SSE heartbeat"
    echo "every $hb s. For $secs s, $conns connections at once, half on each branch:"
    echo "$nsse SSE streams (\`curl -N\`, \`GET /api/stream?branch=NAME\`, admin token) and"
    echo "$per wrk connections (one thread, \`--timeout 10s\`) per route and branch on"
    echo "\`GET /healthz\`, \`GET /api/v1/cross-branch/health\` (\`X-Branch-Origin\` + the shared"
    echo "key, as the other branch calls it) and \`GET /api/v1/assemblies/{id}\` (admin token, a"
    echo "completed \`probe\` assembly of a 2 s wav). Half-way through, one more probe assembly"
    echo "was made on each branch (tus upload under load). A $warm s warm-up of the wrk parts"
    echo "came first. All load generators share the $(nproc) cores with the two servers. Latency in ms."
    echo
    echo "| part | branch | connections | requests | req/s | p50 | p99 | p99.9 | errors |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---|"
    for p in "${parts[@]}"; do
        for b in top master; do
            IFS='|' read -r n rps p50 p99 p999 etxt _ <<<"${fig[$p.$b]}"
            echo "| ${part_label[$p]} | $b | $per | $n | $rps | $p50 | $p99 | $p999 | $etxt |"
            tot_n=$((tot_n + n))
            tot_rps=$((tot_rps + rps))
        done
    done
    echo "| all wrk parts | both | $((per * 6)) | $tot_n | $tot_rps | | | | |"
    for b in top master; do
        ev=—
        ((mid_done)) && ev="${sse_ev[$b]} of ${sse_n[$b]}"
        echo "| SSE \`/api/stream?branch=$b\` | $b | ${sse_n[$b]} | — | — | — | — | — | open at the end: ${sse_open[$b]} of ${sse_n[$b]}; heartbeats ${sse_hbmin[$b]}–${sse_hbmax[$b]} per stream in $sse_secs s; mid-soak \`assembly:completed\` received: $ev |"
    done
    echo
    echo "| branch | VmRSS MiB before | VmRSS during (largest) | VmRSS after | VmHWM MiB before | VmHWM after | open fds before | fds during (largest) | fds after | fds read at |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for b in top master; do
        echo "| $b | $(mib "${rss0[$b]}") | $(mib "${rssmax[$b]}") | $(mib "${rss1[$b]}") | $(mib "${hwm0[$b]}") | $(mib "${hwm[$b]}") | ${fd0[$b]} | ${fdmax[$b]} | ${fd1[$b]} | +${fd_secs[$b]} s |"
    done
    echo
    echo "\"Before\" is both branches idle after the warm-up; \"during\" is the largest of samples"
    echo "every 2 s; \"after\" is once the load and the streams have stopped and the descriptor"
    echo "count settled: back to the count before, or unchanged for 2 s once two heartbeat"
    echo "periods + 2 s had passed (a branch closes the connection of an SSE client that has gone"
    echo "only when a write fails: the first heartbeat after the client's FIN draws a reset, the"
    echo "next fails), at most 20 s later; \"fds read at\" is that moment, from the streams' stop."
    echo "VmHWM is the peak resident set since the branch started: equal before and after, the"
    echo "peak was not reached under the load."
    echo
    echo "Pass criteria: zero socket errors and zero non-2xx answers in every wrk run; every SSE"
    echo "stream open until the end with at least one heartbeat per $hb s (minus one) and the"
    echo "mid-soak assembly's completion; both mid-soak assemblies completed; open descriptors"
    echo "back within +$fd_slack of the count before."
    echo
    if [[ $result == PASS ]]; then
        echo "Result: **PASS**."
    else
        echo "Result: **FAIL**:"
        echo
        for f in "${failures[@]}"; do echo "- $f"; done
    fi
} >"$section"
cat "$section"
bench_write_section soak "$section" "$doc" "$machine" "$tmp" || die "results not written"
[[ $result == PASS ]] || die "failed: ${failures[*]}"
echo "soak: PASS" >&2
