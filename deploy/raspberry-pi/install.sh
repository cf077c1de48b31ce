#!/usr/bin/env bash
# Install or upgrade Beredt on a Raspberry Pi (Raspberry Pi OS / Debian). See --help.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: install.sh [OPTIONS]

Install Beredt as a systemd service, or upgrade an existing installation. Run it again with a newer
checkout to upgrade: the configuration, the data directory and the node's identity are kept, and so are
your own edits to the udev rules and the journald limits.

What goes where (under --root, default /):
  /opt/beredt/venv                       the application, in its own Python virtual environment
  /usr/local/bin/beredt                  a link to the venv's beredt, so it is on everyone's PATH
  /etc/beredt/beredt.toml                configuration: installed once from the example, never overwritten
  /var/lib/beredt                        data: identity.key, roster.toml, store.db (kept on upgrade)
  /etc/systemd/system/beredt.service     the service (Type=notify, watchdog, hardening): replaced on upgrade
  /etc/udev/rules.d/99-beredt-radios.rules   /dev/beredt-lora, /dev/beredt-sine, /dev/beredt-iridium
  /etc/systemd/journald.conf.d/beredt.conf   journald size limits, so logs cannot fill the SD card
The last two are yours to edit: an upgrade replaces them only while they are as shipped; an edited one
is kept and the new version is put beside it as <file>.new for you to compare.

Steps: create the system user 'beredt' (groups dialout, and gpio and i2c where they exist), build a
wheel from a clean temporary copy of the checkout (never from what earlier builds left in it), install
it into the venv with the 'pi' extra (gpiozero, smbus2, and lgpio on ARM), replacing the previous
version completely, lay out the files above, create the node identity with 'beredt init' if there is
none, and when installing onto a running system as root: reload systemd and udev, enable the service,
and restart it if it was running (an upgrade).

Options:
  --root DIR       install under DIR instead of / (DESTDIR-style; for images and tests): nothing is
                   enabled or started. The venv is made to run at its final path /opt/beredt/venv
                   once DIR is the image's /. Run as root on an image with a user database
                   (DIR/etc/passwd), the user 'beredt' is created in the image and owns the data;
                   otherwise ownership is left as it is and set by a later install on the target.
  --image          with --root: an image to copy onto many Pis. No identity is created in it: each Pi
                   creates its own at its first start, so no two sites share a key
  --source DIR     the Beredt checkout to install (default: the checkout holding this script)
  --wheel FILE     install this built wheel instead of the checkout
  --no-venv        do not create a venv or pip-install: use an existing 'beredt' (BEREDT_BIN) for
                   'beredt init'; for tests and images that provide the application themselves
  -h, --help       show this help

Environment:
  BEREDT_PYTHON    Python used to create the venv (default: python3; needs 3.11 or newer)
  BEREDT_PIP       pip command (default: <root>/opt/beredt/venv/bin/python -m pip); pip's own
                   PIP_* variables apply too, e.g. PIP_NO_INDEX=1 PIP_FIND_LINKS=/media/usb/wheels
                   for an offline install from a USB stick (wheels for Python 3.11 on aarch64)
  BEREDT_BIN       beredt executable used for 'beredt init' (default: <root>/opt/beredt/venv/bin/beredt,
                   or 'beredt' on PATH with --no-venv)

Examples:
  sudo ./deploy/raspberry-pi/install.sh                       first install, or upgrade after git pull
  sudo ./deploy/raspberry-pi/install.sh --wheel beredt-0.2.0-py3-none-any.whl
  sudo ./deploy/raspberry-pi/install.sh --root /mnt/pi-image   prepare an SD-card image's root
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
image=0

while (($#)); do
    case "$1" in
        --root) [[ $# -ge 2 ]] || die "--root needs a directory"; root=$2; shift 2 ;;
        --source) [[ $# -ge 2 ]] || die "--source needs a directory"; source_dir=$2; shift 2 ;;
        --wheel) [[ $# -ge 2 ]] || die "--wheel needs a file"; wheel=$2; shift 2 ;;
        --no-venv) use_venv=0; shift ;;
        --image) image=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown option: $1" ;;
    esac
done

[[ $image -eq 0 || $root != / ]] || die "--image needs --root: the image's root folder"
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
bin_link=$prefix/usr/local/bin/beredt
shipped_record=$opt_dir/shipped-files.sha256
final_venv=/opt/beredt/venv

# A real install onto this machine's / by root manages users and services; anything else only lays out
# files. Root preparing an image that has a user database manages the user inside the image.
system_install=0
image_users=0
if [[ $(id -u) -eq 0 ]]; then
    if [[ $root == / ]]; then
        system_install=1
    elif [[ -f $root/etc/passwd && -f $root/etc/group ]]; then
        image_users=1
    fi
fi

[[ -f $script_dir/beredt.service ]] || die "deploy files not found next to this script in $script_dir"
if [[ -n $wheel ]]; then
    [[ -f $wheel ]] || die "wheel not found: $wheel"
    package=$(cd "$(dirname "$wheel")" && pwd)/$(basename "$wheel")
else
    [[ -f $source_dir/pyproject.toml ]] || die "not a Beredt checkout (no pyproject.toml): $source_dir"
    package=$(cd "$source_dir" && pwd)
fi

# Files and folders of this run only, removed however it ends.
temporary=()
trap 'rm -rf "${temporary[@]}"' EXIT

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

# The checksum recorded when this installer last put the shipped version of a file in place.
shipped_sum() {
    [[ -f $shipped_record ]] || return 0
    awk -v path="$1" '$2 == path { print $1 }' "$shipped_record"
}

record_shipped() {
    local dest=$1 sum
    sum=$(sha256sum "$dest" | cut -d' ' -f1)
    mkdir -p "$(dirname "$shipped_record")"
    touch "$shipped_record"
    { awk -v path="$dest" '$2 != path' "$shipped_record"; printf '%s %s\n' "$sum" "$dest"; } >"$shipped_record.tmp"
    mv "$shipped_record.tmp" "$shipped_record"
}

# Whether this content is a version Beredt shipped (released.sha256 lists them all), so an install made
# before installs kept a record is still recognised as unedited.
was_released() {
    grep -qx "$1  $(basename "$2")" "$script_dir/released.sha256" 2>/dev/null
}

# A file the owner may edit (like a dpkg conffile): replaced while it is as this installer left it (or
# any released version), kept when the owner changed it, with the new shipped version put beside it as
# <file>.new. Sets `changed`.
install_owned_file() {
    local mode=$1 src=$2 dest=$3 current
    changed=0
    if [[ -f $dest ]]; then
        current=$(sha256sum "$dest" | cut -d' ' -f1)
        if cmp -s "$src" "$dest"; then
            if [[ $current != "$(shipped_sum "$dest")" ]]; then record_shipped "$dest"; fi
            rm -f "$dest.new"
            return 0
        fi
        if [[ $current != "$(shipped_sum "$dest")" ]] && ! was_released "$current" "$src"; then
            if [[ ! -f $dest.new ]] || ! cmp -s "$src" "$dest.new"; then
                install -m "$mode" "$src" "$dest.new"
                say "keeping your edited $dest; the new shipped version is $dest.new: compare and merge"
            fi
            return 0
        fi
    fi
    install -D -m "$mode" "$src" "$dest"
    record_shipped "$dest"
    rm -f "$dest.new"
    changed=1
    say "installed $dest"
}

# --- user ------------------------------------------------------------------------------------------------
# The user database: this machine's, or the image's (useradd/usermod --root work inside it).
db_entry() { # db_entry passwd|group NAME -> the line, from the image when preparing one
    if ((image_users)); then
        grep -E "^$2:" "$root/etc/$1" || true
    else
        getent "$1" "$2" || true
    fi
}
if ((system_install || image_users)); then
    user_tools=()
    if ((image_users)); then user_tools=(--root "$root"); fi
    if [[ -z $(db_entry passwd beredt) ]]; then
        useradd "${user_tools[@]}" --system --user-group --home-dir /var/lib/beredt --no-create-home \
            --shell /usr/sbin/nologin --comment "Beredt hub" beredt
        say "created system user beredt${user_tools[*]:+ in $root}"
    fi
    # dialout: the radios; gpio and i2c (Raspberry Pi OS): the power inputs, buttons, LEDs and UPS HAT.
    for group in dialout gpio i2c; do
        entry=$(db_entry group "$group")
        if [[ -n $entry ]] && ! cut -d: -f4 <<<"$entry" | tr ',' '\n' | grep -qx beredt; then
            usermod "${user_tools[@]}" -a -G "$group" beredt
            say "added beredt to group $group"
        fi
    done
    beredt_uid=$(db_entry passwd beredt | cut -d: -f3)
    beredt_gid=$(db_entry passwd beredt | cut -d: -f4)
else
    say "not installing as root onto / or an image with a user database: skipping the beredt user," \
        "ownership and systemctl"
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
    read -r -a pip <<<"${BEREDT_PIP:-$venv/bin/python -m pip}"
    if [[ -z $wheel ]]; then
        # Build from a clean copy: a build/ or *.egg-info left in the checkout by an earlier run would be
        # packaged again (bringing back modules deleted upstream), and the build must not leave
        # root-owned files in the owner's checkout. In a git checkout only what git knows is copied.
        build_dir=$(mktemp -d "${TMPDIR:-/tmp}/beredt-build.XXXXXX")
        temporary+=("$build_dir")
        mkdir "$build_dir/src" "$build_dir/wheel"
        # safe.directory: root running git in the owner's checkout is otherwise refused as "dubious".
        if [[ -e $package/.git ]] && command -v git >/dev/null &&
            git -c safe.directory="$package" -C "$package" ls-files -z --cached --others --exclude-standard \
                >"$build_dir/files"; then
            (cd "$package" && tar --null --ignore-failed-read -T "$build_dir/files" -cf - 2>/dev/null) |
                tar -C "$build_dir/src" -xf -
        else
            tar -C "$package" --exclude=./build --exclude=./dist --exclude='*.egg-info' \
                --exclude=__pycache__ --exclude=./.venv --exclude=./.git -cf - . | tar -C "$build_dir/src" -xf -
        fi
        "${pip[@]}" wheel --quiet --disable-pip-version-check --no-deps --wheel-dir "$build_dir/wheel" \
            "$build_dir/src"
        built=("$build_dir"/wheel/beredt-*.whl)
        [[ -f ${built[0]} ]] || die "building the wheel from $package produced no beredt-*.whl"
        package=${built[0]}
    fi
    # With the 'pi' extra (gpiozero and smbus2 for [power], lgpio on ARM for the Pi 5). Dependencies are
    # only upgraded when needed; Beredt itself is then reinstalled even when its version number did not
    # change, which removes the old version's files first, so a module deleted upstream is gone.
    "${pip[@]}" install --quiet --disable-pip-version-check "${package}[pi]"
    "${pip[@]}" install --quiet --disable-pip-version-check --force-reinstall --no-deps "$package"
    say "installed Beredt from $(basename "$package") into $venv"
    if [[ $venv != "$final_venv" ]]; then
        # Scripts pip wrote name the staging path (#!/srv/img/opt/beredt/venv/bin/python); in the image
        # the venv lives at /opt/beredt/venv. Point them, the activate scripts and pyvenv.cfg there.
        "$venv/bin/python" -I - "$venv" "$final_venv" <<'PYTHON'
import pathlib, sys

staged, final = (argument.encode() for argument in sys.argv[1:3])
venv = pathlib.Path(sys.argv[1])
for path in [venv / "pyvenv.cfg", *sorted((venv / "bin").iterdir())]:
    if path.is_symlink() or not path.is_file():
        continue
    data = path.read_bytes()
    if path.parent.name == "bin" and not path.name.startswith("activate"):
        if not data.startswith(b"#!" + staged + b"/bin/"):
            continue
    path.write_bytes(data.replace(staged, final))
PYTHON
        say "made $venv run as $final_venv"
    fi
    # The venv's python, isolated (-I) so that a checkout in the working folder is not imported instead.
    beredt=("$venv/bin/python" -I -m hub.cli)
    if [[ -n ${BEREDT_BIN:-} ]]; then beredt=("$BEREDT_BIN"); fi
else
    beredt_bin=${BEREDT_BIN:-$(command -v beredt || true)}
    [[ -n $beredt_bin ]] || die "--no-venv needs BEREDT_BIN or 'beredt' on PATH"
    beredt=("$beredt_bin")
fi
[[ -x ${beredt[0]} ]] || die "beredt executable not found: ${beredt[0]}"
install_file 0644 "$script_dir/README.md" "$opt_dir/README.md"

# --- configuration and data (kept on upgrade) ------------------------------------------------------------
install -d -m 0750 "$etc_dir"
if [[ ! -e $config ]]; then
    install -m 0640 "$script_dir/beredt.toml" "$config"
    say "installed example configuration $config: set its MQTT broker and radios; enrol it (README)"
else
    say "keeping configuration $config"
fi
install -d -m 0750 "$data_dir"

# --- identity (created once) -----------------------------------------------------------------------------
if [[ -e $data_dir/identity.key ]]; then
    ((image == 0)) || die "$data_dir/identity.key exists in the image: delete it, or every Pi copied from it shares one key"
    say "keeping identity in $data_dir"
elif ((image)); then
    say "no identity in the image: each Pi creates its own at its first start"
else
    init_config=$config
    if [[ $root != / ]]; then
        # The configuration names the target's /var/lib/beredt; create the identity in the staging root.
        init_config=$(mktemp "${TMPDIR:-/tmp}/beredt-init.XXXXXX")
        temporary+=("$init_config")
        grep -Eq '^[[:space:]]*data_dir[[:space:]]*=' "$config" || die "$config has no [node] data_dir"
        # Quote the path for a TOML string, then for the sed replacement (any of \ | & would be special).
        toml_path=${data_dir//\\/\\\\}
        toml_path=${toml_path//\"/\\\"}
        sed_path=$(printf '%s' "$toml_path" | sed 's/[\\|&]/\\&/g')
        sed -E "s|^([[:space:]]*data_dir[[:space:]]*=).*|\\1 \"$sed_path\"|" "$config" >"$init_config"
    fi
    "${beredt[@]}" init --config "$init_config"
    say "created the node identity in $data_dir"
fi

# --- system integration ----------------------------------------------------------------------------------
install_file 0644 "$script_dir/beredt.service" "$unit_dir/beredt.service"
install_owned_file 0644 "$script_dir/99-beredt-radios.rules" "$udev_dir/99-beredt-radios.rules"
udev_changed=$changed
install_owned_file 0644 "$script_dir/journald-beredt.conf" "$journald_dir/beredt.conf"
journald_changed=$changed
if ((use_venv)); then
    # On everyone's PATH, without activating the venv; a beredt there that is not ours is left alone.
    if [[ ! -e $bin_link || $(readlink "$bin_link") == "$final_venv/bin/beredt" ]]; then
        if [[ $(readlink "$bin_link" 2>/dev/null) != "$final_venv/bin/beredt" ]]; then
            mkdir -p "$(dirname "$bin_link")"
            ln -sfn "$final_venv/bin/beredt" "$bin_link"
            say "linked $bin_link to $final_venv/bin/beredt"
        fi
    else
        say "leaving $bin_link alone (not a link to $final_venv/bin/beredt)"
    fi
fi

if ((system_install || image_users)); then
    # Numeric ids: in an image they are the image's, which this machine's names need not match.
    chown "0:$beredt_gid" "$etc_dir" "$config"
    chown -R "$beredt_uid:$beredt_gid" "$data_dir"
fi
if ((system_install)); then
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
