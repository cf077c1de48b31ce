"""The register of Meshtastic handhelds at citizens' homes (node id and public key -> citizen id), and of
home-care teams' handhelds and TETRA terminals (-> the team).

A personal alarm (a press of the handheld's button or a canned message) counts only from a handheld
listed here, and only when the radio's firmware decrypted it with the public key listed for that node
(see ``transports.lora_alarm``). The register is a TOML file, ``handhelds.toml`` in the hub's data folder
unless a link names another::

    [[handheld]]
    node = "!a1b2c3d4"                      # the handheld's node id, as 'meshtastic --info' prints it
    public_key = "base64 of 32 bytes"       # its public key, as 'meshtastic --info' prints it
    citizen = "0a0b0c0d"                    # the citizen's id in the register (municipality hub only)

    [[handheld]]
    node = "!b1b2c3d4"
    public_key = "base64 of 32 bytes"
    team = "Nord"                           # a home-care team's handheld: the district it covers

    [[terminal]]
    issi = "2001234"                        # a team's SINE/TETRA terminal (its ISSI)
    team = "Nord"

The hub that owns the radio needs ``node`` and ``public_key``; the municipality's hub also ``citizen``.
A handheld names a ``citizen`` (its messages are personal alarms) or a ``team`` (its texts are coded
visits, ``hub.citizens.visit_codes``), never both. A team is named by its district, as in
``[citizens.teams]``.
A sealed CITIZEN_ALARM names the handheld and the first 8 bytes of SHA-256 over its key (``fingerprint``),
so the municipality's hub can tell when the two registers disagree about a handheld.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hub.core.errors import ConfigError
from hub.core.reading_errors import os_error, toml_where

FILE_NAME = "handhelds.toml"
MAX_HANDHELDS = 10_000
"""More than any municipality hands out; keeps the file's cost bounded."""
KEY_SIZE = 32
NODE_ID = re.compile(r"^![0-9a-f]{8}$")
ISSI_DIGITS = 8


@dataclass(frozen=True, slots=True)
class Handheld:
    node: int
    public_key: bytes
    citizen: str | None = None
    team: str | None = None
    """The district of the home-care team carrying it: its texts are coded visits, not alarms."""

    @property
    def node_id(self) -> str:
        return node_label(self.node)


def node_label(node: int) -> str:
    """Meshtastic's spelling of a node number: ``!`` and eight hex digits."""
    return f"!{node:08x}"


def fingerprint(public_key: bytes) -> bytes:
    """Eight bytes that tell two public keys apart: the start of SHA-256 over the key."""
    return hashlib.sha256(public_key).digest()[:8]


def parse_node(value: object) -> int:
    """``!a1b2c3d4`` (case ignored) as a node number; ``ValueError`` says what was expected."""
    text = str(value).strip().lower()
    if not NODE_ID.match(text):
        raise ValueError(f"node: forventede et node-id som !a1b2c3d4 ('meshtastic --info'), ikke {value!r}")
    return int(text[1:], 16)


def parse_key(value: object) -> bytes:
    """A base64 public key of 32 bytes; ``ValueError`` says what was expected."""
    try:
        raw = base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != KEY_SIZE:
        raise ValueError(
            "public_key: forventede håndsættets offentlige nøgle: base64 af 32 bytes, som 'meshtastic --info'"
            " viser den"
        )
    return raw


def load_handhelds(path: Path) -> dict[int, Handheld]:
    """The handhelds listed in ``path`` by node number; an absent file is an empty register."""
    return parse_handhelds(_read(path), file=str(path))


def load_terminals(path: Path) -> dict[str, str]:
    """The team terminals listed in ``path``: ISSI (without leading zeros) -> team; absent file: none."""
    return parse_terminals(_read(path), file=str(path))


def _read(path: Path) -> dict[str, object]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"håndsætregistret kan ikke læses: {os_error(exc)}", file=str(path)) from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"ikke gyldig TOML{toml_where(str(exc))}; ret syntaksen dér: tekst i anførselstegn"
            ' (team = "Nord"), tabeller i dobbelte firkantede parenteser ([[handheld]])',
            file=str(path),
        ) from exc


def parse_handhelds(data: Mapping[str, object], *, file: str) -> dict[int, Handheld]:
    entries = data.get("handheld", [])
    unknown = set(data) - {"handheld", "terminal"}
    if unknown:
        raise ConfigError(
            f"ukendte nøgler {sorted(unknown)}; forventede [[handheld]]- og [[terminal]]-tabeller", file=file
        )
    if not isinstance(entries, list):
        raise ConfigError("forventede [[handheld]]-tabeller", file=file, key="handheld")
    if len(entries) > MAX_HANDHELDS:
        raise ConfigError(f"{len(entries)} håndsæt: højst {MAX_HANDHELDS}", file=file, key="handheld")
    out: dict[int, Handheld] = {}
    for index, entry in enumerate(entries):
        key = f"handheld[{index}]"
        if not isinstance(entry, Mapping):
            raise ConfigError("forventede en [[handheld]]-tabel", file=file, key=key)
        extra = set(entry) - {"node", "public_key", "citizen", "team"}
        if extra:
            raise ConfigError(
                f"ukendte nøgler {sorted(extra)}; kendte: node, public_key, citizen, team", file=file, key=key
            )
        try:
            node = parse_node(entry.get("node"))
            public_key = parse_key(entry.get("public_key"))
        except ValueError as exc:
            raise ConfigError(str(exc), file=file, key=key) from None
        citizen = entry.get("citizen")
        if citizen is not None and (not isinstance(citizen, str) or not citizen.strip()):
            raise ConfigError(
                "citizen: forventede borgerens id som tekst i anførselstegn", file=file, key=key
            )
        team = entry.get("team")
        if team is not None and (not isinstance(team, str) or not team.strip()):
            raise ConfigError(
                "team: forventede teamets distrikt som tekst i anførselstegn", file=file, key=key
            )
        if citizen is not None and team is not None:
            raise ConfigError(
                "et håndsæt hører til en borger (citizen) eller et team (team), ikke begge",
                file=file,
                key=key,
            )
        if node in out:
            raise ConfigError(f"{node_label(node)} står der to gange", file=file, key=key)
        out[node] = Handheld(
            node, public_key, citizen.strip() if citizen else None, team.strip() if team else None
        )
    return out


def parse_terminals(data: Mapping[str, object], *, file: str) -> dict[str, str]:
    entries = data.get("terminal", [])
    if not isinstance(entries, list) or len(entries) > MAX_HANDHELDS:
        raise ConfigError(
            f"forventede højst {MAX_HANDHELDS} [[terminal]]-tabeller", file=file, key="terminal"
        )
    out: dict[str, str] = {}
    for index, entry in enumerate(entries):
        key = f"terminal[{index}]"
        if not isinstance(entry, Mapping) or set(entry) != {"issi", "team"}:
            raise ConfigError("forventede en [[terminal]]-tabel med netop issi og team", file=file, key=key)
        issi, team = str(entry["issi"]).strip(), entry["team"]
        if not issi.isdigit() or not 1 <= len(issi) <= ISSI_DIGITS or int(issi) == 0:
            raise ConfigError(
                f"issi: forventede terminalens ISSI (1-8 cifre), ikke {issi!r}", file=file, key=key
            )
        if not isinstance(team, str) or not team.strip():
            raise ConfigError(
                "team: forventede teamets distrikt som tekst i anførselstegn", file=file, key=key
            )
        if str(int(issi)) in out:
            raise ConfigError(f"ISSI {issi} står der to gange", file=file, key=key)
        out[str(int(issi))] = team.strip()
    return out
