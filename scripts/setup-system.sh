#!/usr/bin/env bash
# Installs the Debian packages muster's tests need (only those missing) and starts the daemons
# they talk to (dockerd). Needs root or sudo. Idempotent: a second run changes nothing.
set -euo pipefail
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

pkgs=(iproute2 nftables python3 curl procps util-linux docker.io docker-registry busybox-static influxdb)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

node -e 'const a=Number(process.versions.node.split(".")[0]); if (a<24) { console.error("muster needs Node.js >= 24 (run through make, which puts the pinned runtime first on PATH), found "+process.versions.node); process.exit(1) }'

# dockerd: the deploy tests drive a real engine.
if ! docker info >/dev/null 2>&1; then
  echo "setup: starting dockerd"
  if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
    $SUDO systemctl start docker
  else
    $SUDO sh -c 'nohup dockerd >/var/log/muster-test-dockerd.log 2>&1 &'
  fi
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "setup: dockerd did not start; see /var/log/muster-test-dockerd.log" >&2; exit 1; }
fi
