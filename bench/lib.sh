# bench/lib.sh — shared by the bench scripts (source it; it defines functions only).

# bench_write_section NAME SECTION_FILE DOC MACHINE WORKDIR
# Replaces the text between <!-- NAME:begin --> and <!-- NAME:end --> in DOC
# with the contents of SECTION_FILE (appending the markers when absent, and
# creating DOC with its header when missing). Other bench scripts rewrite the
# same file, so a lock on DOC's folder is held while reading and rewriting.
bench_write_section() {
    local name=$1 section=$2 doc=$3 machine=$4 work=$5
    local begin="<!-- $name:begin -->" end="<!-- $name:end -->"
    mkdir -p "$(dirname "$doc")"
    exec 9<"$(dirname "$doc")"
    if command -v flock >/dev/null && ! flock -w 30 9; then
        echo "$name: $(dirname "$doc") stayed locked for 30 s; results not written" >&2
        exec 9<&-
        return 1
    fi
    if [[ ! -f $doc ]]; then
        printf '# Performance\n\nEvery figure is produced by a script in bench/; ratios are against a baseline\nmeasured in the same run on the same machine.\n\nMachine: %s.\n' "$machine" >"$doc"
    fi
    if ! grep -qF "$begin" "$doc" || ! grep -qF "$end" "$doc"; then
        printf '\n%s\n%s\n' "$begin" "$end" >>"$doc"
    fi
    awk -v b="$begin" -v e="$end" -v f="$section" '
        $0 == b { print; while ((getline line < f) > 0) print line; skip = 1; next }
        $0 == e { skip = 0 }
        !skip { print }' "$doc" >"$work/performance.md"
    cat "$work/performance.md" >"$doc"
    exec 9<&-
}

# bench_need_tools CMD:PACKAGE... — installs the Debian package of every
# command that is missing (needs root or sudo); fails if one stays missing.
bench_need_tools() {
    local missing=() t sudo=""
    for t in "$@"; do command -v "${t%%:*}" >/dev/null || missing+=("${t#*:}"); done
    ((${#missing[@]} == 0)) && return 0
    echo "bench: installing ${missing[*]}" >&2
    if [[ $(id -u) -ne 0 ]]; then sudo=sudo; fi
    { DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
        { $sudo apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"; }
    } >/dev/null || return 1
    for t in "$@"; do command -v "${t%%:*}" >/dev/null || { echo "bench: ${t%%:*} still missing" >&2; return 1; }; done
}

# bench_free_port VAR — sets VAR to a TCP port on 127.0.0.1 that nothing
# listens on now (run in the current shell: $RANDOM must advance).
bench_free_port() {
    local -n _port=$1
    local p
    for _ in $(seq 200); do
        p=$((20000 + RANDOM % 40000))
        if ! ss -Htln "sport = :$p" 2>/dev/null | grep -q .; then _port=$p; return 0; fi
    done
    return 1
}

# bench_section_first NAME DOC — when DOC lacks NAME's markers, inserts them
# after DOC's title and its opening paragraphs, before the first section
# (the first "<!-- x:begin -->" or "## " line), so that NAME's section comes
# before every other; bench_write_section then fills it. Same lock as above.
bench_section_first() {
    local name=$1 doc=$2
    local begin="<!-- $name:begin -->" end="<!-- $name:end -->"
    [[ -f $doc ]] || return 0
    exec 9<"$(dirname "$doc")"
    if command -v flock >/dev/null && ! flock -w 30 9; then
        echo "$name: $(dirname "$doc") stayed locked for 30 s" >&2
        exec 9<&-
        return 1
    fi
    if ! grep -qF "$begin" "$doc" || ! grep -qF "$end" "$doc"; then
        local tmpf
        tmpf=$(mktemp "${TMPDIR:-/tmp}/bg-bench-doc.XXXXXX")
        awk -v b="$begin" -v e="$end" '
            !done && (/^<!-- [A-Za-z0-9_-]+:begin -->$/ || /^## /) { print b; print e; print ""; done = 1 }
            { print }
            END { if (!done) { print ""; print b; print e } }' "$doc" >"$tmpf"
        cat "$tmpf" >"$doc"
        rm -f "$tmpf"
    fi
    exec 9<&-
}
