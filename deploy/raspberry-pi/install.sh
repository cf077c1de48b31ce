#!/usr/bin/env bash
# Install or upgrade Beredt on a Raspberry Pi (Raspberry Pi OS / Debian). See --help.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: install.sh [OPTIONS]

Install Beredt as a systemd service, or upgrade an existing installation. Run it again with a newer
checkout to upgrade: the configuration, the data directory and the node's identity are kept.

What goes where (under --root, default /):
  /opt/beredt/venv                       the application, in its own Python virtual environment
  /etc/beredt/beredt.toml                configuration: installed once from the example, never overwritten
  /var/lib/beredt                        data: identity.key, roster.toml, store.db (kept on upgrade)
  /etc/systemd/system/beredt.service     the service (Type=notify, watchdog, hardening): replaced on upgrade
  /etc/udev/rules.d/99-beredt-radios.rules   /dev/beredt-lora, /dev/beredt-sine, /dev/beredt-iridium
  /etc/systemd/journald.conf.d/beredt.conf   journald size limits, so logs cannot fill the SD card

Steps: create the system user 'beredt' (groups dialout, and gpio and i2c where they exist), create the
venv and pip-install Beredt into it with the 'pi' extra (gpiozero, smbus2), lay out the files above,
create the node identity with 'beredt init' if there is none, and when installing onto a running system
as root: reload systemd and udev, enable the service, and restart it if it was running (an upgrade).

Options:
  --root DIR       install under DIR instead of / (DESTDIR-style; for images and tests). No user is
                   created, nothing is enabled; files are laid out and the identity is created.
  --source DIR     the Beredt checkout to install (default: the checkout holding this script)
  --wheel FILE     install this built wheel instead of the checkout
  --no-venv        do not create a venv or pip-install: use an existing 'beredt' (BEREDT_BIN) for
                   'beredt init'; for tests and images that provide the application themselves
  -h, --help       show this help

Environment:
  BEREDT_PYTHON    Python used to create the venv (default: python3; needs 3.11 or newer)
  BEREDT_PIP       pip command to install with (default: <root>/opt/beredt/venv/bin/pip); pip's own
                   PIP_* variables apply too, e.g. PIP_NO_INDEX=1 PIP_FIND_LINKS=/media/usb/wheels
                   for an offline install from a USB stick
  BEREDT_BIN       beredt executable used for 'beredt init' (default: <root>/opt/beredt/venv/bin/beredt,
                   or 'beredt' on PATH with --no-venv)

Examples:
  sudo ./deploy/raspberry-pi/install.sh                       first install, or upgrade after git pull
  sudo ./deploy/raspberry-pi/install.sh --wheel beredt-0.2.0-py3-none-any.whl
  ./deploy/raspberry-pi/install.sh --root /tmp/img --no-venv  lay out files only, as a normal user
EOF
}

say() { printf 'beredt-install: %s\n' "$*"; }
die() { printf 'beredt-install: error: %s\n' "$*" >&2; exit 1; }

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=/
source_dir=$(cd "$script_dir/../.." && pwd)
wheel=""
use_venv=1

while (($#)); do
    case "$1" in
        --root) [[ $# -ge 2 ]] || die "--root needs a directory"; root=$2; shift 2 ;;
        --source) [[ $# -ge 2 ]] || die "--source needs a directory"; source_dir=$2; shift 2 ;;
        --wheel) [[ $# -ge 2 ]] || die "--wheel needs a file"; wheel=$2; shift 2 ;;
        --no-venv) use_venv=0; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown option: $1" ;;
    esac
done

mkdir -p "$root"
root=$(cd "$root" && pwd)
prefix=${root%/}
opt_dir=$prefix/opt/beredt
venv=$opt_dir/venv
etc_dir=$prefix/etc/beredt
config=$etc_dir/beredt.toml
data_dir=$prefix/var/lib/beredt
unit_dir=$prefix/etc/systemd/system
udev_dir=$prefix/etc/udev/rules.d
journald_dir=$prefix/etc/systemd/journald.conf.d

# A real install onto this machine's / by root manages users and services; anything else only lays out files.
system_install=0
if [[ $root == / && $(id -u) -eq 0 ]]; then
    system_install=1
fi

[[ -f $script_dir/beredt.service ]] || die "deploy files not found next to this script in $script_dir"
if [[ -n $wheel ]]; then
    [[ -f $wheel ]] || die "wheel not found: $wheel"
    package=$(cd "$(dirname "$wheel")" && pwd)/$(basename "$wheel")
else
    [[ -f $source_dir/pyproject.toml ]] || die "not a Beredt checkout (no pyproject.toml): $source_dir"
    package=$(cd "$source_dir" && pwd)
fi

# Copy a file only when its content differs, so a second run changes nothing (not even timestamps).
# Sets `changed` to 1 when it copied.
changed=0
install_file() {
    local mode=$1 src=$2 dest=$3
    changed=0
    if [[ -f $dest ]] && cmp -s "$src" "$dest"; then
        return 0
    fi
    install -D -m "$mode" "$src" "$dest"
    changed=1
    say "installed $dest"
}

# --- user ------------------------------------------------------------------------------------------------
if ((system_install)); then
    if ! getent passwd beredt >/dev/null; then
        useradd --system --user-group --home-dir /var/lib/beredt --no-create-home \
            --shell /usr/sbin/nologin --comment "Beredt hub" beredt
        say "created system user beredt"
    fi
    # dialout: the radios; gpio and i2c (Raspberry Pi OS): the power inputs, buttons, LEDs and UPS HAT.
    for group in dialout gpio i2c; do
        if getent group "$group" >/dev/null && ! id -nG beredt | tr ' ' '\n' | grep -qx "$group"; then
            usermod -a -G "$group" beredt
            say "added beredt to group $group"
        fi
    done
else
    say "not installing onto / as root: skipping the beredt user, ownership and systemctl"
fi

# --- application -----------------------------------------------------------------------------------------
if ((use_venv)); then
    if [[ ! -x $venv/bin/python ]]; then
        python=${BEREDT_PYTHON:-python3}
        "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null ||
            die "Beredt needs Python 3.11 or newer; '$python' is not (Raspberry Pi OS Bookworm has 3.11)"
        "$python" -m venv "$venv" || die "cannot create a venv: apt-get install -y python3-venv"
        say "created venv $venv"
    fi
    read -r -a pip <<<"${BEREDT_PIP:-$venv/bin/pip}"
    # With the 'pi' extra (gpiozero and smbus2 for [power]). pip rebuilds and reinstalls a package given
    # as a path even when the version number is unchanged, so a newer checkout always replaces the old
    # code (tests/deploy/test_install.py checks this), while dependencies are only upgraded when needed.
    "${pip[@]}" install --quiet --disable-pip-version-check "${package}[pi]"
    say "installed Beredt from $package into $venv"
    beredt_bin=${BEREDT_BIN:-$venv/bin/beredt}
else
    beredt_bin=${BEREDT_BIN:-$(command -v beredt || true)}
    [[ -n $beredt_bin ]] || die "--no-venv needs BEREDT_BIN or 'beredt' on PATH"
fi
[[ -x $beredt_bin ]] || die "beredt executable not found: $beredt_bin"
install_file 0644 "$script_dir/README.md" "$opt_dir/README.md"

# --- configuration and data (kept on upgrade) ------------------------------------------------------------
install -d -m 0750 "$etc_dir"
if [[ ! -e $config ]]; then
    install -m 0640 "$script_dir/beredt.toml" "$config"
    say "installed example configuration $config: edit it (peers, links, routes) before starting"
else
    say "keeping configuration $config"
fi
install -d -m 0750 "$data_dir"

# --- identity (created once) -----------------------------------------------------------------------------
if [[ -e $data_dir/identity.key ]]; then
    say "keeping identity in $data_dir"
else
    init_config=$config
    if [[ $root != / ]]; then
        # The configuration names the target's /var/lib/beredt; create the identity in the staging root.
        init_config=$(mktemp "${TMPDIR:-/tmp}/beredt-init.XXXXXX")
        trap 'rm -f "$init_config"' EXIT
        grep -Eq '^[[:space:]]*data_dir[[:space:]]*=' "$config" || die "$config has no [node] data_dir"
        # Quote the path for a TOML string, then for the sed replacement (any of \ | & would be special).
        toml_path=${data_dir//\\/\\\\}
        toml_path=${toml_path//\"/\\\"}
        sed_path=$(printf '%s' "$toml_path" | sed 's/[\\|&]/\\&/g')
        sed -E "s|^([[:space:]]*data_dir[[:space:]]*=).*|\\1 \"$sed_path\"|" "$config" >"$init_config"
    fi
    "$beredt_bin" init --config "$init_config"
    say "created the node identity in $data_dir"
fi

# --- system integration ----------------------------------------------------------------------------------
install_file 0644 "$script_dir/beredt.service" "$unit_dir/beredt.service"
install_file 0644 "$script_dir/99-beredt-radios.rules" "$udev_dir/99-beredt-radios.rules"
udev_changed=$changed
install_file 0644 "$script_dir/journald-beredt.conf" "$journald_dir/beredt.conf"
journald_changed=$changed

if ((system_install)); then
    chown root:beredt "$etc_dir" "$config"
    chown -R beredt:beredt "$data_dir"
    if [[ -d /run/systemd/system ]]; then
        systemctl daemon-reload
        systemctl enable beredt.service
        # An upgrade restarts a running hub on the new code; a first install leaves starting to the admin.
        systemctl try-restart beredt.service
        if ((journald_changed)); then
            systemctl restart systemd-journald.service
        fi
        if ((udev_changed)) && command -v udevadm >/dev/null; then
            udevadm control --reload-rules
            udevadm trigger --subsystem-match=tty
        fi
        say "enabled beredt.service; start it with: sudo systemctl start beredt"
    else
        say "systemd is not running here: enable beredt.service when this system boots"
    fi
fi
say "done"
