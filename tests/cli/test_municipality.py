"""``beredt root init``, ``enrol``, ``enrol approve`` and ``revoke`` on files (no hub running): what they
write, and the clear refusals when the key, the code or the config is wrong."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
import segno
import tomli_w

from hub.cli.main import main
from hub.core.identity import Identity
from hub.core.kinds.roster import parse_root_public
from hub.relay.roster import Roster
from hub.relay.roster_updates import RosterUpdates
from hub.service import config as config_module
from hub.service.config import DEFAULT_ANNOUNCE_INTERVAL


def _config(folder: Path, name: str, role: str, trust: dict[str, object]) -> Path:
    path = folder / name / "beredt.toml"
    path.parent.mkdir(parents=True)
    document: dict[str, object] = {"node": {"name": name, "role": role, "data_dir": "data"}, "links": {}}
    if trust:
        document["trust"] = trust
    path.write_text(tomli_w.dumps(document))
    return path


def _root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, str]:
    key = tmp_path / "usb" / "root.key"
    assert main(["root", "init", "--out", str(key)]) == 0
    printed = capsys.readouterr().out
    found = re.search(r'root = "([^"]+)"', printed)
    assert found and "to USB-nøgler" in printed
    return key, found[1]


def test_enrol_approve_and_revoke_write_signed_versions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key, root = _root(tmp_path, capsys)
    assert key.stat().st_mode & 0o777 == 0o600
    assert main(["root", "init", "--out", str(key)]) == 2, "an existing root key is never overwritten"
    assert "overskriv den aldrig" in capsys.readouterr().err

    staff = _config(tmp_path, "staff", "staff", {"root": root, "root_key": str(key)})
    home = _config(tmp_path, "home", "care-home", {})
    assert config_module.load(staff).trust.announce_interval == DEFAULT_ANNOUNCE_INTERVAL
    assert main(["init", "-c", str(staff)]) == 0
    capsys.readouterr()
    assert main(["enrol", "-c", str(home), "--root", "kort"]) == 2
    assert config_module.load(home).trust.root is None, "a bad key is not written"
    assert main(["enrol", "-c", str(home), f"--root={root}"]) == 0
    assert config_module.load(home).trust.root == root
    assert config_module.load(home).trust.announce_interval == 0
    shown = capsys.readouterr().out
    code = re.search(r"tilmeldingskode: (\S+)", shown)
    card = re.search(r"^kort: +(.+)$", shown, re.MULTILINE)
    assert code and card
    qr = io.StringIO()  # the QR code carries exactly what the coordinator would otherwise type
    segno.make(f"{code[1]} {card[1]}", error="m").terminal(out=qr, compact=True)
    assert qr.getvalue() in shown and len(qr.getvalue().splitlines()) > 20

    wrong = "AAAA-AAAA" if code[1] != "AAAA-AAAA" else "BBBB-BBBB"
    approve = ["enrol", "approve", "-c", str(staff), "--card", card[1], "--role", "care-home"]
    assert main([*approve[:2], wrong, *approve[2:]]) == 2
    assert "passer ikke til kortet" in capsys.readouterr().err
    assert main([*approve[:2], code[1], *approve[2:], "--name", "Sol:bakken"]) == 2
    assert "':'" in capsys.readouterr().err, "a name the card format cannot carry is refused"
    named = ["--name", "Plejecenter Solbakken", "--institution", "Solbakken", "--group", "nord"]
    assert main([*approve[:2], code[1], *approve[2:], *named]) == 0
    assert "rosterversion 1" in capsys.readouterr().out

    staff_config = config_module.load(staff)
    identity = Identity.load(staff_config.identity_path)
    roster = Roster(identity.card)
    updates = RosterUpdates(roster, parse_root_public(root), staff_config.data_dir)
    assert updates.load() and updates.version == 1
    home_id = Identity.load(config_module.load(home).identity_path).node_id
    entry = roster.get(home_id)
    assert entry is not None and entry.institution == "Solbakken" and entry.role.value == "care-home"
    assert entry.name == "Plejecenter Solbakken", "the coordinator names it; its config said 'home'"
    assert roster.version is not None and roster.version.node(identity.node_id) is not None, (
        "the issuing hub signs itself in: hubs trust its ROSTER frames by that card"
    )

    assert main(["revoke", home_id.hex(), "-c", str(staff)]) == 0
    assert updates.load() and updates.version == 2 and roster.get(home_id) is None
    assert main(["revoke", "xyz", "-c", str(staff)]) == 2


def test_clear_refusals_for_a_missing_or_exposed_key_and_a_bad_trust_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key, root = _root(tmp_path, capsys)
    home = _config(tmp_path, "home", "care-home", {"root": root})
    assert main(["init", "-c", str(home)]) == 0
    capsys.readouterr()
    assert main(["revoke", "0123456789abcdef", "-c", str(home)]) == 2
    assert "det er ikke denne hub, der godkender tilmeldinger" in capsys.readouterr().err

    key.chmod(0o644)
    staff = _config(tmp_path, "staff", "staff", {"root": root, "root_key": str(key)})
    assert main(["init", "-c", str(staff)]) == 0
    capsys.readouterr()
    assert main(["revoke", "0123456789abcdef", "-c", str(staff)]) == 2
    assert "chmod 600" in capsys.readouterr().err

    other = _config(tmp_path, "other", "staff", {"root": "kort"})
    assert main(["id", "-c", str(other)]) == 2
    assert "trust.root: en rodnøgle er 43 tegn base64" in capsys.readouterr().err
    orphan = _config(tmp_path, "orphan", "staff", {"root_key": str(key)})
    assert main(["id", "-c", str(orphan)]) == 2
    assert "root_key kræver root" in capsys.readouterr().err


def test_enrol_writes_the_entry_points_into_the_config_and_refuses_bad_or_conflicting_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, root = _root(tmp_path, capsys)
    relay = "http://relae-nord.kommune.dk:8471"
    fresh = _config(tmp_path, "fresh", "care-home", {})
    fresh.chmod(0o640)  # as install.sh leaves it on a Pi: it may hold the MQTT password
    assert main(["enrol", "-c", str(fresh), f"--root={root}", "--entry", relay, "--entry", relay]) == 0
    assert fresh.stat().st_mode & 0o777 == 0o640, "rewriting [trust] keeps the file's mode"
    trust = config_module.load(fresh).trust
    assert (trust.root, trust.entry) == (root, (relay,))
    capsys.readouterr()

    # a hub that has its root already: the entry points go into its [trust] table, comments kept
    rooted = _config(tmp_path, "rooted", "care-home", {"root": root})
    rooted.write_text("# Solbakken\n" + rooted.read_text())
    assert main(["enrol", "-c", str(rooted), "--entry", relay, "--entry", "https://relae-syd:8471"]) == 0
    assert config_module.load(rooted).trust.entry == (relay, "https://relae-syd:8471")
    assert rooted.read_text().startswith("# Solbakken\n")
    assert main(["enrol", "-c", str(rooted), "--entry", relay, "--entry", "https://relae-syd:8471"]) == 0
    capsys.readouterr()
    assert main(["enrol", "-c", str(rooted), "--entry", "http://andet:8471"]) == 2
    assert "andre indgange" in capsys.readouterr().err

    bad = _config(tmp_path, "bad", "care-home", {})
    assert main(["enrol", "-c", str(bad), f"--root={root}", "--entry", "relae-nord:8471"]) == 2
    assert "ingen http(s)-adresse" in capsys.readouterr().err
    assert config_module.load(bad).trust.root is None, "nothing is written when one argument is bad"
    broken = _config(tmp_path, "broken", "care-home", {"root": root, "entry": "http://x:1"})
    assert main(["id", "-c", str(broken)]) == 2
    assert "trust.entry: forventede en liste" in capsys.readouterr().err
