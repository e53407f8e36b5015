#!/usr/bin/env bash
# bench/install-tools.sh — installs the Debian packages of every tool the
# bench scripts use that is missing (apt-get; needs root or sudo), and does
# nothing when all are present. `make bench` runs it first.
#
#   wrk              HTTP/1.1 load (http, peer-auth, licenses, sync, soak)
#   h2load           HTTP/2 load (http)                 nghttp2-client
#   nginx            the HTTP baseline (http)           nginx-light
#   hyperfine        command timing (cli)
#   ffmpeg, ffprobe  media and the CLI baselines (pipeline, robots, soak)
#   curl, openssl    requests, the test certificate
#   /usr/bin/time    peak RSS of processes (robots)     time
#   flock            the lock on docs/ (lib.sh)         util-linux
#   ss               free ports (lib.sh)                iproute2
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_need_tools wrk:wrk h2load:nghttp2-client nginx:nginx-light hyperfine:hyperfine \
    ffmpeg:ffmpeg ffprobe:ffmpeg curl:curl openssl:openssl /usr/bin/time:time \
    flock:util-linux ss:iproute2 ||
    { echo "install-tools: some bench tools are missing and could not be installed" >&2; exit 1; }
echo "install-tools: every bench tool is present" >&2
