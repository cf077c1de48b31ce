"""The unit, the journald drop-in, the udev rules and the installer script, checked by the real tools."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from hub.appliance.power import Button, PowerConfig
from hub.core.bounded_http import ConnectionLimits
from hub.service.config import load as load_config
from hub.service.server import LOCAL_LIMITS
from tests.deploy.installer import DEPLOY, find_tool, run_install
from transports.internet import SERVER_LIMITS


def directives(path: Path) -> dict[str, list[str]]:
    """``Section.Key`` -> values of a systemd-style file (keys may repeat, like DeviceAllow=)."""
    found: dict[str, list[str]] = {}
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.setdefault(f"{section}.{key}", []).append(value)
    return found


@pytest.mark.parametrize("script", ["install.sh", "arm64-check.sh"])
def test_shellcheck_is_clean(script: str) -> None:
    shellcheck = find_tool("shellcheck", "shellcheck")
    result = subprocess.run(
        [shellcheck, "--shell=bash", "--severity=style", str(DEPLOY / script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    analyze = find_tool("systemd-analyze", "systemd")
    # Verify inside a scratch root holding systemd's own units, the unit and an ExecStart binary, so that
    # nothing on this machine (no /opt/beredt here) decides the outcome.
    shutil.copytree("/usr/lib/systemd/system", tmp_path / "usr/lib/systemd/system", symlinks=True)
    unit_dir = tmp_path / "etc/systemd/system"
    unit_dir.mkdir(parents=True)
    shutil.copy(DEPLOY / "beredt.service", unit_dir / "beredt.service")
    binary = tmp_path / "opt/beredt/venv/bin/beredt"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    result = subprocess.run(
        [analyze, "verify", f"--root={tmp_path}", "beredt.service"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # verify only warns about unknown keys and bad values, so any output at all is a failure.
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_systemd_analyze_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: a misspelt key in the same setup is reported."""
    analyze = find_tool("systemd-analyze", "systemd")
    shutil.copytree("/usr/lib/systemd/system", tmp_path / "usr/lib/systemd/system", symlinks=True)
    unit_dir = tmp_path / "etc/systemd/system"
    unit_dir.mkdir(parents=True)
    text = (DEPLOY / "beredt.service").read_text().replace("WatchdogSec=30", "WatchdogSecs=30")
    (unit_dir / "beredt.service").write_text(text)
    result = subprocess.run(
        [analyze, "verify", f"--root={tmp_path}", "beredt.service"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Unknown key 'WatchdogSecs'" in result.stderr


def test_unit_starts_without_waiting_for_the_network() -> None:
    """A crisis hub starts with the network down: nothing may pull in or wait for network-online."""
    unit = directives(DEPLOY / "beredt.service")
    for key in ("Wants", "Requires", "Requisite", "BindsTo", "After", "Upholds"):
        for value in unit.get(f"Unit.{key}", []):
            assert "network-online.target" not in value.split(), f"{key}={value}"
    assert "time-sync.target" in unit["Unit.After"][0].split()
    text = (DEPLOY / "beredt.service").read_text()
    assert "Starts without waiting for the network" in text  # and the comment says so


def test_unit_runs_the_hub_as_a_watched_hardened_notify_service() -> None:
    unit = directives(DEPLOY / "beredt.service")
    expected = {
        "Service.Type": ["notify"],
        "Service.NotifyAccess": ["main"],
        "Service.WatchdogSec": ["30"],
        "Service.Restart": ["always"],
        "Service.ExecStart": ["/opt/beredt/venv/bin/beredt run --config /etc/beredt/beredt.toml"],
        "Service.User": ["beredt"],
        "Service.SupplementaryGroups": ["dialout"],
        "Service.NoNewPrivileges": ["yes"],
        "Service.ProtectSystem": ["strict"],
        "Service.ProtectHome": ["yes"],
        "Service.PrivateTmp": ["yes"],
        "Service.ReadWritePaths": ["/var/lib/beredt"],
        "Service.StateDirectory": ["beredt"],
        "Service.DevicePolicy": ["closed"],
        "Unit.StartLimitIntervalSec": ["0"],
    }
    for key, value in expected.items():
        assert unit.get(key) == value, key
    assert set(unit["Service.DeviceAllow"]) == {
        "/dev/beredt-lora rw",
        "/dev/beredt-sine rw",
        "/dev/beredt-iridium rw",
        "char-ttyUSB rw",
        "char-ttyACM rw",
        "char-gpiochip rw",
        "char-gpiomem rw",
        "char-i2c rw",
    }
    # Draining on SIGTERM must fit inside the stop timeout, and the watchdog must allow a slow start.
    assert int(unit["Service.TimeoutStopSec"][0]) >= 10
    assert int(unit["Service.RestartSec"][0]) >= 1


def test_the_file_limit_leaves_room_above_every_connection_cap() -> None:
    """A connection flood must meet the hub's own caps (counted, answered 503), never EMFILE in accept()."""
    unit = directives(DEPLOY / "beredt.service")
    caps = ConnectionLimits().total + LOCAL_LIMITS.total + SERVER_LIMITS.total
    assert int(unit["Service.LimitNOFILE"][0]) >= 4 * caps


def test_example_configuration_loads_and_its_power_table_is_valid() -> None:
    config = load_config(DEPLOY / "beredt.toml")
    assert config.role.value == "care-home"
    assert str(config.data_dir) == "/var/lib/beredt"
    assert {link.name: link.options.get("device") for link in config.links}["lora"] == "/dev/beredt-lora"
    # The [power] example ships commented out; uncommented it must be a valid table.
    lines = (DEPLOY / "beredt.toml").read_text().splitlines()
    start = lines.index("# [power]")
    block = "\n".join(line.removeprefix("# ") for line in lines[start:] if line.startswith("# "))
    power = PowerConfig.from_options(tomllib.loads(block)["power"], file="beredt.toml")
    assert power.mains_pin == 17
    assert set(power.buttons) == set(Button)


def test_journald_drop_in_caps_disk_and_memory_use() -> None:
    journal = directives(DEPLOY / "journald-beredt.conf")
    assert journal["Journal.SystemMaxUse"] == ["200M"]
    assert journal["Journal.RuntimeMaxUse"] == ["32M"]
    assert journal["Journal.SystemKeepFree"] == ["500M"]


# -- udev rules: evaluated the way udev walks them (match keys, SYMLINK+=, ENV, TEST, GOTO/LABEL) ----------

TOKEN = re.compile(r'(?P<key>[A-Z_]+)(?:\{(?P<attr>[^}]+)\})?(?P<op>==|!=|\+=|=)"(?P<value>[^"]*)"')
MATCH_KEYS = {"SUBSYSTEM", "SUBSYSTEMS", "ATTRS", "ENV", "KERNEL", "TEST"}
ASSIGN_KEYS = {"SYMLINK", "GROUP", "MODE", "GOTO", "LABEL", "ENV"}
PINS = "/etc/udev/rules.d/98-beredt-pins.rules"
Rule = list[tuple[str, str | None, str, str]]


def parse_rules(text: str) -> list[Rule]:
    rules = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        tokens = [m.groupdict() for m in TOKEN.finditer(line)]
        rebuilt = ", ".join(
            f'{t["key"]}{{{t["attr"]}}}{t["op"]}"{t["value"]}"'
            if t["attr"]
            else f'{t["key"]}{t["op"]}"{t["value"]}"'
            for t in tokens
        )
        assert rebuilt == line, f"line {number} does not parse as udev rule tokens: {line}"
        for t in tokens:
            known = MATCH_KEYS if t["op"] in ("==", "!=") else ASSIGN_KEYS
            assert t["key"] in known, f"line {number}: unexpected {t['key']}{t['op']}"
        rules.append([(t["key"], t["attr"], t["op"], t["value"]) for t in tokens])
    return rules


def apply_rules(rules: list[Rule], device: dict[str, str], files: set[str], links: list[str]) -> None:
    """Walk ``rules`` for ``device`` as udev does: ENV= assignments are seen by later rules."""
    goto: str | None = None
    for rule in rules:
        if goto is not None:
            if ("LABEL", None, "=", goto) in rule:
                goto = None
            continue
        matched = True
        for key, attr, op, value in rule:
            if op not in ("==", "!="):
                continue
            if key == "TEST":
                hit = value in files
            else:
                hit = fnmatch.fnmatchcase(device.get(f"{key}{{{attr}}}" if attr else key, ""), value)
            matched &= hit if op == "==" else not hit
        if not matched:
            continue
        for key, attr, op, value in rule:
            if key == "SYMLINK" and op == "+=":
                links.append(value)
            if key == "ENV" and op == "=":
                device[f"ENV{{{attr}}}"] = value
            if key == "GOTO":
                goto = value
        if goto is not None and ("LABEL", None, "=", goto) in rule:
            goto = None


def symlinks_for(device: dict[str, str], pins: str | None = None) -> list[str]:
    """The names the shipped rules give ``device``, after the owner's pins file when there is one."""
    links: list[str] = []
    device = dict(device)
    if pins is not None:
        apply_rules(parse_rules(pins), device, set(), links)
    files = {PINS} if pins is not None else set()
    apply_rules(parse_rules((DEPLOY / "99-beredt-radios.rules").read_text()), device, files, links)
    return links


def usb_tty(vendor: str, product: str, serial: str = "") -> dict[str, str]:
    return {
        "SUBSYSTEM": "tty",
        "SUBSYSTEMS": "usb",
        "ATTRS{idVendor}": vendor,
        "ATTRS{idProduct}": product,
        "ATTRS{serial}": serial,
    }


@pytest.mark.parametrize(
    ("device", "links"),
    [
        (usb_tty("10c4", "ea60"), ["beredt-lora"]),  # CP2102 (Heltec V3, RAK)
        (usb_tty("1a86", "55d4"), ["beredt-lora"]),  # CH9102 (LilyGO T-Beam)
        (usb_tty("1a86", "7523"), ["beredt-lora"]),  # CH340
        (usb_tty("303a", "1001"), ["beredt-lora"]),  # ESP32-S3 native USB
        (usb_tty("239a", "8029"), ["beredt-lora"]),  # RAK4631
        (usb_tty("0403", "6001", "A10KZ3QX"), ["beredt-sine"]),  # FTDI PEI cable
        (usb_tty("0403", "6015", "FT5X9QZB"), []),  # a RockBLOCK is never guessed: it must be pinned
        (usb_tty("046d", "c52b"), []),  # anything else is left alone
        ({**usb_tty("10c4", "ea60"), "SUBSYSTEM": "block"}, []),  # only tty devices
    ],
)
def test_udev_rules_name_each_documented_radio_once(device: dict[str, str], links: list[str]) -> None:
    assert symlinks_for(device) == links


# The pin lines as the rules file's own comment and the README show them.
OWNER_PINS = "\n".join(
    f'SUBSYSTEM=="tty", ATTRS{{idVendor}}=="{vendor}", ATTRS{{idProduct}}=="{product}", '
    f'ATTRS{{serial}}=="{serial}", ENV{{BEREDT_RADIO}}="{radio}"'
    for vendor, product, serial, radio in (
        ("10c4", "ea60", "0001", "lora"),
        ("0403", "6015", "FT5X9QZB", "iridium"),
    )
)


@pytest.mark.parametrize(
    ("device", "links"),
    [
        (usb_tty("10c4", "ea60", "0001"), ["beredt-lora"]),  # the pinned LoRa radio
        (usb_tty("10c4", "ea60", "0002"), []),  # a second CP2102 (a GPS) no longer takes its name
        (usb_tty("0403", "6015", "FT5X9QZB"), ["beredt-iridium"]),  # the pinned RockBLOCK
        (usb_tty("0403", "6001", "A10KZ3QX"), []),  # with pins, an unpinned PEI cable is not guessed
    ],
)
def test_pinned_radios_are_the_only_ones_named(device: dict[str, str], links: list[str]) -> None:
    assert symlinks_for(device, OWNER_PINS) == links


def test_the_pin_example_in_the_rules_file_is_a_working_pin() -> None:
    text = (DEPLOY / "99-beredt-radios.rules").read_text()
    example = next(line.strip("# ") for line in text.splitlines() if 'ENV{BEREDT_RADIO}="lora"' in line)
    assert symlinks_for(usb_tty("10c4", "ea60", "0001"), example) == ["beredt-lora"]


def test_every_udev_rule_gives_the_dialout_group_access() -> None:
    for rule in parse_rules((DEPLOY / "99-beredt-radios.rules").read_text()):
        if any(key == "SYMLINK" for key, *_ in rule):
            assert ("GROUP", None, "=", "dialout") in rule
            assert ("MODE", None, "=", "0660") in rule


# -- install.sh arguments ------------------------------------------------------------------------------


def test_help_explains_every_option_and_location() -> None:
    text = run_install("--help").stdout
    for word in (
        "--root",
        "--source",
        "--wheel",
        "--no-venv",
        "BEREDT_PIP",
        "BEREDT_BIN",
        "/opt/beredt/venv",
        "/etc/beredt/beredt.toml",
        "/var/lib/beredt",
        "never overwritten",
        "upgrade",
    ):
        assert word in text, word


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--frobnicate"], "unknown option: --frobnicate"),
        (["--root"], "--root needs a directory"),
        (["--wheel", "/nonexistent/beredt.whl"], "wheel not found: /nonexistent/beredt.whl"),
        (["--source", "/"], "not a Beredt checkout (no pyproject.toml): /"),
        (["--no-venv"], "--no-venv needs BEREDT_BIN or 'beredt' on PATH"),
    ],
)
def test_bad_arguments_fail_with_a_clear_message(tmp_path: Path, args: list[str], message: str) -> None:
    env = {"PATH": "/usr/bin:/bin"}  # no beredt on PATH for the --no-venv case
    result = run_install("--root", tmp_path / "root", *args, env=env, check=False)
    assert result.returncode != 0
    assert message in result.stderr


def test_too_old_python_is_refused_before_anything_is_built(tmp_path: Path) -> None:
    old_python = tmp_path / "python3.9"
    old_python.write_text("#!/bin/sh\nexit 1\n")  # what the version check sees from Python < 3.11
    old_python.chmod(0o755)
    result = run_install("--root", tmp_path / "root", env={"BEREDT_PYTHON": str(old_python)}, check=False)
    assert result.returncode != 0
    assert "Beredt needs Python 3.11 or newer" in result.stderr
    assert not (tmp_path / "root/opt/beredt/venv").exists()
