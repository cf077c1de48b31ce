"""``beredt key rotate`` and ``beredt key approve`` on files (no hub running): the approved version, and the
clear refusals for a statement not signed by the node's current key or from a node not in the roster."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hub.cli.main import main
from hub.core.identity import Identity
from hub.core.kinds.roster import parse_root_public
from hub.relay.roster_updates import FILE_NAME, read_signed
from hub.service import config as config_module
from tests.cli.test_municipality import _config, _root


def test_rotate_then_approve_and_the_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key, root = _root(tmp_path, capsys)
    staff = _config(tmp_path, "staff", "staff", {"root": root, "root_key": str(key)})
    home = _config(tmp_path, "home", "care-home", {})
    stranger = _config(tmp_path, "stranger", "care-home", {})
    assert main(["init", "-c", str(staff)]) == 0 and main(["init", "-c", str(stranger)]) == 0
    capsys.readouterr()
    assert main(["enrol", "-c", str(home), f"--root={root}"]) == 0
    shown = capsys.readouterr().out
    code, card = re.search(r"tilmeldingskode: (\S+)", shown), re.search(r"^kort: +(.+)$", shown, re.MULTILINE)
    assert code and card
    approve = ["enrol", "approve", code[1], "-c", str(staff), "--card", card[1], "--role", "care-home"]
    assert main([*approve, "--institution", "Solbakken", "--group", "nord"]) == 0
    capsys.readouterr()

    assert main(["key", "rotate", "-c", str(stranger)]) == 0  # signed by a key the roster does not list
    foreign = re.search(r"^rotationserklæring: (.+)$", capsys.readouterr().out, re.MULTILINE)
    assert foreign
    assert main(["key", "approve", foreign[1], "-c", str(staff)]) == 2
    assert "ikke i den signerede roster" in capsys.readouterr().err

    assert main(["key", "rotate", "-c", str(home)]) == 0
    statement = re.search(r"^rotationserklæring: (.+)$", capsys.readouterr().out, re.MULTILINE)
    assert statement
    old_id, signature, rest = statement[1].split(":", 3)[1:]
    flipped = ("B" if signature[0] != "B" else "C") + signature[1:]  # the first byte of the signature changed
    tampered = f"beredt-rotation1:{old_id}:{flipped}:{rest}"
    assert main(["key", "approve", tampered, "-c", str(staff)]) == 2
    assert "ikke signeret med nodens nuværende nøgle" in capsys.readouterr().err
    assert main(["key", "approve", "beredt1:x", "-c", str(staff)]) == 2
    assert "en rotationserklæring ser sådan ud" in capsys.readouterr().err

    assert main(["key", "approve", statement[1], "-c", str(staff), "--grace-minutes", "60"]) == 0
    assert "i roster-version 2" in capsys.readouterr().out
    data = config_module.load(staff).data_dir
    version = read_signed(data / FILE_NAME, parse_root_public(root))[0]
    new = Identity.load(config_module.load(home).data_dir / "identity.next.key")
    successor, retiring = version.node(new.node_id), version.node(bytes.fromhex(old_id))
    assert successor and retiring
    assert (successor.institution, successor.groups, successor.replaces.hex()) == (
        "Solbakken",
        ("nord",),
        old_id,
    )
    assert retiring.valid_until > 0
