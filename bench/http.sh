#!/usr/bin/env bash
# bench/http.sh — branchgate's HTTP layer against nginx serving a static file
# on the same machine, in the same run.
#
# One branchgate (access log off) listens on 127.0.0.1 for HTTP/1.1 and
# cleartext HTTP/2 (prior knowledge), and with `tls.listen` for TLS (ALPN h2 and
# http/1.1) with a self-signed certificate made here. nginx (installed when
# missing, started from a config in the temp dir, never the system service)
# serves a file holding the same bytes as the branch's GET /healthz answer,
# with the same number of worker processes as the branch has HTTP threads.
#
# Runs, each BENCH_SECONDS (default 10), branch and nginx alternating:
#   h1          wrk, 100 connections, GET /healthz
#   h1-1000     wrk, 1000 connections
#   h2          h2load, 100 connections × 10 streams, cleartext h2 (prior knowledge)
#   tls-h1      wrk over TLS, 100 connections
#   tls-h2      h2load over TLS (ALPN h2), 100 connections × 10 streams
# Recorded: requests/s, latency p50 / p99 / p99.9 (wrk: its own histogram
# through a Lua `done` hook; h2load: every request's time from --log-file),
# errors (socket errors, non-2xx), and each server's peak RSS (VmHWM; nginx: the
# largest worker). Ratio = branch ÷ nginx requests/s.
# Writes the results into docs/performance.md between <!-- http:begin --> and
# <!-- http:end -->. Fails if a run has errors or a server dies.
#
# Environment: BRANCHGATE_BIN (default <repo>/build/branchgate),
#              BENCH_SECONDS  (per run, default 10),
#              BENCH_ROUNDS   (branch/nginx pairs per row, default 1; medians).
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${BRANCHGATE_BIN:-$repo/build/branchgate}
secs=${BENCH_SECONDS:-10}
rounds=${BENCH_ROUNDS:-1}
doc=$repo/docs/performance.md

die() { echo "http: $*" >&2; exit 1; }
[[ $secs =~ ^[1-9][0-9]{0,3}$ ]] || die "BENCH_SECONDS must be 1-9999"
[[ $rounds =~ ^[1-9][0-9]?$ ]] || die "BENCH_ROUNDS must be 1-99"
[[ -x $bin ]] || die "no executable at $bin (build it, or set BRANCHGATE_BIN)"
bench_need_tools wrk:wrk h2load:nghttp2-client nginx:nginx-light openssl:openssl curl:curl ||
    die "missing tools"

need_fds=$((1000 + 512))
if (($(ulimit -n) < need_fds)); then
    ulimit -n "$need_fds" 2>/dev/null || die "need ulimit -n >= $need_fds (hard limit $(ulimit -Hn))"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bg-bench-http.XXXXXX")
branch_pid= nginx_pid=
stop_pid() { # pid
    [[ -n $1 ]] && kill -0 "$1" 2>/dev/null || return 0
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
cleanup() {
    local rc=$?
    stop_pid "$branch_pid"
    stop_pid "$nginx_pid"
    if ((rc != 0)); then
        for f in "$tmp"/*.log; do [[ -s $f ]] && { echo "--- $f" >&2; tail -n 15 "$f" >&2; }; done
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- TLS material ----
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$tmp/key.pem" -out "$tmp/cert.pem" \
    >"$tmp/openssl.out" 2>&1 || die "cannot make a certificate"

# ---- the branch ----
threads=$(nproc)
bench_free_port tls_port
"$bin" init --data "$tmp/branch" --name bench --type top_branch >"$tmp/init.out" 2>&1 ||
    die "branchgate init failed"
BRANCHGATE_LOG_ACCESS=false BRANCHGATE_HTTP_THREADS=$threads \
    BRANCHGATE_TLS_LISTEN=127.0.0.1:$tls_port BRANCHGATE_TLS_CERT=$tmp/cert.pem \
    BRANCHGATE_TLS_KEY=$tmp/key.pem \
    "$bin" serve --data "$tmp/branch" --listen 127.0.0.1:0 >"$tmp/branch.log" 2>&1 &
branch_pid=$!
for _ in $(seq 150); do
    [[ -s $tmp/branch/listen.url ]] && break
    kill -0 "$branch_pid" 2>/dev/null || die "the branch exited during start-up"
    sleep 0.1
done
base=$(head -n1 "$tmp/branch/listen.url")
[[ $base =~ ^http://127\.0\.0\.1:[0-9]+$ ]] || die "unexpected listen URL '$base'"
curl -sS --max-time 5 -o "$tmp/healthz.json" "$base/healthz" || die "the branch does not answer"
curl -sSk --max-time 5 -o /dev/null "https://127.0.0.1:$tls_port/healthz" ||
    die "the branch does not answer over TLS"

# ---- nginx ----
bench_free_port np1 && bench_free_port np2 && bench_free_port np3
[[ $np1 != "$np2" && $np2 != "$np3" && $np1 != "$np3" && $np1 != "$tls_port" ]] || die "port clash"
mkdir -p "$tmp/nginx/www" "$tmp/nginx/tmp"
cp "$tmp/healthz.json" "$tmp/nginx/www/healthz"
# nginx's workers run as an unprivileged user: they must reach the file.
chmod 0755 "$tmp" "$tmp/nginx" "$tmp/nginx/www"
chmod 0644 "$tmp/nginx/www/healthz"
cat >"$tmp/nginx/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes $threads;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx/tmp;
    proxy_temp_path $tmp/nginx/tmp;
    fastcgi_temp_path $tmp/nginx/tmp;
    uwsgi_temp_path $tmp/nginx/tmp;
    scgi_temp_path $tmp/nginx/tmp;
    keepalive_requests 1000000;
    types { application/json healthz; }
    default_type application/json;
    server { listen 127.0.0.1:$np1; root $tmp/nginx/www; }
    server { listen 127.0.0.1:$np2 http2; root $tmp/nginx/www; }
    server {
        listen 127.0.0.1:$np3 ssl http2;
        ssl_certificate $tmp/cert.pem;
        ssl_certificate_key $tmp/key.pem;
        root $tmp/nginx/www;
    }
}
EOF
nginx -c "$tmp/nginx/nginx.conf" -p "$tmp/nginx" >"$tmp/nginx-start.log" 2>&1 &
nginx_pid=$!
for _ in $(seq 50); do
    curl -sS --max-time 1 -o /dev/null "http://127.0.0.1:$np1/healthz" 2>/dev/null && break
    kill -0 "$nginx_pid" 2>/dev/null || die "nginx exited during start-up: $(cat "$tmp/nginx-start.log")"
    sleep 0.1
done
cmp -s "$tmp/healthz.json" <(curl -sS "http://127.0.0.1:$np1/healthz") || die "nginx does not serve the file"

# ---- measuring ----
cat >"$tmp/pct.lua" <<'EOF'
done = function(summary, latency, requests)
    io.write(string.format("PCT %d %d %d\n", latency:percentile(50), latency:percentile(99),
                           latency:percentile(99.9)))
end
EOF

# VmHWM in MiB of a pid, or the largest of nginx's workers.
hwm_of() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo 0; }
nginx_hwm() {
    local m=0 p v
    for p in $(pgrep -P "$nginx_pid" 2>/dev/null); do
        v=$(hwm_of "$p")
        m=$(awk -v a="$m" -v b="$v" 'BEGIN { print (b > a ? b : a) }')
    done
    echo "$m"
}

# run_wrk URL CONNS -> "rps p50_ms p99_ms p999_ms errors"
run_wrk() {
    local out=$tmp/wrk.out
    wrk -t 2 -c "$2" -d "${secs}s" --timeout 10s -s "$tmp/pct.lua" "$1" >"$out" 2>&1 || die "wrk failed: $(tail -3 "$out")"
    awk '
        /^Requests\/sec:/ { rps = $2 }
        /^PCT / { p50 = $2 / 1000; p99 = $3 / 1000; p999 = $4 / 1000 }
        /Socket errors:/ { gsub(/,/, ""); for (i = 3; i < NF; i += 2) err += $(i + 1) }
        /Non-2xx or 3xx responses:/ { err += $NF }
        END { printf "%.0f %.2f %.2f %.2f %d\n", rps, p50, p99, p999, err }' "$out"
}

# run_h2load URL -> same fields; latency from every request of --log-file.
run_h2load() {
    local out=$tmp/h2load.out log=$tmp/h2load.tsv
    rm -f "$log"
    h2load -t 2 -c 100 -m 10 -D "$secs" --log-file="$log" "$1" >"$out" 2>&1 || die "h2load failed: $(tail -3 "$out")"
    local rps err
    rps=$(awk '/^finished in/ { for (i = 1; i <= NF; i++) if ($i ~ /req\/s/) { v = $(i - 1); print v + 0; exit } }' "$out")
    err=$(awk '/^requests:/ { print $10 + $12 + $14; exit }' "$out")
    local st
    st=$(awk '/^status codes:/ { print $5 + $7 + $9; exit }' "$out")
    sort -n -k3,3 "$log" | awk -v rps="$rps" -v err="$((err + st))" '
        $2 < 200 || $2 > 299 { bad++ }
        { v[NR] = $3 }
        END {
            if (NR == 0) { print rps, 0, 0, 0, err + 1; exit }
            p50 = v[int(NR * 0.50) > 0 ? int(NR * 0.50) : 1]
            p99 = v[int(NR * 0.99) > 0 ? int(NR * 0.99) : 1]
            p999 = v[int(NR * 0.999) > 0 ? int(NR * 0.999) : 1]
            printf "%.0f %.2f %.2f %.2f %d\n", rps, p50 / 1000, p99 / 1000, p999 / 1000, err + bad
        }'
}

declare -A res=()
rows=()
label=()
measure() { # row label kind branch-url nginx-url [conns]
    local row=$1 r a b
    rows+=("$row")
    label+=("$2")
    for ((r = 1; r <= rounds; r++)); do
        for side in $( ((r % 2)) && echo "branch nginx" || echo "nginx branch"); do
            local url=$4
            [[ $side == nginx ]] && url=$5
            echo "http: $2, $side, round $r of $rounds" >&2
            if [[ $3 == wrk ]]; then a=$(run_wrk "$url" "$6"); else a=$(run_h2load "$url"); fi
            kill -0 "$branch_pid" 2>/dev/null || die "the branch died during $2"
            kill -0 "$nginx_pid" 2>/dev/null || die "nginx died during $2"
            read -r _ _ _ _ b <<<"$a"
            ((b == 0)) || die "$2 ($side): $b errors: $a"
            res[$row.$side]+="$a;"
        done
    done
}

tls=https://127.0.0.1:$tls_port
measure h1 "HTTP/1.1, 100 connections" wrk "$base/healthz" "http://127.0.0.1:$np1/healthz" 100
measure h1k "HTTP/1.1, 1000 connections" wrk "$base/healthz" "http://127.0.0.1:$np1/healthz" 1000
measure h2 "HTTP/2 cleartext, 100 connections × 10 streams" h2load "$base/healthz" "http://127.0.0.1:$np2/healthz"
measure tls1 "TLS HTTP/1.1, 100 connections" wrk "$tls/healthz" "https://127.0.0.1:$np3/healthz" 100
measure tls2 "TLS HTTP/2, 100 connections × 10 streams" h2load "$tls/healthz" "https://127.0.0.1:$np3/healthz"
branch_mb=$(hwm_of "$branch_pid")
nginx_mb=$(nginx_hwm)

# ---- the section ----
# median of field F (1-based) over the ";"-separated runs
med() { # runs field
    tr ';' '\n' <<<"$1" | awk -v f="$2" 'NF { print $f }' | sort -g |
        awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'
}
when=$(date -u '+%Y-%m-%d %H:%M UTC')
machine="$(nproc) CPUs, $(uname -srm)"
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
[[ -n $cpu_model ]] && machine="$machine, $cpu_model"
ngv=$(nginx -v 2>&1 | sed 's/^nginx version: //')
section=$tmp/section.md
{
    echo "## HTTP layer against nginx (bench/http.sh)"
    echo
    echo "Run of $when. Machine: $machine; load average before: $(cut -d' ' -f1-3 /proc/loadavg)."
    echo "branchgate \`GET /healthz\` ($(stat -c %s "$tmp/healthz.json") bytes of JSON, $threads HTTP threads, access log off)"
    echo "against $ngv serving the same bytes from a file ($threads workers, access log off), on"
    echo "127.0.0.1, alternating, $rounds round(s) of ${secs} s per row (medians). wrk (2 threads) for"
    echo "HTTP/1.1, h2load (2 threads) for HTTP/2; both load generators share the 2 cores with the"
    echo "server. TLS: a self-signed RSA-2048 certificate, TLS 1.3, the same for both. Latency in ms."
    echo
    echo "| run | branch req/s | nginx req/s | ratio | branch p50 / p99 / p99.9 | nginx p50 / p99 / p99.9 |"
    echo "|---|---:|---:|---:|---:|---:|"
    for i in "${!rows[@]}"; do
        row=${rows[$i]}
        bb=${res[$row.branch]} nn=${res[$row.nginx]}
        br=$(med "$bb" 1) nr=$(med "$nn" 1)
        ratio=$(awk -v a="$br" -v b="$nr" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
        printf '| %s | %s | %s | **%s** | %s / %s / %s | %s / %s / %s |\n' "${label[$i]}" "$br" "$nr" "$ratio" \
            "$(med "$bb" 2)" "$(med "$bb" 3)" "$(med "$bb" 4)" "$(med "$nn" 2)" "$(med "$nn" 3)" "$(med "$nn" 4)"
    done
    echo
    echo "Peak RSS over all runs: branch $branch_mb MiB, nginx $nginx_mb MiB (its largest worker)."
    echo "No run had a socket error or a non-2xx answer (the script fails otherwise)."
} >"$section"
cat "$section"
bench_write_section http "$section" "$doc" "$machine" "$tmp" || die "results not written"
