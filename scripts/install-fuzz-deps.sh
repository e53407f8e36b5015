#!/usr/bin/env bash
# Installs what `make fuzz` needs beyond scripts/install-deps.sh: clang, its
# runtime libraries, which hold libFuzzer and the sanitizers
# (libclang_rt.fuzzer), and llvm for llvm-symbolizer (file:line in the
# sanitizer reports). Debian 12 packages, only those that are missing.
# Idempotent and non-interactive; needs root (or sudo) only when something
# is missing.
set -euo pipefail

exec "$(dirname "$0")/install-deps.sh" clang libclang-rt-dev llvm
