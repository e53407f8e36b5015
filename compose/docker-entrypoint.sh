#!/bin/sh
# compose/docker-entrypoint.sh — first start: `branchgate init` of the data
# dir from the environment; every start: `branchgate serve` on all
# interfaces (arguments after `serve`, e.g. `--config FILE`, are passed on).
# Any other command is a branchgate command (`docker run IMAGE status`);
# `branchgate …`, `sh`, `bash` and absolute paths run as given.
#
#   BG_DATA        data dir (default /data)
#   BG_NAME        branch name (default main)
#   BG_TYPE        top_branch | master_branch (default top_branch)
#   BG_PUBLIC_URL  the URL other branches use for this one (e.g. http://top:8000)
#   BG_PORT        port to listen on (default 8000)
#   BG_LISTEN_HOST address to listen on (default 0.0.0.0: every interface of
#                  the container; 127.0.0.1 to run this script on a host)
#   BG_PARENT_URL, BG_PARENT_KEY
#                  a master's parent and the key they share: `init --parent`
#                  registers the parent here (the parent's side is registered
#                  by compose/setup-cross-branch-testing.sh or `branch register`)
# Every BRANCHGATE_* variable is configuration (docs/operations.md).
set -eu

data="${BG_DATA:-/data}"
port="${BG_PORT:-8000}"
host="${BG_LISTEN_HOST:-0.0.0.0}"

die() {
  echo "docker-entrypoint: $*" >&2
  exit 1
}

# The parent's key, checked as the server checks it (16-256 printable ASCII
# characters, no space) before anything is written: init registers the
# parent only after it has created the data dir, and an initialised data dir
# is not initialised again on the next start.
check_parent_key() {
  [ -n "${BG_PARENT_KEY:-}" ] || die "BG_PARENT_KEY is required with BG_PARENT_URL"
  case "${BG_PARENT_KEY}" in
    *[!\!-~]*) die "BG_PARENT_KEY must be printable ASCII without spaces" ;;
  esac
  if [ "${#BG_PARENT_KEY}" -lt 16 ] || [ "${#BG_PARENT_KEY}" -gt 256 ]; then
    die "BG_PARENT_KEY must be 16 to 256 characters long"
  fi
}

# Waits for the parent, which init asks for its name and type.
wait_for_parent() {
  i=0
  until curl -fsS --max-time 2 "${BG_PARENT_URL}/healthz" >/dev/null 2>&1; do
    i=$((i + 1))
    [ "$i" -lt 60 ] || die "the parent at ${BG_PARENT_URL} does not answer"
    sleep 1
  done
}

# `branchgate init` from the environment. A function, so that its "$@" holds
# init's arguments while the script's keeps serve's.
init_data_dir() {
  set -- --data "${data}" --name "${BG_NAME:-main}" --type "${BG_TYPE:-top_branch}"
  if [ -n "${BG_PUBLIC_URL:-}" ]; then
    set -- "$@" --url "${BG_PUBLIC_URL}"
  fi
  if [ -n "${BG_PARENT_URL:-}" ]; then
    check_parent_key
    wait_for_parent
    # The key reaches init through the environment, never the command line.
    BRANCHGATE_PARENT_KEY="${BG_PARENT_KEY}"
    export BRANCHGATE_PARENT_KEY
    set -- "$@" --parent "${BG_PARENT_URL}"
  fi
  # init prints the admin token once: keep it out of the container log (it
  # is in ${data}/admin.token, mode 0600).
  rc=0
  out="$(branchgate init "$@")" || rc=$?
  unset BRANCHGATE_PARENT_KEY
  printf '%s\n' "${out}" | grep -v '^bga_' |
    sed 's/^admin token (shown once; also in \(.*\), mode 0600):$/admin token in \1 (mode 0600)/'
  out=""
  if [ "${rc}" -ne 0 ]; then
    if [ -f "${data}/branchgate.json" ]; then
      die "init exited ${rc} after creating ${data}; register the parent with" \
        "'branchgate branch register', or remove the volume and start again"
    fi
    die "init exited ${rc}"
  fi
}

case "${1:-serve}" in
  serve) [ $# -eq 0 ] || shift ;;
  branchgate | sh | bash | /*) exec "$@" ;;
  *) exec branchgate "$@" ;;
esac

if [ ! -f "${data}/branchgate.json" ]; then
  init_data_dir
fi

exec branchgate serve --data "${data}" --listen "${host}:${port}" "$@"
