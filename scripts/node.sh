#!/usr/bin/env bash
# The project's pinned Node.js runtime (scripts/runtime.env).
#   scripts/node.sh bin          prints the node binary to use: this machine's when it is >= the
#                                pinned major, else the project-local copy (fetched when missing)
#   scripts/node.sh fetch ARCH   makes sure .runtime/node-<version>-linux-ARCH/bin/node exists
#                                (ARCH x64 or arm64) and prints its path
# A fetch uses `npm pack node-linux-ARCH@<version>` (the npm registry; any npm that runs), checks
# the tarball's sha512 against the pin, and keeps the tarball in ~/.cache/muster/ for next time.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=runtime.env
. "$root/scripts/runtime.env"
major="${NODE_VERSION%%.*}"

fetch() {
  local arch=$1
  local dir="$root/.runtime/node-$NODE_VERSION-linux-$arch"
  if [ -x "$dir/bin/node" ]; then echo "$dir/bin/node"; return; fi
  local want_var="NODE_INTEGRITY_$arch"
  local cache="${XDG_CACHE_HOME:-$HOME/.cache}/muster"
  local want="${!want_var:-}"
  local tgz="$cache/node-linux-$arch-$NODE_VERSION.tgz"
  [ -n "$want" ] || { echo "node.sh: no pinned runtime for architecture $arch" >&2; exit 2; }
  mkdir -p "$cache"
  if [ ! -s "$tgz" ] || [ "sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)" != "$want" ]; then
    echo "node.sh: fetching node-linux-$arch@$NODE_VERSION from the npm registry" >&2
    if ! command -v npm >/dev/null 2>&1; then
      # A machine with no Node.js at all: Debian's npm (and its nodejs) is enough to fetch the pin.
      if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "node.sh: no npm here; installing Debian's npm to fetch the pinned runtime" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >&2
      else
        echo "node.sh: npm is needed once to fetch the pinned runtime (apt-get install npm)" >&2
        exit 1
      fi
    fi
    local tmp; tmp="$(mktemp -d)"
    (cd "$tmp" && npm pack --silent "node-linux-$arch@$NODE_VERSION" >/dev/null)
    mv "$tmp/node-linux-$arch-$NODE_VERSION.tgz" "$tgz.part"
    rm -rf "$tmp"
    local got; got="sha512-$(openssl dgst -sha512 -binary "$tgz.part" | base64 -w0)"
    if [ "$got" != "$want" ]; then
      rm -f "$tgz.part"
      echo "node.sh: checksum mismatch for node-linux-$arch@$NODE_VERSION: got $got, pinned $want" >&2
      exit 1
    fi
    mv "$tgz.part" "$tgz"
  fi
  rm -rf "$dir.part" && mkdir -p "$dir.part"
  tar -xzf "$tgz" -C "$dir.part" --strip-components=1 package/bin/node package/LICENSE
  chmod 0755 "$dir.part/bin/node"
  mv "$dir.part" "$dir"
  ln -sfn "node-$NODE_VERSION-linux-$arch" "$root/.runtime/node-linux-$arch"
  echo "$dir/bin/node"
}

host_arch() {
  case "$(uname -m)" in
    x86_64) echo x64 ;;
    aarch64 | arm64) echo arm64 ;;
    *) echo "node.sh: unsupported architecture $(uname -m)" >&2; exit 2 ;;
  esac
}

case "${1:-bin}" in
  bin)
    if command -v node >/dev/null 2>&1 && [ "$(node -p 'process.versions.node.split(".")[0]')" -ge "$major" ]; then
      command -v node
    else
      fetch "$(host_arch)"
    fi
    ;;
  fetch) fetch "${2:?usage: node.sh fetch x64|arm64}" ;;
  *) echo "usage: $0 bin | fetch ARCH" >&2; exit 2 ;;
esac
