#!/usr/bin/env bash
# Installs the Debian 12 packages branchgate builds and tests with, only
# those that are missing. Idempotent and non-interactive; needs root (or
# sudo) only when something is missing. With arguments, installs those
# packages instead (scripts/install-fuzz-deps.sh uses that).
set -euo pipefail

if [ $# -gt 0 ]; then
  packages=("$@")
else
packages=(
  build-essential cmake pkg-config ca-certificates curl openssl
  libh2o-evloop-dev libssl-dev libcurl4-openssl-dev libjansson-dev libsqlite3-dev libsodium-dev
  libavformat-dev libavcodec-dev libavfilter-dev libswresample-dev libswscale-dev libavutil-dev
  libcmocka-dev ffmpeg
  chromium nodejs docker-compose
)
# npm from Debian, unless the installed Node.js already brings its own (NodeSource's nodejs
# package includes npm and conflicts with Debian's npm package).
command -v npm >/dev/null || packages+=(npm)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "$(basename "$0" .sh): installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root or install sudo" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
