#!/usr/bin/env bash
# bench/summary.sh — one table of the key figures of docs/performance.md.
#
# Reads the sections the other bench scripts wrote (between their
# <!-- NAME:begin --> / <!-- NAME:end --> markers) and writes a `summary`
# section right after the file's title: figure | value | baseline | ratio |
# source section, for the HTTP layer against nginx (http), peer
# authentication (peer-auth), license validation (licenses), sync and the
# outbox (sync), the job queue and the pipeline against the ffmpeg CLI
# (pipeline), the robots (robots), the soak (soak) and the CLI (cli); then
# the run date of each section. It runs nothing else. Tables are read by
# their column headings and row labels, so a section that is missing, or a
# row or column that is not there, gives "—" in its place. `make bench` runs
# it last.
#
# Environment: PERF_DOC (default <repo>/docs/performance.md).
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
doc=${PERF_DOC:-$repo/docs/performance.md}
die() { echo "summary: $*" >&2; exit 1; }
[[ -f $doc ]] || die "no $doc: run the bench scripts first"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bg-bench-summary.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# ---- reading ----
declare -A sec=()
for name in http peer-auth licenses sync pipeline robots soak cli; do
    sec[$name]=$(awk -v b="<!-- $name:begin -->" -v e="<!-- $name:end -->" \
        '$0 == e { on = 0 } on { print } $0 == b { on = 1 }' "$doc")
done

# The awk functions shared by the table readers: cells trimmed, bold removed;
# a table is a header row followed by a |---| row, then its data rows.
awk_lib='
    function trim(s) { gsub(/\*\*/, "", s); gsub(/^[ \t]+|[ \t]+$/, "", s); return s }
    function cells(line, arr,   n, i, p) {
        sub(/^[ \t]*\|/, "", line); sub(/\|[ \t]*$/, "", line)
        n = split(line, p, "|")
        for (i = 1; i <= n; i++) arr[i] = trim(p[i])
        return n
    }
    function is_sep(line) { return line ~ /^[ \t]*\|[ \t]*:?-+/ }
'
# get SECTION ROW_RE COL_RE: the cell in column COL_RE (a regex on the
# header cell) of the first data row whose raw line matches ROW_RE.
get() {
    awk -v rre="$2" -v cre="$3" "$awk_lib"'
        { line[NR] = $0 }
        END {
            for (i = 1; i < NR; i++) {
                if (line[i] !~ /^[ \t]*\|/ || !is_sep(line[i + 1])) continue
                nh = cells(line[i], h); col = 0
                for (k = 1; k <= nh; k++) if (h[k] ~ cre) { col = k; break }
                for (j = i + 2; j <= NR && line[j] ~ /^[ \t]*\|/; j++)
                    if (col && line[j] ~ rre) { cells(line[j], r); print r[col]; exit }
                i = j
            }
        }' <<<"${sec[$1]}"
}
# rows SECTION COL_RE: "first cell<TAB>cell in COL_RE" of every data row of
# every table that has that column.
rows() {
    awk -v cre="$2" "$awk_lib"'
        { line[NR] = $0 }
        END {
            for (i = 1; i < NR; i++) {
                if (line[i] !~ /^[ \t]*\|/ || !is_sep(line[i + 1])) continue
                nh = cells(line[i], h); col = 0
                for (k = 1; k <= nh; k++) if (h[k] ~ cre) { col = k; break }
                for (j = i + 2; j <= NR && line[j] ~ /^[ \t]*\|/; j++)
                    if (col) { cells(line[j], r); printf "%s\t%s\n", r[1], r[col] }
                i = j
            }
        }' <<<"${sec[$1]}"
}
# num TEXT: the first number in TEXT, or nothing.
num() { grep -oE '[0-9]+(\.[0-9]+)?' <<<"$1" | head -n1 || true; }
# text SECTION ERE: the first match of ERE (grep -o) in the section's text.
text() { grep -oE "$2" <<<"${sec[$1]}" | head -n1 || true; }
ratio() { # a b -> a / b with 2 decimals, or nothing
    [[ -n $1 && -n $2 ]] || return 0
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b }'
}
run_of() { # SECTION -> its run date, or nothing
    text "$1" '[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}(:[0-9]{2})?( UTC|Z)?' | head -n1
}

# ---- the table ----
out=$tmp/rows.md
: >"$out"
# add FIGURE VALUE BASELINE RATIO SOURCE (empty -> "—")
add() {
    printf '| %s | %s | %s | %s | %s |\n' "$1" "${2:-—}" "${3:-—}" "${4:-—}" "$5" >>"$out"
}
with() { # VALUE SUFFIX -> "VALUE SUFFIX", or nothing when VALUE is empty
    [[ -n $1 ]] && printf '%s %s' "$1" "$2"
    return 0
}

# http: branch against nginx, every run
for r in "HTTP/1\\.1, 100 connections" "HTTP/1\\.1, 1000 connections" "HTTP/2 cleartext" \
    "TLS HTTP/1\\.1" "TLS HTTP/2"; do
    label=${r//\\/}
    v=$(num "$(get http "^\\| $r" "^branch req/s$")")
    b=$(num "$(get http "^\\| $r" "^nginx req/s$")")
    q=$(num "$(get http "^\\| $r" "^ratio$")")
    add "GET /healthz, $label: req/s" "$v" "$(with "$b" "(nginx, the same bytes from a file)")" \
        "${q:-$(ratio "$v" "$b")}" "http"
done

# peer-auth: authenticated peer call against /healthz
for c in 100 1000; do
    v=$(num "$(get peer-auth "^\\| $c \\| GET /api/v1/cross-branch/health" "^req/s$")")
    b=$(num "$(get peer-auth "^\\| $c \\| GET /healthz" "^req/s$")")
    q=$(num "$(get peer-auth "^\\| $c \\| GET /api/v1/cross-branch/health" "^auth/baseline req/s$")")
    add "peer-authenticated call (X-Branch-Origin + key), $c connections: req/s" "$v" \
        "$(with "$b" "(GET /healthz)")" "${q:-$(ratio "$v" "$b")}" "peer-auth"
done

# licenses: through the top against the cached receipt and /healthz
health=$(num "$(get licenses "^\\| GET /healthz" "^req/s$")")
cached=$(num "$(get licenses "cached receipt" "^req/s$")")
through=$(num "$(get licenses "through the top" "^req/s$")")
q=$(num "$(text licenses 'Through the top ÷ cached: \*\*[0-9.]+')")
add "license validation forwarded to the top (master → top each time): req/s" "$through" \
    "$(with "$cached" "(master, cached receipt)")" "${q:-$(ratio "$through" "$cached")}" "licenses"
q=$(num "$(get licenses "through the top" "/healthz req/s$")")
add "license validation forwarded to the top: req/s" "$through" \
    "$(with "$health" "(GET /healthz)")" "${q:-$(ratio "$through" "$health")}" "licenses"
q=$(num "$(get licenses "cached receipt" "/healthz req/s$")")
add "license validation from the cached receipt: req/s" "$cached" \
    "$(with "$health" "(GET /healthz)")" "${q:-$(ratio "$cached" "$health")}" "licenses"

# sync: full sync and the outbox drain
v=$(get sync "^\\| full sync" "^result$")
users=$(grep -oE '[0-9]+ users/s' <<<"$v" | head -n1 || true)
add "organisation sync, top → master: users/s" "$(num "$users")" "" "" "sync"
v=$(num "$(grep -oE '[0-9.]+ deliveries/s' <<<"$(get sync "^\\| outbox drain" "^result$")" || true)")
b=$(num "$(get sync "^\\| baseline" "^result$")")
q=$(num "$(get sync "^\\| ratio" "^result$")")
add "outbox deliveries to one peer: deliveries/s" "$v" "$(with "$b" "req/s (sequential peer calls, 1 connection)")" \
    "${q:-$(ratio "$v" "$b")}" "sync"

# pipeline: the queue against trivial transactions, the template against the CLI
trivial=$(num "$(text pipeline '\*\*[0-9.]+ transactions/s\*\*')")
for r in "1 assembly, 1 thread" "100 assemblies, 1 thread" "100 assemblies, 2 threads"; do
    v=$(num "$(get pipeline "^\\| $r" "^claim \\+ complete jobs/s$")")
    q=$(num "$(get pipeline "^\\| $r" "÷ trivial")")
    add "job queue claim + complete, $r: jobs/s" "$v" "$(with "$trivial" "tx/s (one-write transactions)")" \
        "${q:-$(ratio "$v" "$trivial")}" "pipeline"
done
cli_ms=$(num "$(get pipeline "ffmpeg CLI, wall time" "^median ms$")")
v=$(num "$(get pipeline "end to end, create" "^median ms$")")
q=$(num "$(get pipeline "end to end ÷ CLI" "^median$")")
add "audio-preview end to end (create, tus upload, SSE until completed): ms, lower is better" "$v" \
    "$(with "$cli_ms" "ms (the ffmpeg CLI, one run per output)")" "${q:-$(ratio "$v" "$cli_ms")}" "pipeline"
v=$(num "$(get pipeline "execution_duration" "^median ms$")")
q=$(num "$(get pipeline "execution ÷ CLI" "^median$")")
add "audio-preview execution (claim → settled): ms, lower is better" "$v" \
    "$(with "$cli_ms" "ms (the ffmpeg CLI)")" "${q:-$(ratio "$v" "$cli_ms")}" "pipeline"

# robots: the worst ratio and the multi-output audio preview
# (a ratio over the aim reads "1.13 **above 1.1×**": its leading number counts)
worst=$(rows robots "^ratio$" | awk -F'\t' '{ v = $2; sub(/[^0-9.].*$/, "", v) } v ~ /^[0-9.]+$/ && (v + 0 > m || !n) { m = v + 0; l = $1; n = 1 } END { if (n) printf "%s\t%s\n", l, m }')
if [[ -n $worst ]]; then
    wl=${worst%%$'\t'*} wr=${worst#*$'\t'}
    wcli=$(num "$(get robots "^\\| ${wl//[][\\.^$*+?(){}|]/.}" "^CLI median s$")")
    wrob=$(num "$(get robots "^\\| ${wl//[][\\.^$*+?(){}|]/.}" "^robot median s$")")
    add "slowest robot against the ffmpeg CLI ($wl): s, lower is better" "$wrob" \
        "$(with "$wcli" "s (the ffmpeg CLI)")" "$wr" "robots"
else
    add "slowest robot against the ffmpeg CLI: s, lower is better" "" "" "" "robots"
fi
v=$(num "$(get robots "^\\| audio-preview" "^robot median s$")")
b=$(num "$(get robots "^\\| audio-preview" "^CLI median s$")")
q=$(num "$(get robots "^\\| audio-preview" "^ratio$")")
add "audio-preview robot (meta + mp3 + waveform + loudness, one decode): s, lower is better" "$v" \
    "$(with "$b" "s (the ffmpeg CLI, four processes)")" "${q:-$(ratio "$v" "$b")}" "robots"

# soak: the result and the memory of each branch
res=$(text soak 'Result: \*\*[A-Z]+\*\*')
res=${res#Result: }
res=${res//\*/}
conns=$(text soak '[0-9]+ connections at once')
secs=$(text soak 'For [0-9]+ s')
what="mixed load"
[[ -n $conns && -n $secs ]] && what="$conns for ${secs#For }"
add "soak, $what: result" "$res" "" "" "soak"
for b in top master; do
    before=$(num "$(get soak "^\\| $b \\|" "^VmRSS MiB before$")")
    after=$(num "$(get soak "^\\| $b \\|" "^VmRSS after$")")
    add "soak, $b: VmRSS after the load, MiB" "$after" "$(with "$before" "MiB before the load")" \
        "$(ratio "$after" "$before")" "soak"
done

# cli: branchgate against curl
for r in "start-up" "API call"; do
    v=$(num "$(get cli "^\\| $r" "^branchgate mean$")")
    b=$(num "$(get cli "^\\| $r" "^curl mean$")")
    q=$(num "$(get cli "^\\| $r" "^ratio of means$")")
    what="\`branchgate version\`" base="ms (\`curl --version\`)"
    [[ $r == "API call" ]] && what="\`branchgate branch list --json\`" base="ms (curl, the same request)"
    add "$r, $what: ms, lower is better" "$v" "$(with "$b" "$base")" \
        "${q:-$(ratio "$v" "$b")}" "cli"
done

# ---- the section ----
section=$tmp/section.md
{
    echo "## Summary (bench/summary.sh)"
    echo
    echo "The key figures of the sections below, collected on $(date -u '+%Y-%m-%d %H:%M UTC') from this"
    echo "file (bench/summary.sh runs nothing; each figure was measured by the script of its"
    echo "section, whose run date is listed after the table). Baselines were measured in the same"
    echo "run on the same machine; ratio = value ÷ baseline, as the section states it (a median of"
    echo "per-round ratios where it has rounds). \"—\": the section, or that row of it, is missing."
    echo
    echo "| figure | value | baseline | ratio | source section |"
    echo "|---|---:|---|---:|---|"
    cat "$out"
    echo
    echo "| section | script | run of |"
    echo "|---|---|---|"
    for name in http peer-auth licenses sync pipeline robots soak cli; do
        d=$(run_of "$name")
        echo "| $name | bench/$name.sh | ${d:-—} |"
    done
} >"$section"
cat "$section"
machine="$(nproc) CPUs, $(uname -srm)"
bench_section_first summary "$doc" || die "cannot place the summary markers"
bench_write_section summary "$section" "$doc" "$machine" "$tmp" || die "results not written"
