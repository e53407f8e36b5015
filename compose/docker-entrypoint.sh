#!/bin/sh
# compose/docker-entrypoint.sh — first start: `branchgate init` of the data
# dir from the environment; every start: `branchgate serve` on all
# interfaces. Any other command runs as given (e.g. `branchgate branch list`).
#
#   BG_DATA        data dir (default /data)
#   BG_NAME        branch name (default main)
#   BG_TYPE        top_branch | master_branch (default top_branch)
#   BG_PUBLIC_URL  the URL other branches use for this one (e.g. http://top:8000)
#   BG_PORT        port to listen on (default 8000)
#   BG_PARENT_URL, BG_PARENT_KEY
#                  a master's parent and the key they share: `init --parent`
#                  registers the parent here (the parent's side is registered
#                  by compose/setup-cross-branch-testing.sh or `branch register`)
# Every BRANCHGATE_* variable is configuration (docs/operations.md).
set -eu

data="${BG_DATA:-/data}"
port="${BG_PORT:-8000}"

if [ "${1:-serve}" != "serve" ]; then
  exec branchgate "$@"
fi

if [ ! -f "${data}/branchgate.json" ]; then
  set -- --data "${data}" --name "${BG_NAME:-main}" --type "${BG_TYPE:-top_branch}"
  if [ -n "${BG_PUBLIC_URL:-}" ]; then
    set -- "$@" --url "${BG_PUBLIC_URL}"
  fi
  if [ -n "${BG_PARENT_URL:-}" ]; then
    # The key goes through the environment, never the command line; wait
    # for the parent, which init asks for its name.
    i=0
    until curl -fsS "${BG_PARENT_URL}/healthz" >/dev/null 2>&1; do
      i=$((i + 1))
      if [ "$i" -ge 60 ]; then
        echo "docker-entrypoint: the parent at ${BG_PARENT_URL} does not answer" >&2
        exit 1
      fi
      sleep 1
    done
    BRANCHGATE_PARENT_KEY="${BG_PARENT_KEY:?BG_PARENT_KEY is required with BG_PARENT_URL}"
    export BRANCHGATE_PARENT_KEY
    set -- "$@" --parent "${BG_PARENT_URL}"
  fi
  # init prints the admin token once; it is also in ${data}/admin.token.
  branchgate init "$@" | grep -v '^bga_' || true
  [ -f "${data}/branchgate.json" ] || { echo "docker-entrypoint: init failed" >&2; exit 1; }
  unset BRANCHGATE_PARENT_KEY
fi

exec branchgate serve --data "${data}" --listen "0.0.0.0:${port}"
