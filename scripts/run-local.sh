#!/usr/bin/env bash
# Starts (or stops) a manager and an agent on this machine, multicast over the loopback interface
# so nothing leaves the machine. State, logs and pid files live in .run/. The local CLI is logged
# in as admin with the password the manager wrote at its first start
# (.run/manager/initial-admin-password, mode 0600; docs/operations.md "Users and access").
#   scripts/run-local.sh start | stop | status
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=.run
MANAGER_URL=http://127.0.0.1:3926
mkdir -p "$RUN"

start_one() { # name, args...
  local name=$1; shift
  if [ -f "$RUN/$name.pid" ] && kill -0 "$(cat "$RUN/$name.pid")" 2>/dev/null; then
    echo "$name already running (pid $(cat "$RUN/$name.pid"))"; return
  fi
  nohup ./bin/muster.js "$name" "$@" >>"$RUN/$name.log" 2>&1 &
  echo $! >"$RUN/$name.pid"
  echo "started $name (pid $!, log $RUN/$name.log)"
}

stop_one() {
  local name=$1
  if [ -f "$RUN/$name.pid" ]; then
    kill "$(cat "$RUN/$name.pid")" 2>/dev/null || true
    rm -f "$RUN/$name.pid"
    echo "stopped $name"
  fi
}

# Logs the CLI in as admin unless it already is (the token goes to ~/.config/muster/cli.yaml, 0600).
login_local() {
  if ./bin/muster.js --manager "$MANAGER_URL" whoami >/dev/null 2>&1; then return; fi
  local pw="$RUN/manager/initial-admin-password"
  for _ in $(seq 1 40); do
    [ -s "$pw" ] && ./bin/muster.js --manager "$MANAGER_URL" whoami >/dev/null 2>&1 && return
    if [ -s "$pw" ] && ./bin/muster.js --manager "$MANAGER_URL" login --user admin --password-file "$pw" 2>/dev/null; then
      return
    fi
    sleep 0.5
  done
  echo "could not log in as admin: run ./bin/muster.js --manager $MANAGER_URL login --user admin" >&2
  echo "(the first password is in $pw unless it was changed; see $RUN/manager.log)" >&2
  exit 1
}

case "${1:-start}" in
  start)
    # One shared /deploy token for the local pair, made once, readable by root only.
    [ -s "$RUN/deploy.token" ] || (umask 077; od -An -tx1 -N24 /dev/urandom | tr -d ' \n' >"$RUN/deploy.token")
    start_one manager --set multicast.interface=127.0.0.1 --set "data_dir=$PWD/$RUN/manager" --set deploy.token_file="$PWD/$RUN/deploy.token"
    start_one agent --set multicast.interface=127.0.0.1 --set "data_dir=$PWD/$RUN/agent" --set auth.token_file="$PWD/$RUN/deploy.token"
    login_local
    echo "waiting for the agent to show up in 'muster nodes'..."
    for _ in $(seq 1 60); do
      if ./bin/muster.js --manager "$MANAGER_URL" nodes --json 2>/dev/null | grep -q '"resource_at": "'; then
        ./bin/muster.js --manager "$MANAGER_URL" nodes
        echo; echo "manager: $MANAGER_URL   try: ./bin/muster.js node 1-1-0   stop: make down"
        echo "dashboard: $MANAGER_URL/  (log in as admin with the password in $RUN/manager/initial-admin-password)"
        echo "logged in as admin; the admin password is in $RUN/manager/initial-admin-password"
        echo "(log in elsewhere: muster login --user admin; change it: muster users passwd admin)"
        exit 0
      fi
      sleep 0.5
    done
    echo "the agent did not report within 30 s; see $RUN/manager.log and $RUN/agent.log" >&2
    exit 1
    ;;
  stop) stop_one agent; stop_one manager ;;
  status) ./bin/muster.js --manager "$MANAGER_URL" nodes ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
