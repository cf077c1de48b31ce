#!/usr/bin/env bash
# Install Beredt on a Raspberry Pi's architecture without a Pi: an arm64 Debian bookworm root (the base of
# Raspberry Pi OS), run under qemu-user emulation, the installer run in it as an owner would, and a hub
# started from the result. See --help.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: arm64-check.sh [OPTIONS]

Build an arm64 Debian bookworm root with debootstrap, install Beredt into it with
deploy/raspberry-pi/install.sh (as root onto the root's /, like a first install on a Pi), start
'beredt run' from the installed venv with the shipped configuration in a network namespace of its own,
wait for /healthz, and print what it measured. Everything runs under qemu-user emulation, so the times
and memory figures are those of the emulator on this machine, not of a Pi: a Pi 4 or 5 is faster.

Needs root, debootstrap, qemu-user-static and binfmt-support (apt-get install -y debootstrap
qemu-user-static binfmt-support), the iproute2 'ip' tool, and network access to a Debian mirror and to
PyPI (or PIP_INDEX_URL / PIP_FIND_LINKS for a local mirror; they are passed into the root).

Options:
  --base-cache FILE  keep the debootstrapped root as this tarball and reuse it next time (the slow part)
  --work DIR         build in DIR, and keep it (default: a new temporary folder, removed at the end)
  --keep             keep the work folder (to look around in the root afterwards)
  --mirror URL       Debian mirror (default: http://deb.debian.org/debian)
  --source DIR       the Beredt checkout to install (default: the checkout holding this script)
  -h, --help         show this help
EOF
}

say() { printf 'arm64-check: %s\n' "$*"; }
die() { printf 'arm64-check: error: %s\n' "$*" >&2; exit 1; }

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source_dir=$(cd "$script_dir/../.." && pwd)
base_cache=""
work=""
keep=0
mirror=http://deb.debian.org/debian

while (($#)); do
    case "$1" in
        --base-cache) [[ $# -ge 2 ]] || die "--base-cache needs a file"; base_cache=$2; shift 2 ;;
        --work) [[ $# -ge 2 ]] || die "--work needs a directory"; work=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        --mirror) [[ $# -ge 2 ]] || die "--mirror needs a URL"; mirror=$2; shift 2 ;;
        --source) [[ $# -ge 2 ]] || die "--source needs a directory"; source_dir=$2; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown option: $1" ;;
    esac
done

(($(id -u) == 0)) || die "needs root (debootstrap, chroot, mounts, network namespaces)"
for tool in debootstrap qemu-aarch64-static ip; do
    command -v "$tool" >/dev/null || die "$tool not found: apt-get install -y debootstrap qemu-user-static iproute2"
done
[[ -f $source_dir/pyproject.toml ]] || die "not a Beredt checkout: $source_dir"
if [[ ! -e /proc/sys/fs/binfmt_misc/register ]]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || die "cannot mount binfmt_misc"
fi
if [[ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]]; then
    update-binfmts --enable qemu-aarch64 || die "cannot register qemu-aarch64: apt-get install -y binfmt-support"
fi

if [[ -z $work ]]; then
    work=$(mktemp -d "${TMPDIR:-/tmp}/beredt-arm64.XXXXXX")
else
    keep=1  # a folder the caller named is never deleted
fi
mkdir -p "$work"
root=$work/root
netns=beredt-arm64-$$
hub_pid=""

cleanup() {
    if [[ -n $hub_pid ]]; then
        kill "$hub_pid" 2>/dev/null || true
        wait "$hub_pid" 2>/dev/null || true
    fi
    ip netns del "$netns" 2>/dev/null || true
    for mounted in dev/pts dev sys proc; do
        if mountpoint -q "$root/$mounted" 2>/dev/null; then umount -l "$root/$mounted"; fi
    done
    if ((keep)); then
        say "kept $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

seconds() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", b - a }'; }

# --- the base root: what a fresh Raspberry Pi OS Lite has that matters here ------------------------------
started=$(seconds)
if [[ -n $base_cache && -f $base_cache ]]; then
    mkdir -p "$root"
    tar -C "$root" -xzf "$base_cache"
    say "unpacked the cached base root $base_cache"
else
    debootstrap --arch=arm64 --variant=minbase \
        --include=python3,python3-venv,ca-certificates,adduser,passwd,iproute2 \
        bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
        die "debootstrap failed; see $work/debootstrap.log (run with --keep)"
    if [[ -n $base_cache ]]; then
        tar -C "$root" -czf "$base_cache" .
        say "saved the base root as $base_cache"
    fi
fi
[[ $(chroot "$root" uname -m) == aarch64 ]] || die "the root does not run as aarch64"
base_done=$(seconds)

mount -t proc proc "$root/proc"
mount -t sysfs sys "$root/sys"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
cp /etc/resolv.conf "$root/etc/resolv.conf"

# --- the owner's checkout, as 'git clone' would leave it -------------------------------------------------
mkdir -p "$root/home/pi/beredt"
(cd "$source_dir" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) |
    tar -C "$root/home/pi/beredt" -xf -

# --- install, as root onto the Pi's / --------------------------------------------------------------------
pip_env=(PIP_NO_CACHE_DIR=1 PIP_VERBOSE=1)
if [[ -n ${PIP_INDEX_URL:-} ]]; then pip_env+=("PIP_INDEX_URL=$PIP_INDEX_URL"); fi
if [[ -n ${PIP_CERT:-} ]]; then
    # A network that inspects TLS has its own CA: the root must trust it as this machine does.
    cp "$PIP_CERT" "$root/etc/ssl/certs/beredt-check-ca.pem"
    pip_env+=(PIP_CERT=/etc/ssl/certs/beredt-check-ca.pem)
fi
install_started=$(seconds)
chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 "${pip_env[@]}" \
    bash /home/pi/beredt/deploy/raspberry-pi/install.sh >"$work/install.log" 2>&1 ||
    { tail -30 "$work/install.log" >&2; die "install.sh failed in the arm64 root"; }
install_done=$(seconds)
# Beredt itself is always built (pure Python); anything else built here had no aarch64 wheel.
compiled=$(grep -E 'Created wheel for ' "$work/install.log" | grep -vc 'for beredt:' || true)
non_wheels=$(grep -Eo 'Downloading [^ ]+\.(tar\.gz|zip)' "$work/install.log" || true)

# --- start the hub with the shipped configuration, in a network of its own --------------------------------
ip netns add "$netns"
ip -n "$netns" link set lo up
start_started=$(seconds)
ip netns exec "$netns" chroot "$root" /usr/sbin/runuser -u beredt -- \
    /opt/beredt/venv/bin/beredt run --config /etc/beredt/beredt.toml >"$work/hub.log" 2>&1 &
hub_pid=$!
ready=0
for _ in $(seq 1 600); do
    if ip netns exec "$netns" chroot "$root" /opt/beredt/venv/bin/python -c '
import json, sys, urllib.request
with urllib.request.urlopen("http://127.0.0.1:8470/healthz", timeout=5) as answer:
    sys.exit(0 if json.load(answer).get("ok") else 1)' 2>/dev/null; then
        ready=1
        break
    fi
    kill -0 "$hub_pid" 2>/dev/null || break
    sleep 1
done
start_done=$(seconds)
((ready)) || { tail -40 "$work/hub.log" >&2; die "the hub did not answer /healthz"; }
# The largest process whose command line is the hub's: the emulated Python running it.
hub_rss=$(pgrep -f 'beredt run --config /etc/beredt/beredt.toml' | xargs -r ps -o rss= -p | sort -n | tail -1)

venv_size=$(du -sm "$root/opt/beredt/venv" | cut -f1)
root_size=$(du -sm --exclude=proc --exclude=sys --exclude=dev "$root" | cut -f1)
packages=$(chroot "$root" /opt/beredt/venv/bin/python -m pip list --format=freeze 2>/dev/null | wc -l)

say "passed: Beredt installed and a hub answered /healthz in an arm64 Debian bookworm root"
say "all figures under qemu-user emulation of aarch64 on $(uname -m) ($(nproc) cores), not on a Pi:"
say "  base root (debootstrap or cache):  $(elapsed "$started" "$base_done") s"
say "  install.sh (venv, pip, files):     $(elapsed "$install_started" "$install_done") s"
say "  hub start to /healthz ok:          $(elapsed "$start_started" "$start_done") s"
say "  venv on disk:                      ${venv_size} MB (whole root ${root_size} MB)"
say "  packages in the venv:              $packages"
say "  dependencies built from source:    $compiled (0: every one an aarch64 wheel)"
say "  hub resident memory (emulator):    $((hub_rss / 1024)) MB"
if [[ -n $non_wheels ]]; then
    say "  source downloads: $non_wheels"
fi
