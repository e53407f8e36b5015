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
