#!/usr/bin/env bash
# Installs the Debian packages muster's tests need (only those missing) and starts the daemons
# they talk to (dockerd). Needs root or sudo. Idempotent: a second run changes nothing.
set -euo pipefail
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

pkgs=(iproute2 nftables python3 curl procps util-linux docker.io docker-registry busybox-static influxdb)
# tests/e2e/bundle.test.ts: the arm64 bundle's node under emulation (qemu-aarch64-static -L
# /usr/aarch64-linux-gnu, no binfmt_misc needed) with the arm64 libraries node links to, and
# systemd-analyze to verify the installed units (systemd need not run).
pkgs+=(qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross systemd)
# tests/e2e/dashboard.test.ts and bench/dashboard.ts: the dashboard in Debian's Chromium, driven by
# playwright-core (no browser download).
pkgs+=(chromium)
# tests/e2e/screen.test.ts: a virtual X display (Xvfb) drawn with xsetroot (x11-xserver-utils)
# and read with xwd (x11-apps), as the agent does on a board; netpbm to compare conversions.
pkgs+=(xvfb x11-apps x11-xserver-utils netpbm)
# tests/e2e/relay.test.ts: a real sshd (run by the test on its own config, not as a service) behind
# the SSH relay.
pkgs+=(openssh-server)
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
    # Without the descriptors this script inherited: run under `flock /tmp/muster-e2e.lock`, a
    # dockerd holding the lock file open would keep the global e2e lock taken for as long as it runs.
    # shellcheck disable=SC2016 # expanded by the inner bash
    $SUDO bash -c 'for f in /proc/self/fd/*; do f=${f##*/}; [ "$f" -gt 2 ] && eval "exec $f>&-"; done 2>/dev/null
      nohup dockerd </dev/null >/var/log/muster-test-dockerd.log 2>&1 &'
  fi
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "setup: dockerd did not start; see /var/log/muster-test-dockerd.log" >&2; exit 1; }
fi
