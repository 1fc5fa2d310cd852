#!/bin/sh
# Installs this muster bundle, offline (nothing is fetched, nothing is compiled). As root:
#   ./install.sh [--agent] [--manager] [--prefix DIR] [--root DIR]
#   ./install.sh --uninstall [--prefix DIR] [--root DIR]
# See usage() below and docs/operations.md#runtime-and-bundles.
set -eu

usage() {
  cat <<'EOF'
usage: install.sh [options]
  installs muster into PREFIX (default /opt/muster): the runtime, the application, the `muster`
  command (/usr/local/bin/muster), the systemd units (/etc/systemd/system/muster-*.service), and
  /etc/muster/agent.yaml and manager.yaml when they do not exist (existing ones are kept).
options:
  --agent         enable the agent (systemctl enable --now muster-agent)
  --manager       enable the manager (systemctl enable --now muster-manager)
  --prefix DIR    install into DIR instead of /opt/muster
  --root DIR      install into the tree under DIR (a chroot, an image being built): paths inside it
                  are as on the target, and systemd in DIR is only configured, never started
  --uninstall     disable and stop the units, remove the units, the command and PREFIX; keeps the
                  configuration (/etc/muster) and the data (/var/lib/muster). Workloads keep running.
  --force         install a bundle for another architecture than this machine's
  -h, --help      this text
EOF
}

say() { printf 'install.sh: %s\n' "$*"; }
die() {
  printf 'install.sh: %s\n' "$*" >&2
  exit 1
}

here=$(cd "$(dirname "$0")" && pwd)
prefix=/opt/muster
root=
units=
uninstall=0
force=0
while [ $# -gt 0 ]; do
  case $1 in
    --agent) units="$units muster-agent" ;;
    --manager) units="$units muster-manager" ;;
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix=$2; shift ;;
    --prefix=*) prefix=${1#--prefix=} ;;
    --root) [ $# -ge 2 ] || die "--root needs a directory"; root=$2; shift ;;
    --root=*) root=${1#--root=} ;;
    --uninstall) uninstall=1 ;;
    --force) force=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
  shift
done

case $prefix in
  /*) ;;
  *) die "--prefix $prefix: must be an absolute path" ;;
esac
prefix=$(printf '%s' "$prefix" | sed 's|/*$||')
case $prefix in
  '' | /bin | /boot | /dev | /etc | /home | /lib* | /opt | /proc | /root | /run | /sbin | /srv | /sys | /tmp | /usr | /usr/* | /var | /var/lib)
    die "--prefix $prefix: refusing a system directory (PREFIX is replaced as a whole on upgrade)" ;;
esac
if [ -n "$root" ]; then
  mkdir -p "$root"
  root=$(cd "$root" && pwd)
  [ "$root" != / ] || root=
fi
[ -n "$root" ] || [ "$(id -u)" -eq 0 ] || die "run as root (or give --root DIR to install into a staging tree)"

dest=$root$prefix
units_dir=$root/etc/systemd/system
# systemd is only driven on the machine it runs on; under --root its state is written as files.
live_systemd=0
if [ -z "$root" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then live_systemd=1; fi

# Enables (or disables) unit $2 under $root without a running systemd: the symlink systemctl makes.
wants() {
  link=$units_dir/multi-user.target.wants/$2.service
  if [ "$1" = enable ]; then
    mkdir -p "$units_dir/multi-user.target.wants"
    ln -sfn "/etc/systemd/system/$2.service" "$link"
  else
    rm -f "$link"
  fi
}

if [ "$uninstall" -eq 1 ]; then
  for u in muster-agent muster-manager muster-relay; do
    # A unit of another PREFIX's install is not ours to remove.
    if [ -f "$units_dir/$u.service" ] && ! grep -q "^ExecStart=$prefix/bin/muster " "$units_dir/$u.service"; then
      say "kept $units_dir/$u.service: it runs $(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$units_dir/$u.service")"
      continue
    fi
    if [ "$live_systemd" -eq 1 ]; then
      systemctl disable --now "$u.service" >/dev/null 2>&1 || true
    fi
    wants disable "$u"
    rm -f "$units_dir/$u.service"
  done
  [ "$live_systemd" -eq 0 ] || systemctl daemon-reload || true
  link=$root/usr/local/bin/muster
  if [ -L "$link" ] && [ "$(readlink "$link")" = "$prefix/bin/muster" ]; then rm -f "$link"; fi
  if [ -e "$dest" ]; then
    [ -f "$dest/BUILD-INFO" ] || die "$dest does not look like a muster bundle (no BUILD-INFO): not removing it"
    rm -rf "$dest"
  fi
  say "removed $dest, the muster command and the units; kept $root/etc/muster (configuration) and $root/var/lib/muster (data)"
  say "workloads the agent started keep running (docker ps; the bar processes)"
  exit 0
fi

[ -f "$here/BUILD-INFO" ] && [ -x "$here/node/bin/node" ] && [ -f "$here/lib/muster.js" ] ||
  die "$here is not a muster bundle (BUILD-INFO, node/bin/node, lib/muster.js)"
arch=$(sed -n 's/.*"arch": *"\([^"]*\)".*/\1/p' "$here/BUILD-INFO")
version=$(cat "$here/VERSION")
case $(uname -m) in
  x86_64) machine=x64 ;;
  aarch64 | arm64) machine=arm64 ;;
  *) machine=$(uname -m) ;;
esac
if [ "$arch" != "$machine" ] && [ "$force" -eq 0 ]; then
  if [ -n "$root" ]; then
    say "note: this is the $arch bundle, this machine is $machine: $dest will not run here"
  else
    die "this is the $arch bundle and this machine is $machine (use the muster-$version-linux-$machine tarball, or --force)"
  fi
fi

# 1. PREFIX: a fresh copy beside it, then swapped in (running daemons keep their old files).
if [ "$here" -ef "$dest" ] 2>/dev/null; then
  say "running from $dest itself: files left as they are"
else
  if [ -e "$dest" ] && [ ! -f "$dest/BUILD-INFO" ] && [ -n "$(ls -A "$dest")" ]; then
    die "$dest exists and is not a muster bundle (no BUILD-INFO): not replacing it"
  fi
  mkdir -p "$(dirname "$dest")"
  rm -rf "$dest.new" "$dest.old"
  mkdir "$dest.new"
  cp -R "$here/." "$dest.new/"
  [ ! -e "$dest" ] || mv "$dest" "$dest.old"
  mv "$dest.new" "$dest"
  rm -rf "$dest.old"
fi

# 2. The command.
mkdir -p "$root/usr/local/bin"
ln -sfn "$prefix/bin/muster" "$root/usr/local/bin/muster"

# 3. The units, pointing at this PREFIX.
mkdir -p "$units_dir"
for f in "$dest"/systemd/*.service; do
  sed "s|/opt/muster/|$prefix/|g" "$f" >"$units_dir/$(basename "$f")"
  chmod 0644 "$units_dir/$(basename "$f")"
done

# 4. Configuration: created when absent, never overwritten.
mkdir -p "$root/etc/muster"
if [ ! -e "$root/etc/muster/agent.yaml" ]; then
  cat >"$root/etc/muster/agent.yaml" <<EOF
# muster agent on this board: overrides of $prefix/config/agent.yaml (every key, documented).
# Each board needs its own box_id / slot_id / cpu_id: they make its node id (1-1-0).
# The deploy token goes in /etc/muster/agent.token. See $prefix/docs/configuration.md.
identity:
  box_id: 1
  slot_id: 1
  cpu_id: 0
EOF
  say "created /etc/muster/agent.yaml: set this board's identity there"
fi
if [ ! -e "$root/etc/muster/manager.yaml" ]; then
  cat >"$root/etc/muster/manager.yaml" <<EOF
# muster manager: overrides of $prefix/config/manager.yaml (every key, documented).
# The deploy token goes in /etc/muster/manager.token. See $prefix/docs/configuration.md.
multicast:
  interface: "" # the chassis LAN interface (eth0) or its address; "" = the default route's
EOF
  say "created /etc/muster/manager.yaml"
fi

say "installed muster $version ($arch) into $dest; command $root/usr/local/bin/muster"

# 5. systemd.
if [ "$live_systemd" -eq 1 ]; then
  systemctl daemon-reload
  for u in $units; do
    systemctl enable --now "$u.service"
    say "enabled and started $u"
  done
  for u in muster-agent muster-manager muster-relay; do
    case " $units " in *" $u "*) continue ;; esac
    if systemctl is-active --quiet "$u.service"; then say "$u is running the old version: systemctl restart $u"; fi
  done
else
  for u in $units; do
    wants enable "$u"
    if [ -n "$root" ]; then
      say "enabled $u in $root (starts when that system boots)"
    else
      say "systemd is not running on this machine: enabled $u for the next boot; to run it now: muster ${u#muster-} --config /etc/muster/${u#muster-}.yaml"
    fi
  done
fi

# 6. It runs (on this machine only).
if [ -z "$root" ] && [ "$arch" = "$machine" ]; then
  "$dest/bin/muster" version
fi
