#!/usr/bin/env bash
# bench/pipeline.sh — the media pipeline end to end against the ffmpeg CLI,
# and the job queue's own throughput.
#
#   1. audio preview: a 60 s 720p clip (ffmpeg lavfi, made in the temp dir)
#      turned into the audio-preview template's outputs (metadata, a 30 s
#      mp3 at 128k 44.1 kHz stereo, a 1800x280 waveform, the loudness),
#      BENCH_ROUNDS times each, alternating which goes first:
#        cli     ffprobe, then ffmpeg once per output (mp3, showwavespic,
#                ebur128), wall and CPU summed
#        branch  a branchgate on 127.0.0.1 runs the bundled audio-preview
#                template (meta, preview, waveform, loudness: one decode):
#                POST /api/v1/assemblies (no md5 announced, so every round
#                is a new assembly), tus POST + PATCHes of <= 8 MiB, then the
#                assembly's SSE channel until its terminal event. Recorded:
#                end to end (create -> assembly:completed, upload included),
#                the upload alone, and the server's execution_duration.
#      The first round's preview is downloaded and checked with ffprobe
#      (mp3, 30 +- 0.1 s). Any failed assembly, or the server dying, fails
#      the script.
#   2. job queue: bg_bench_queue (bench/queue.c) on a fresh registry
#      database: QUEUE_JOBS no-op jobs enqueued one transaction each, then
#      claimed and completed (claim + set done, one transaction each) until
#      none is due; with 1 assembly, with 100 assemblies, and with 100
#      assemblies and two claiming threads; baseline: the same number of
#      transactions of one audit-log append each.
# Writes the results into docs/performance.md between
# <!-- pipeline:begin --> and <!-- pipeline:end -->.
#
# Environment: BRANCHGATE_BIN     (default <repo>/build/branchgate),
#              BG_BENCH_QUEUE     (default bg_bench_queue next to BRANCHGATE_BIN,
#                                  i.e. <repo>/build/bg_bench_queue),
#              BENCH_ROUNDS       (audio-preview rounds, default 5; medians),
#              QUEUE_JOBS         (jobs per queue run, default 20000),
#              QUEUE_MAX_SECONDS  (cap on each queue run's claim phase,
#                                  default 10; a capped run says so).
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${BRANCHGATE_BIN:-$repo/build/branchgate}
qbin=${BG_BENCH_QUEUE:-$(dirname "$bin")/bg_bench_queue}
rounds=${BENCH_ROUNDS:-5}
jobs=${QUEUE_JOBS:-20000}
qmax=${QUEUE_MAX_SECONDS:-10}
doc=$repo/docs/performance.md
chunk=8388608 # uploads.chunk_max_bytes default

die() { echo "pipeline: $*" >&2; exit 1; }
[[ $rounds =~ ^[1-9][0-9]?$ ]] || die "BENCH_ROUNDS must be 1-99"
[[ $jobs =~ ^[1-9][0-9]{0,6}$ ]] || die "QUEUE_JOBS must be 1-9999999"
[[ $qmax =~ ^[1-9][0-9]{0,3}$ ]] || die "QUEUE_MAX_SECONDS must be 1-9999"
[[ -x $bin ]] || die "no executable at $bin (build it, or set BRANCHGATE_BIN)"
[[ -x $qbin ]] || die "no executable at $qbin (build the bg_bench_queue target, or set BG_BENCH_QUEUE)"
for tool in curl ffmpeg ffprobe awk split base64 timeout; do
    command -v "$tool" >/dev/null || die "$tool is not installed (Debian: apt-get install -y $tool)"
done
((BASH_VERSINFO[0] >= 5)) || die "needs bash 5 (EPOCHREALTIME)"

load0=$(cut -d" " -f1-3 /proc/loadavg)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bg-bench-pipeline.XXXXXX")
srv=""
sse=""
cleanup() {
    local rc=$?
    if [[ -n $sse ]]; then kill -TERM "$sse" 2>/dev/null || true; fi
    if [[ -n $srv ]]; then
        kill -TERM "$srv" 2>/dev/null || true
        if ! timeout 10 tail --pid="$srv" -f /dev/null 2>/dev/null; then
            echo "pipeline: the server did not stop within 10 s of SIGTERM; killing it" >&2
            kill -KILL "$srv" 2>/dev/null || true
        fi
        wait "$srv" 2>/dev/null || true
    fi
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

# Wall clock in microseconds, without a fork.
now_us() { local t=${EPOCHREALTIME/[.,]/}; echo "$((10#$t))"; }
ms_since() { awk -v a="$1" -v b="$(now_us)" 'BEGIN { printf "%.1f", (b - a) / 1000 }'; }
# CPU time (user + system) of a process in ms, from /proc/PID/stat.
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.0f", ($12 + $13) * 1000 / hz }' "/proc/$1/stat"; }
alive() { if [[ -z $srv ]] || ! kill -0 "$srv" 2>/dev/null; then die "the server died (its log follows)"; fi; }
# jfield NAME JSON: the scalar value of the first "NAME": in JSON (strings unquoted).
jfield() { { grep -o "\"$1\":\(\"[^\"]*\"\|[^,}]*\)" <<<"$2" || true; } | sed -n "1 { s/^\"$1\"://; s/^\"//; s/\"\$//; p }"; }

# ---- 1. audio preview ----

clip=$tmp/clip.mp4
echo "pipeline: generating a 60 s 720p test clip" >&2
gen_cmd=(ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=1280x720:rate=30
    -f lavfi -i sine=frequency=440:sample_rate=48000 -t 60 -c:v libx264 -preset veryfast
    -pix_fmt yuv420p -c:a aac -b:a 128k -shortest "$clip")
"${gen_cmd[@]}" 2>"$tmp/ffmpeg-gen.log" || die "cannot generate the clip"
size=$(stat -c %s "$clip")
split -b "$chunk" -d -a 3 "$clip" "$tmp/chunk."
nchunks=$(find "$tmp" -maxdepth 1 -name 'chunk.*' | wc -l)

# The CLI doing the template's work once per output: the metadata, the
# 30 s mp3 preview, the 1800x280 waveform and the EBU R128 loudness.
ffq=(ffmpeg -hide_banner -loglevel error -y)
cli_probe=(ffprobe -v error -show_format -show_streams "$clip")
cli_cmd=("${ffq[@]}" -ss 0 -t 30 -i "$clip" -vn -c:a libmp3lame -b:a 128k -ar 44100 -ac 2 "$tmp/cli.mp3")
cli_wave=("${ffq[@]}" -i "$clip" -filter_complex "[0:a]showwavespic=s=1800x280" -frames:v 1 "$tmp/cli-wave.png")
cli_loud=("${ffq[@]}" -i "$clip" -vn -af ebur128=peak=true -f null -)

data=$tmp/branch
"$bin" init --data "$data" --name bench --type master_branch >/dev/null 2>"$tmp/init.log" ||
    die "branchgate init failed"
BRANCHGATE_LOG_ACCESS=false BRANCHGATE_TEMPLATES_DIR="$repo/templates" \
    "$bin" serve --data "$data" --listen 127.0.0.1:0 >"$tmp/server.log" 2>&1 &
srv=$!
deadline=$(($(now_us) + 10000000))
until [[ -s $data/listen.url ]]; do
    alive
    (($(now_us) < deadline)) || die "the server did not start"
    sleep 0.05
done
url=$(head -n1 "$data/listen.url")
token=$(head -n1 "$data/admin.token")
[[ $url == http://127.0.0.1:* ]] || die "the server listens on $url, not 127.0.0.1"
version=$(timeout 10 "$bin" version | awk 'NR == 1')

# The PATCH requests of one upload, for one curl (one connection); the file
# holds the admin token and lives in the private temp dir.
patch_cfg() { # location
    local off=0 first=1 f
    for f in "$tmp"/chunk.*; do
        ((first)) || printf 'next\n'
        first=0
        printf 'url = "%s"\nrequest = "PATCH"\n' "$1"
        printf 'header = "Authorization: Bearer %s"\nheader = "Tus-Resumable: 1.0.0"\n' "$token"
        printf 'header = "Upload-Offset: %s"\nheader = "Content-Type: application/offset+octet-stream"\n' "$off"
        printf 'data-binary = "@%s"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\nsilent\nshow-error\n' "$f"
        off=$((off + $(stat -c %s "$f")))
    done
}

declare -a cli_ms=() exec_ms=() e2e_ms=() up_ms=() srv_cpu=() cli_cpu=()
run_cli() {
    local t0 c0
    c0=$(awk '{ print $14 + $15 + $16 + $17 }' /proc/$$/stat)
    t0=$(now_us)
    { "${cli_probe[@]}" >/dev/null && "${cli_cmd[@]}" && "${cli_wave[@]}" && "${cli_loud[@]}"; } \
        2>>"$tmp/ffmpeg-cli.log" || die "the ffmpeg CLI failed"
    cli_ms+=("$(ms_since "$t0")")
    # children's user + system time (fields 16, 17 of our own stat) after wait
    cli_cpu+=("$(awk -v c0="$c0" -v hz="$(getconf CLK_TCK)" '{ printf "%.0f", ($14 + $15 + $16 + $17 - c0) * 1000 / hz }' /proc/$$/stat)")
}
run_branch() { # round
    local r=$1 t0 tu c0 st id stream loc codes ok
    alive
    c0=$(cpu_ms "$srv")
    t0=$(now_us)
    st=$(curl -sS --fail-with-body -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
        --data-binary "{\"template_id\":\"audio-preview\",\"files\":[{\"name\":\"clip.mp4\",\"size\":$size}]}" \
        "$url/api/v1/assemblies") || die "round $r: cannot create the assembly: $st"
    id=$(jfield assembly_id "$st")
    stream=$(jfield update_stream_url "$st")
    [[ $id =~ ^[0-9a-f]{64}$ && $stream == "$url"/* ]] || die "round $r: unexpected create answer: $st"
    # The channel stream replays the channel from its first event and ends
    # after the terminal one, so it can start before the upload.
    curl -sSN --max-time 120 -H "Authorization: Bearer $token" "$stream" >"$tmp/sse.$r" 2>>"$tmp/curl.log" &
    sse=$!
    loc=$(curl -sS --fail-with-body -o /dev/null -w '%header{location}' -X POST \
        -H "Authorization: Bearer $token" -H 'Tus-Resumable: 1.0.0' -H "Upload-Length: $size" \
        -H "Upload-Metadata: assembly_id $(printf %s "$id" | base64 -w0),filename $(printf clip.mp4 | base64 -w0)" \
        "$url/api/v1/uploads/") || die "round $r: tus POST failed"
    [[ $loc == "$url"/api/v1/uploads/* ]] || die "round $r: unexpected upload Location: $loc"
    patch_cfg "$loc" >"$tmp/patch.curl"
    codes=$(curl -K "$tmp/patch.curl") || die "round $r: PATCH failed"
    [[ $(grep -c '^204$' <<<"$codes") == "$nchunks" ]] || die "round $r: PATCH answers: $(tr '\n' ' ' <<<"$codes")"
    tu=$(ms_since "$t0")
    wait "$sse" || true
    sse=
    e2e_ms+=("$(ms_since "$t0")")
    up_ms+=("$tu")
    alive
    srv_cpu+=("$(($(cpu_ms "$srv") - c0))")
    grep -q '^event: assembly:completed$' "$tmp/sse.$r" ||
        die "round $r: the stream ended without assembly:completed: $(grep '^event:' "$tmp/sse.$r" | tail -n 3 | tr '\n' ' ')"
    st=$(curl -sS --fail-with-body -H "Authorization: Bearer $token" "$url/api/v1/assemblies/$id") ||
        die "round $r: cannot read the status"
    ok=$(jfield ok "$st")
    [[ $ok == ASSEMBLY_COMPLETED ]] || die "round $r: assembly $id is $ok: $st"
    exec_ms+=("$(awk -v s="$(jfield execution_duration "$st")" 'BEGIN { printf "%.1f", s * 1000 }')")
    if ((r == 1)); then
        local preview probe fmt dur
        preview=$(grep -o '"ssl_url":"[^"]*/preview/[^"]*"' <<<"$st" | head -n1 | sed 's/^"ssl_url":"//; s/"$//')
        [[ $preview == "$url"/* ]] || die "no preview result in: $st"
        curl -sS --fail -H "Authorization: Bearer $token" -o "$tmp/preview.mp3" "$preview" ||
            die "cannot download the preview"
        probe=$(ffprobe -v error -show_entries format=format_name,duration -of default=nw=1 "$tmp/preview.mp3")
        fmt=$(sed -n 's/^format_name=//p' <<<"$probe")
        dur=$(sed -n 's/^duration=//p' <<<"$probe")
        [[ $fmt == mp3 ]] || die "the preview is not mp3: $probe"
        awk -v d="$dur" 'BEGIN { exit !(d >= 29.9 && d <= 30.1) }' || die "the preview lasts $dur s, not 30 ± 0.1"
        preview_dur=$dur
        preview_size=$(stat -c %s "$tmp/preview.mp3")
    fi
}

for ((r = 1; r <= rounds; r++)); do
    echo "pipeline: audio preview, round $r of $rounds" >&2
    if ((r % 2)); then run_cli; run_branch "$r"; else run_branch "$r"; run_cli; fi
done
cli_dur=$(ffprobe -v error -show_entries format=duration -of default=nw=1:nk=1 "$tmp/cli.mp3")

alive
kill -TERM "$srv"
timeout 10 tail --pid="$srv" -f /dev/null 2>/dev/null || kill -KILL "$srv" 2>/dev/null || true
wait "$srv" 2>/dev/null || true
srv=

# ---- 2. job queue ----

queue() { # label args...
    local label=$1 out
    shift
    echo "pipeline: job queue, $label" >&2
    out=$("$qbin" --dir "$tmp" --max-seconds "$qmax" "$@" 2>>"$tmp/queue.log") ||
        die "bg_bench_queue $* failed: $out"
    printf '%s\n' "$out"
}
q_triv=$(queue "baseline: $jobs trivial transactions" --trivial --jobs "$jobs")
q_one=$(queue "$jobs jobs, 1 assembly" --jobs "$jobs" --assemblies 1)
q_hun=$(queue "$jobs jobs, 100 assemblies" --jobs "$jobs" --assemblies 100)
q_two=$(queue "$jobs jobs, 100 assemblies, 2 threads" --jobs "$jobs" --assemblies 100 --threads 2)

# ---- the section ----

median() { # format values...
    local fmt=$1
    shift
    printf '%s\n' "$@" | sort -g |
        awk -v f="$fmt" '{ a[NR] = $1 } END { printf f, (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'
}
range() { # format values...
    local fmt=$1
    shift
    printf '%s\n' "$@" | sort -g | awk -v f="$fmt" 'NR == 1 { lo = $1 } { hi = $1 } END { printf f "–" f, lo, hi }'
}
ratios() { # name-of-numerator-array name-of-denominator-array
    local -n num=$1 den=$2
    local i
    for i in "${!num[@]}"; do awk -v a="${num[$i]}" -v b="${den[$i]}" 'BEGIN { printf "%.2f\n", (b > 0 ? a / b : 0) }'; done
}
mapfile -t r_exec < <(ratios exec_ms cli_ms)
mapfile -t r_e2e < <(ratios e2e_ms cli_ms)

when=$(date -u '+%Y-%m-%d %H:%M UTC')
machine="$(nproc) CPUs, $(uname -srm)"
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
if [[ -n $cpu_model ]]; then machine="$machine, $cpu_model"; fi
ffver=$(ffmpeg -hide_banner -version | awk 'NR == 1 { print $3 }')

# A queue run as a table row.
qrow() { # label json
    local j=$2 claimed capped per cpu comb note
    claimed=$(jfield claimed "$j")
    capped=$(jfield capped "$j")
    per=$(jfield claim_per_s "$j")
    cpu=$(awk -v c="$(jfield claim_cpu_us "$j")" 'BEGIN { printf (c >= 100 ? "%.0f" : "%.1f"), c }')
    comb=$(jfield combined_per_s "$j")
    note=
    if [[ $capped == true ]]; then
        note=" (capped: $claimed of $jobs in $(jfield claim_seconds "$j") s)"
        comb="—"
    fi
    printf '| %s | %s | %s%s | %s | %s | %s | %s |\n' "$1" "$(jfield enqueue_per_s "$j")" \
        "$per" "$note" "$cpu" "$comb" \
        "$(awk -v a="$per" -v b="$(jfield per_s "$q_triv")" 'BEGIN { v = (b > 0 ? a / b : 0); printf (v >= 0.1 || v == 0 ? "%.2f" : "%.2g"), v }')" \
        "$(jfield busy "$j")"
}

section=$tmp/section.md
{
    echo "## Media pipeline and job queue (bench/pipeline.sh)"
    echo
    echo "Run of $when. Machine: $machine; load average before the run: $load0."
    echo "Binary: $version, default \`jobs.workers\` (one per core), access log off; ffmpeg $ffver."
    echo
    echo "### Audio preview: branch vs the ffmpeg CLI"
    echo
    echo "Input: a 60 s 1280x720 30 fps h264 + 128k AAC clip ($size bytes), generated with"
    echo
    echo '```'
    cmd="${gen_cmd[*]}"
    echo "${cmd//"$tmp"\//}"
    echo '```'
    echo
    echo "CLI, the template's four outputs made once each, one process after the other (wall and CPU"
    echo "summed over the four):"
    echo
    echo '```'
    local_cmds=("${cli_probe[*]}" "${cli_cmd[*]}" "${cli_wave[*]}" "${cli_loud[*]}")
    for cmd in "${local_cmds[@]}"; do echo "${cmd//"$tmp"\//}"; done
    echo '```'
    echo
    echo "Branch: the bundled \`audio-preview\` template, four steps that share one decode of the"
    echo "clip's audio: \`meta\` (\`/meta/read\`), \`preview\` (\`/audio/encode\` mp3 128k 44.1 kHz stereo,"
    echo "0–30 s), \`waveform\` (\`/audio/waveform\` 1800x280 PNG + JSON peaks) and \`loudness\`"
    echo "(\`/audio/loudness\`). Each round creates a new assembly"
    echo "(\`POST /api/v1/assemblies\` without an md5, so the id is fresh), uploads the clip over tus"
    echo "(\`POST /api/v1/uploads/\`, then $nchunks PATCHes of at most 8 MiB on one connection; every PATCH is"
    echo "fsync'ed and committed before its 204) and follows the assembly's SSE channel"
    echo "(\`update_stream_url\`) until \`assembly:completed\`. The first round's preview was downloaded"
    echo "and checked with ffprobe: mp3, ${preview_dur} s, ${preview_size} bytes (the CLI's: ${cli_dur} s)."
    echo "$rounds round(s); the CLI and the branch alternate which goes first."
    echo
    echo "| measurement | median ms | range ms |"
    echo "|---|---:|---:|"
    echo "| ffmpeg CLI, wall time (process start included) | $(median %.0f "${cli_ms[@]}") | $(range %.0f "${cli_ms[@]}") |"
    echo "| ffmpeg CLI, CPU (user + system) | $(median %.0f "${cli_cpu[@]}") | $(range %.0f "${cli_cpu[@]}") |"
    echo "| branch: \`execution_duration\` (claim → four steps → settled) | $(median %.0f "${exec_ms[@]}") | $(range %.0f "${exec_ms[@]}") |"
    echo "| branch: create + tus upload ($size bytes) | $(median %.0f "${up_ms[@]}") | $(range %.0f "${up_ms[@]}") |"
    echo "| branch: end to end, create → \`assembly:completed\` on SSE | $(median %.0f "${e2e_ms[@]}") | $(range %.0f "${e2e_ms[@]}") |"
    echo "| branch: server CPU per assembly (upload, md5, four steps) | $(median %.0f "${srv_cpu[@]}") | $(range %.0f "${srv_cpu[@]}") |"
    echo
    echo "| ratio | median | range |"
    echo "|---|---:|---:|"
    echo "| branch execution ÷ CLI wall | **$(median %.2f "${r_exec[@]}")** | $(range %.2f "${r_exec[@]}") |"
    echo "| branch end to end ÷ CLI wall | **$(median %.2f "${r_e2e[@]}")** | $(range %.2f "${r_e2e[@]}") |"
    echo
    echo "Ratios are medians of the per-round ratios. \`execution_duration\` is the server's own"
    echo "figure (ms resolution): from the job's claim to its settling, all four steps included; it"
    echo "does not include the upload or the queueing before the claim. CPU times come from"
    echo "/proc in clock ticks ($(getconf CLK_TCK)/s)."
    echo
    echo "### Job queue: no-op jobs through enqueue → claim → complete"
    echo
    echo "\`build/bg_bench_queue\` (bench/queue.c) on a fresh registry database per run (WAL,"
    echo "\`synchronous=NORMAL\` as the server): $jobs jobs enqueued with one transaction each"
    echo "(\`bg_registry_job_insert\`, round-robin over the assemblies), then drained with one"
    echo "transaction per job (\`BEGIN IMMEDIATE\`; \`bg_registry_job_claim\`; \`bg_registry_job_set(done)\`;"
    echo "\`COMMIT\`) until none is due; each claiming thread has its own connection. Baseline:"
    echo "$jobs transactions of one \`bg_registry_audit_append\` each, same connection settings:"
    echo "**$(jfield per_s "$q_triv") transactions/s** ($(jfield cpu_us_per_tx "$q_triv") µs CPU each). The claim phase of a run stops after"
    echo "${qmax} s (\`QUEUE_MAX_SECONDS\`)."
    echo
    echo '```'
    echo "bg_bench_queue --trivial --jobs $jobs"
    echo "bg_bench_queue --jobs $jobs --assemblies 1"
    echo "bg_bench_queue --jobs $jobs --assemblies 100"
    echo "bg_bench_queue --jobs $jobs --assemblies 100 --threads 2"
    echo '```'
    echo
    echo "| run | enqueue jobs/s | claim + complete jobs/s | CPU µs per claim | combined jobs/s | claim ÷ trivial tx/s | busy retries |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    qrow "1 assembly, 1 thread" "$q_one"
    qrow "100 assemblies, 1 thread" "$q_hun"
    qrow "100 assemblies, 2 threads" "$q_two"
    echo
    echo "Combined is jobs ÷ (enqueue time + drain time). Claims are FIFO per assembly (no job is"
    echo "claimed while an older one of its assembly is unfinished), so with one assembly only its"
    echo "oldest job is ever claimable. The server does more per job than this loop: it claims and"
    echo "settles in two transactions, reads and updates the assembly and stores events."
    if [[ $(jfield capped "$q_one") == true ]]; then
        echo
        echo "The 1-assembly drain did not finish within ${qmax} s. The claim query sorts its candidates"
        echo "in a temporary B-tree (\`ORDER BY visible_at, id\`; EXPLAIN QUERY PLAN: \`USE TEMP B-TREE FOR"
        echo "ORDER BY\`), and its FIFO check (\`NOT EXISTS\` an older unfinished job of the same assembly)"
        echo "walks the assembly's older jobs through \`jobs_assembly(assembly_id, id)\`, finished ones"
        echo "included, reading each row's state. With one assembly holding a long backlog a claim"
        echo "therefore costs about (queued × finished) row visits of that assembly; spread over 100"
        echo "assemblies the same backlog drains at the rate of the rows above."
    fi
} >"$section"

cat "$section"
bench_write_section pipeline "$section" "$doc" "$machine" "$tmp" || die "results not written"
