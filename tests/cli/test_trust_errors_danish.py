"""The refusals of the root's commands reach the coordinator in Danish: a roster too large to send, a
cross-certificate that is not there, a rotation statement that is damaged or signed by the wrong key.
Each command runs as a real ``beredt`` process on a staff hub's files."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
from pathlib import Path

import pytest
import tomli_w
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub.cli.main import build_parser
from hub.cli.municipality import new_root_key
from hub.core.identity import PublicCard
from hub.core.kinds.roster import RosterNode, RosterVersion, enrolment_code, root_public_text
from hub.core.rotation import Rotation
from hub.relay.roster_issue import load_root_key
from hub.relay.roster_updates import FILE_NAME, write_signed
from hub.service import config as config_module
from tests.cli.test_cli_danish import _leaks, _vocabulary
from tests.hubproc import BEREDT, REPO


@dataclasses.dataclass
class Municipality:
    staff: Path
    home: Path
    folder: Path

    def beredt(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*BEREDT, *args], capture_output=True, text=True, cwd=REPO, timeout=60)

    def card(self, config: Path) -> str:
        done = self.beredt("id", "--card-only", "-c", str(config))
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def new_root(self, name: str) -> str:
        done = self.beredt("root", "init", "--out", str(self.folder / name / "root.key"))
        found = re.search(r'root = "([^"]+)"', done.stdout)
        assert done.returncode == 0 and found, done.stdout + done.stderr
        return found[1]


@pytest.fixture
def municipality(tmp_path: Path) -> Municipality:
    made = Municipality(tmp_path / "staff" / "beredt.toml", tmp_path / "home" / "beredt.toml", tmp_path)
    root = made.new_root("usb")
    for config, role, trust in (
        (made.staff, "staff", {"root": root, "root_key": str(tmp_path / "usb" / "root.key")}),
        (made.home, "care-home", {"root": root}),
    ):
        config.parent.mkdir(parents=True)
        document = {"node": {"name": config.parent.name, "role": role, "data_dir": "data"}, "links": {}}
        config.write_text(tomli_w.dumps({**document, "trust": trust}))
        assert made.beredt("init", "-c", str(config)).returncode == 0
    return made


def refused_in_danish(done: subprocess.CompletedProcess[str], words: str) -> None:
    said = done.stdout + done.stderr
    assert done.returncode != 0, said
    assert words in said, said
    # hex ids and base64 cards left out: random letters, not language
    text = " ".join(w for w in said.split() if not re.search(r"\d{3}|[A-Za-z0-9_-]{20}", w))
    assert _leaks(text, _vocabulary(build_parser())) == [], said


def approve(municipality: Municipality, card: str) -> subprocess.CompletedProcess[str]:
    code = enrolment_code(PublicCard.decode(card))
    return municipality.beredt(
        "enrol", "approve", code, "--card", card, "--role", "care-home", "-c", str(municipality.staff)
    )


def full_roster(own: PublicCard, key: Ed25519PrivateKey) -> RosterVersion:
    """A version of the staff hub's own node and as many made-up nodes as the most pages can carry."""

    def version(count: int) -> RosterVersion:
        nodes = [
            RosterNode(PublicCard(f"Node {n}", "care-home", os.urandom(32), os.urandom(32)))
            for n in range(count)
        ]
        return RosterVersion(1, 0, (RosterNode(own), *nodes))

    fits, too_many = 1, 1000
    while too_many - fits > 1:  # the most nodes that still sign, by halving
        middle = (fits + too_many) // 2
        try:
            version(middle).sign(key)
            fits = middle
        except ValueError:
            too_many = middle
    return version(fits)


def test_a_roster_too_large_to_send_is_refused_in_danish(municipality: Municipality) -> None:
    config = config_module.load(municipality.staff)
    key = load_root_key(config.trust)
    full = full_roster(PublicCard.decode(municipality.card(municipality.staff)), key)
    write_signed(config.data_dir / FILE_NAME, full.sign(key))
    refused_in_danish(approve(municipality, municipality.card(municipality.home)), "er for mange")


def test_revoking_a_cross_certificate_never_made_is_refused_in_danish(municipality: Municipality) -> None:
    other = municipality.new_root("randers")
    done = municipality.beredt("root", "cross-certify", other, "--revoke", "-c", str(municipality.staff))
    refused_in_danish(done, "intet krydscertifikat")


def test_a_damaged_or_forged_rotation_statement_is_refused_in_danish(municipality: Municipality) -> None:
    home_card = municipality.card(municipality.home)
    assert approve(municipality, home_card).returncode == 0
    staff = str(municipality.staff)
    damaged = f"beredt-rotation1:00:AAAA:{home_card}"
    refused_in_danish(municipality.beredt("key", "approve", damaged, "-c", staff), "beskadiget")

    # Well formed, but not signed by the care home's key: a stranger asking to take its place.
    home = PublicCard.decode(home_card)
    stranger = PublicCard("Solbakken", "care-home", os.urandom(32), os.urandom(32))
    forged = Rotation(home.node_id, stranger, bytes(64)).encode()
    refused_in_danish(municipality.beredt("key", "approve", forged, "-c", staff), "ikke signeret")


def test_a_new_root_never_reads_as_an_option() -> None:
    """One random root text in 64 begins with "-", which a command line takes for an option."""
    assert not [t for t in (root_public_text(new_root_key().public_key()) for _ in range(300)) if t[0] == "-"]
