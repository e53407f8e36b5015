#!/usr/bin/env bash
# bench/robots.sh — each in-process media robot (node/media) against the
# ffmpeg CLI doing the same work, as separate processes: wall time and peak
# RSS of one `bg_bench_robot` run (bench/robots.c) against one `ffmpeg` run.
#
# Fixtures, made with the ffmpeg CLI (lavfi) in a temp dir:
#   clip.mp4  60 s 1280x720 30 fps h264 + 128k aac (STACK-NOTES §6's clip)
#   a.wav     120 s 48 kHz stereo (sine + pink noise, varying level)
#   i.png     1280x720 testsrc2 frame
# Robots (CLI equivalent → driver):
#   mp3 preview   ffmpeg -ss 0 -t 30 -i clip.mp4 -vn -c:a libmp3lame -b:a 128k -ar 44100 -ac 2
#   aac m4a       ffmpeg -i a.wav -vn -c:a aac -b:a 128k -movflags +faststart out.m4a
#   opus          ffmpeg -i a.wav -vn -c:a libopus -b:a 96k out.opus
#   loudness      ffmpeg -i a.wav -af ebur128=peak=true -f null -
#   probe         ffprobe -show_format -show_streams clip.mp4
#   thumbs        3 × ffmpeg -ss T -i clip.mp4 -frames:v 1 -vf scale=320:-2 (T = 10, 30, 50 s,
#                 the robot's (i + 0.5) × duration / 3), wall summed, RSS the largest
#   resize        ffmpeg -i i.png -vf scale=300:300:force_original_aspect_ratio=increase,
#                 crop=300:300 -quality 80 out.webp  (cover 300x300 webp)
#   waveform      ffmpeg -i a.wav -filter_complex showwavespic=s=1800x280 -frames:v 1 out.png
#                 (the robot also writes the JSON peaks)
#   audio-preview the bundled template's four outputs: the CLI once per output, i.e.
#                 ffprobe + mp3 30 s preview + showwavespic 1800x280 + ebur128 on the wav
#                 (wall summed, RSS the largest), against one process decoding once
#                 (bg_bench_robot audio-preview: probe + bg_media_audio_multi)
#   video encode  ffmpeg -i clip.mp4 -vf scale=640:-2 -c:v libx264 -preset veryfast -crf 23
#                 -pix_fmt yuv420p -c:a aac -b:a 128k -movflags +faststart out.mp4
# Each robot: BENCH_ROUNDS rounds (VIDEO_ROUNDS for the video encode) of
# CLI and driver, alternating which goes first. Wall time from bash's
# EPOCHREALTIME around the process; peak RSS from /usr/bin/time -f %M (n/a
# when /usr/bin/time is missing). Every output is checked to exist and be
# non-empty. Aim (issue 7): no robot slower than 1.1× the CLI; the
# multi-output audio-preview faster than the CLI run once per output (< 1.0).
# Writes the results into docs/performance.md between
# <!-- robots:begin --> and <!-- robots:end -->.
#
# Environment: BRANCHGATE_BIN  (default <repo>/build/branchgate; only its
#                               folder is used, to find the driver),
#              BG_BENCH_ROBOT  (default bg_bench_robot next to BRANCHGATE_BIN),
#              BENCH_ROUNDS    (rounds per robot, default 3; medians),
#              VIDEO_ROUNDS    (rounds of the video encode, default 1).
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${BRANCHGATE_BIN:-$repo/build/branchgate}
rbin=${BG_BENCH_ROBOT:-$(dirname "$bin")/bg_bench_robot}
rounds=${BENCH_ROUNDS:-3}
vrounds=${VIDEO_ROUNDS:-1}
doc=$repo/docs/performance.md
aim=1.1

die() { echo "robots: $*" >&2; exit 1; }
[[ $rounds =~ ^[1-9][0-9]?$ ]] || die "BENCH_ROUNDS must be 1-99"
[[ $vrounds =~ ^[1-9][0-9]?$ ]] || die "VIDEO_ROUNDS must be 1-99"
[[ -x $rbin ]] || die "no executable at $rbin (build the bg_bench_robot target, or set BG_BENCH_ROBOT)"
for tool in ffmpeg ffprobe awk; do
    command -v "$tool" >/dev/null || die "$tool is not installed (Debian: apt-get install -y $tool)"
done
((BASH_VERSINFO[0] >= 5)) || die "needs bash 5 (EPOCHREALTIME)"
timebin=
if [[ -x /usr/bin/time ]]; then timebin=/usr/bin/time; fi

load0=$(cut -d" " -f1-3 /proc/loadavg)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bg-bench-robots.XXXXXX")
cleanup() {
    local rc=$?
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

now_us() { local t=${EPOCHREALTIME/[.,]/}; echo "$((10#$t))"; }

# ---- fixtures ----

ff=(ffmpeg -nostdin -hide_banner -loglevel error -y)
clip=$tmp/clip.mp4 wav=$tmp/a.wav png=$tmp/i.png
echo "robots: generating the fixtures (60 s 720p clip, 120 s wav, 1280x720 png)" >&2
gen_clip=(-f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000
    -t 60 -c:v libx264 -preset veryfast -pix_fmt yuv420p -c:a aac -b:a 128k -shortest clip.mp4)
gen_wav=(-f lavfi -i sine=frequency=440:sample_rate=48000 -f lavfi
    -i anoisesrc=color=pink:sample_rate=48000:amplitude=0.3 -filter_complex
    "[0][1]amix=inputs=2,volume='0.3+0.25*sin(2*PI*t/7)':eval=frame,aformat=channel_layouts=stereo"
    -t 120 a.wav)
gen_png=(-f lavfi -i testsrc2=size=1280x720 -frames:v 1 i.png)
(cd "$tmp" && "${ff[@]}" "${gen_clip[@]}" && "${ff[@]}" "${gen_wav[@]}" && "${ff[@]}" "${gen_png[@]}") \
    2>"$tmp/gen.log" || die "cannot generate the fixtures"

# ---- measuring ----

# run_one OUTVAR_MS OUTVAR_KB cmd...: wall ms and peak RSS KB of one process.
# stdout of the command goes to $tmp/last.out, stderr to $tmp/run.log.
run_one() {
    local -n _ms=$1 _kb=$2
    shift 2
    local t0 t1
    t0=$(now_us)
    if [[ -n $timebin ]]; then
        "$timebin" -f '%M' -o "$tmp/rss" "$@" >"$tmp/last.out" 2>>"$tmp/run.log" || die "failed: $*"
    else
        "$@" >"$tmp/last.out" 2>>"$tmp/run.log" || die "failed: $*"
    fi
    t1=$(now_us)
    _ms=$(((t1 - t0) / 1000))
    if [[ -n $timebin ]]; then _kb=$(tail -n1 "$tmp/rss"); else _kb=0; fi
}

nonempty() { local f; for f in "$@"; do [[ -s $f ]] || die "no output at ${f#"$tmp"/}"; done; }

declare -A cli_ms=() cli_kb=() rob_ms=() rob_kb=() cli_out=() rob_out=()
names=()

# One side of a robot: sets M (ms) and K (KB) for the whole side.
cli_side() { # name
    local ms kb t
    M=0 K=0
    case $1 in
    mp3) run_one ms kb "${ff[@]}" -ss 0 -t 30 -i "$clip" -vn -c:a libmp3lame -b:a 128k -ar 44100 -ac 2 "$tmp/cli.mp3"
        nonempty "$tmp/cli.mp3"; cli_out[$1]=$(stat -c %s "$tmp/cli.mp3") ;;
    aac) run_one ms kb "${ff[@]}" -i "$wav" -vn -c:a aac -b:a 128k -movflags +faststart "$tmp/cli.m4a"
        nonempty "$tmp/cli.m4a"; cli_out[$1]=$(stat -c %s "$tmp/cli.m4a") ;;
    opus) run_one ms kb "${ff[@]}" -i "$wav" -vn -c:a libopus -b:a 96k "$tmp/cli.opus"
        nonempty "$tmp/cli.opus"; cli_out[$1]=$(stat -c %s "$tmp/cli.opus") ;;
    loudness) run_one ms kb "${ff[@]}" -i "$wav" -af ebur128=peak=true -f null - ;;
    probe) run_one ms kb ffprobe -v error -show_format -show_streams "$clip" ;;
    thumbs)
        for t in 10 30 50; do
            run_one ms kb "${ff[@]}" -ss "$t" -i "$clip" -frames:v 1 -vf scale=320:-2 "$tmp/cli-$t.jpg"
            nonempty "$tmp/cli-$t.jpg"
            M=$((M + ms))
            ((kb > K)) && K=$kb
        done
        cli_out[$1]=$(($(stat -c %s "$tmp/cli-10.jpg") + $(stat -c %s "$tmp/cli-30.jpg") + $(stat -c %s "$tmp/cli-50.jpg")))
        return ;;
    resize) run_one ms kb "${ff[@]}" -i "$png" \
        -vf "scale=300:300:force_original_aspect_ratio=increase,crop=300:300" -c:v libwebp -quality 80 "$tmp/cli.webp"
        nonempty "$tmp/cli.webp"; cli_out[$1]=$(stat -c %s "$tmp/cli.webp") ;;
    waveform) run_one ms kb "${ff[@]}" -i "$wav" -filter_complex showwavespic=s=1800x280 -frames:v 1 "$tmp/cli-wave.png"
        nonempty "$tmp/cli-wave.png"; cli_out[$1]=$(stat -c %s "$tmp/cli-wave.png") ;;
    preview)
        local cmds=("ffprobe -v error -show_format -show_streams $wav"
            "${ff[*]} -ss 0 -t 30 -i $wav -vn -c:a libmp3lame -b:a 128k -ar 44100 -ac 2 $tmp/cli-p.mp3"
            "${ff[*]} -i $wav -filter_complex showwavespic=s=1800x280 -frames:v 1 $tmp/cli-p.png"
            "${ff[*]} -i $wav -af ebur128=peak=true -f null -")
        local c
        for c in "${cmds[@]}"; do
            # shellcheck disable=SC2086 # the words of a fixed command line
            run_one ms kb $c
            M=$((M + ms))
            ((kb > K)) && K=$kb
        done
        nonempty "$tmp/cli-p.mp3" "$tmp/cli-p.png"
        cli_out[$1]=$(($(stat -c %s "$tmp/cli-p.mp3") + $(stat -c %s "$tmp/cli-p.png")))
        return ;;
    video) run_one ms kb "${ff[@]}" -i "$clip" -vf scale=640:-2 -c:v libx264 -preset veryfast -crf 23 \
        -pix_fmt yuv420p -c:a aac -b:a 128k -movflags +faststart "$tmp/cli-video.mp4"
        nonempty "$tmp/cli-video.mp4"; cli_out[$1]=$(stat -c %s "$tmp/cli-video.mp4") ;;
    esac
    M=$ms K=$kb
}
robot_side() { # name
    local ms kb
    case $1 in
    mp3) run_one ms kb "$rbin" audio-encode "$clip" "$tmp/rob.mp3" mp3 128000 30 44100 2
        nonempty "$tmp/rob.mp3"; rob_out[$1]=$(stat -c %s "$tmp/rob.mp3") ;;
    aac) run_one ms kb "$rbin" audio-encode "$wav" "$tmp/rob.m4a" aac 128000
        nonempty "$tmp/rob.m4a"; rob_out[$1]=$(stat -c %s "$tmp/rob.m4a") ;;
    opus) run_one ms kb "$rbin" audio-encode "$wav" "$tmp/rob.opus" opus 96000
        nonempty "$tmp/rob.opus"; rob_out[$1]=$(stat -c %s "$tmp/rob.opus") ;;
    loudness) run_one ms kb "$rbin" loudness "$wav" ;;
    probe) run_one ms kb "$rbin" probe "$clip" ;;
    thumbs) rm -rf "$tmp/thumbs" && mkdir "$tmp/thumbs"
        run_one ms kb "$rbin" thumbs "$clip" "$tmp/thumbs" 3 320 jpeg
        nonempty "$tmp/thumbs/thumb-1.jpg" "$tmp/thumbs/thumb-2.jpg" "$tmp/thumbs/thumb-3.jpg"
        rob_out[$1]=$(cat "$tmp"/thumbs/thumb-*.jpg | wc -c) ;;
    resize) run_one ms kb "$rbin" resize "$png" "$tmp/rob.webp" 300 300 cover webp
        nonempty "$tmp/rob.webp"; rob_out[$1]=$(stat -c %s "$tmp/rob.webp") ;;
    waveform) run_one ms kb "$rbin" waveform "$wav" "$tmp/rob-wave.png" "$tmp/rob-wave.json" 1800 280
        nonempty "$tmp/rob-wave.png" "$tmp/rob-wave.json"; rob_out[$1]=$(stat -c %s "$tmp/rob-wave.png") ;;
    preview) run_one ms kb "$rbin" audio-preview "$wav" "$tmp/rob-p.mp3" "$tmp/rob-p.png" "$tmp/rob-p.json"
        nonempty "$tmp/rob-p.mp3" "$tmp/rob-p.png" "$tmp/rob-p.json"
        rob_out[$1]=$(($(stat -c %s "$tmp/rob-p.mp3") + $(stat -c %s "$tmp/rob-p.png"))) ;;
    video) run_one ms kb "$rbin" video-encode "$clip" "$tmp/rob-video.mp4" 640 23 veryfast
        nonempty "$tmp/rob-video.mp4"; rob_out[$1]=$(stat -c %s "$tmp/rob-video.mp4") ;;
    esac
    M=$ms K=$kb
    printf '%s: %s\n' "$1" "$(cat "$tmp/last.out")" >>"$tmp/robot-meta.txt"
}

bench() { # name label rounds
    local name=$1 n=$3 r M K
    names+=("$name")
    label[$name]=$2
    for ((r = 1; r <= n; r++)); do
        echo "robots: ${2}, round $r of $n" >&2
        if ((r % 2)); then
            cli_side "$name"; cli_ms[$name]+="$M " cli_kb[$name]+="$K "
            robot_side "$name"; rob_ms[$name]+="$M " rob_kb[$name]+="$K "
        else
            robot_side "$name"; rob_ms[$name]+="$M " rob_kb[$name]+="$K "
            cli_side "$name"; cli_ms[$name]+="$M " cli_kb[$name]+="$K "
        fi
    done
}
declare -A label=()

bench mp3 "audio encode: mp3 128k, 30 s from the clip" "$rounds"
bench aac "audio encode: aac m4a 128k, the wav" "$rounds"
bench opus "audio encode: opus 96k, the wav" "$rounds"
bench loudness "loudness (EBU R128 + true peak), the wav" "$rounds"
bench probe "probe, the clip" "$rounds"
bench thumbs "video thumbs: 3 × 320-wide jpeg" "$rounds"
bench resize "image resize: png → webp 300x300 cover" "$rounds"
bench waveform "waveform 1800x280, the wav" "$rounds"
bench preview "audio-preview (meta + mp3 30 s + waveform + loudness), the wav" "$rounds"
bench video "video encode: 640 wide, veryfast crf 23 + aac 128k" "$vrounds"

# ---- the section ----

median() { # values...
    printf '%s\n' "$@" | sort -g |
        awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'
}
range_s() { # values (ms)...
    printf '%s\n' "$@" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.2f–%.2f", lo / 1000, hi / 1000 }'
}
mb() { # KB
    if [[ -z $timebin ]]; then echo "n/a"; else awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; fi
}

when=$(date -u '+%Y-%m-%d %H:%M UTC')
machine="$(nproc) CPUs, $(uname -srm)"
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
if [[ -n $cpu_model ]]; then machine="$machine, $cpu_model"; fi
ffver=$(ffmpeg -hide_banner -version | awk 'NR == 1 { print $3 }')
over=0

section=$tmp/section.md
{
    echo "## In-process media robots against the ffmpeg CLI (bench/robots.sh)"
    echo
    echo "Run of $when. Machine: $machine; load average before the run: $load0. ffmpeg $ffver."
    echo
    echo "Each row runs one robot of node/media in its own process (\`bg_bench_robot\`, bench/robots.c:"
    echo "one robot call, then exit) against the ffmpeg CLI doing the same work, alternating which goes"
    echo "first; $rounds round(s) per robot, $vrounds for the video encode. Wall time is measured around"
    echo "the process (start-up included on both sides); peak RSS is /usr/bin/time's maximum resident"
    echo "set size. Fixtures (ffmpeg lavfi): a 60 s 1280x720 30 fps h264 (veryfast) + 128k aac clip"
    echo "($(stat -c %s "$clip") bytes), a 120 s 48 kHz stereo wav (sine + pink noise) and a 1280x720 png."
    echo
    echo "**Aim (issue 7): no robot slower than $aim× the CLI, and the multi-output audio-preview"
    echo "faster than the CLI run once per output (under 1.0×).** Rows above their aim are marked."
    echo
    echo "| robot | CLI median s | robot median s | ratio | CLI peak RSS MB | robot peak RSS MB |"
    echo "|---|---:|---:|---:|---:|---:|"
    for n in "${names[@]}"; do
        read -ra c <<<"${cli_ms[$n]}"
        read -ra b <<<"${rob_ms[$n]}"
        read -ra ck <<<"${cli_kb[$n]}"
        read -ra bk <<<"${rob_kb[$n]}"
        cm=$(median "${c[@]}") bm=$(median "${b[@]}")
        ratio=$(awk -v a="$bm" -v b="$cm" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
        mark= rowaim=$aim
        [[ $n == preview ]] && rowaim=1.0
        if awk -v r="$ratio" -v m="$rowaim" 'BEGIN { exit !(r > m) }'; then
            mark=" **above $rowaim×**"
            over=$((over + 1))
        fi
        printf '| %s | %s | %s | %s%s | %s | %s |\n' "${label[$n]}" \
            "$(awk -v v="$cm" 'BEGIN { printf "%.3f", v / 1000 }')" \
            "$(awk -v v="$bm" 'BEGIN { printf "%.3f", v / 1000 }')" \
            "$ratio" "$mark" "$(mb "$(median "${ck[@]}")")" "$(mb "$(median "${bk[@]}")")"
    done
    echo
    if ((over == 0)); then
        echo "Every robot is within the aim."
    else
        echo "$over robot(s) above the aim."
    fi
    echo
    echo "Ranges of the wall times (s) and output sizes (bytes, last round):"
    echo
    echo "| robot | CLI range s | robot range s | CLI output | robot output |"
    echo "|---|---:|---:|---:|---:|"
    for n in "${names[@]}"; do
        read -ra c <<<"${cli_ms[$n]}"
        read -ra b <<<"${rob_ms[$n]}"
        printf '| %s | %s | %s | %s | %s |\n' "${label[$n]}" "$(range_s "${c[@]}")" "$(range_s "${b[@]}")" \
            "${cli_out[$n]:-—}" "${rob_out[$n]:-—}"
    done
    echo
    echo "Notes. The ratio is robot median ÷ CLI median. Wall times are rounded to the ms."
    echo "Thumbs: the CLI row is three processes (-ss 10, 30, 50 s, the offsets the robot picks for"
    echo "count 3), wall times summed and RSS the largest; the robot decodes once with its own seeks and"
    echo "writes quality-85 jpegs, the CLI uses mjpeg's default quality. The waveform robot writes the"
    echo "PNG and the audiowaveform JSON; the CLI draws the PNG only (showwavespic). The video robot and"
    echo "x264 use every core on both sides. audio-preview: the CLI row is four processes (ffprobe, the"
    echo "mp3 preview, showwavespic, ebur128), wall times summed and RSS the largest, against one process"
    echo "that probes and then decodes the wav once for all three outputs (the step runner's shared"
    echo "decode); its aim is a ratio under 1.0. Commands:"
    echo
    echo '```'
    echo "ffmpeg -ss 0 -t 30 -i clip.mp4 -vn -c:a libmp3lame -b:a 128k -ar 44100 -ac 2 cli.mp3"
    echo "bg_bench_robot audio-encode clip.mp4 rob.mp3 mp3 128000 30 44100 2"
    echo "ffmpeg -i a.wav -vn -c:a aac -b:a 128k -movflags +faststart cli.m4a"
    echo "bg_bench_robot audio-encode a.wav rob.m4a aac 128000"
    echo "ffmpeg -i a.wav -vn -c:a libopus -b:a 96k cli.opus"
    echo "bg_bench_robot audio-encode a.wav rob.opus opus 96000"
    echo "ffmpeg -i a.wav -af ebur128=peak=true -f null -"
    echo "bg_bench_robot loudness a.wav"
    echo "ffprobe -v error -show_format -show_streams clip.mp4"
    echo "bg_bench_robot probe clip.mp4"
    echo "ffmpeg -ss T -i clip.mp4 -frames:v 1 -vf scale=320:-2 cli-T.jpg   # T = 10, 30, 50"
    echo "bg_bench_robot thumbs clip.mp4 thumbs/ 3 320 jpeg"
    echo "ffmpeg -i i.png -vf scale=300:300:force_original_aspect_ratio=increase,crop=300:300 -c:v libwebp -quality 80 cli.webp"
    echo "bg_bench_robot resize i.png rob.webp 300 300 cover webp"
    echo "ffmpeg -i a.wav -filter_complex showwavespic=s=1800x280 -frames:v 1 cli-wave.png"
    echo "bg_bench_robot waveform a.wav rob-wave.png rob-wave.json 1800 280"
    echo "ffprobe + ffmpeg -ss 0 -t 30 -i a.wav … cli-p.mp3 + ffmpeg -i a.wav -filter_complex showwavespic=s=1800x280 … + ffmpeg -i a.wav -af ebur128=peak=true -f null -"
    echo "bg_bench_robot audio-preview a.wav rob-p.mp3 rob-p.png rob-p.json"
    echo "ffmpeg -i clip.mp4 -vf scale=640:-2 -c:v libx264 -preset veryfast -crf 23 -pix_fmt yuv420p -c:a aac -b:a 128k -movflags +faststart cli-video.mp4"
    echo "bg_bench_robot video-encode clip.mp4 rob-video.mp4 640 23 veryfast"
    echo '```'
    echo
    echo "(every ffmpeg above also ran with \`-nostdin -hide_banner -loglevel error -y\`.)"
} >"$section"

cat "$section"
bench_write_section robots "$section" "$doc" "$machine" "$tmp" || die "results not written"
