"""The roster: which nodes this hub trusts, in which role, and which kinds each may send.

The roster is a TOML file in the data directory, one ``[[node]]`` table per trusted node holding its
public card (see hub.core.identity). The hub's own card is always trusted. A role decides the default
kinds a node may originate; ``kinds = [...]`` in its table narrows or widens that.
"""

from __future__ import annotations

import enum
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hub.core.errors import ConfigError
from hub.core.files import write_atomically
from hub.core.frame import Kind
from hub.core.identity import PublicCard


class Role(enum.StrEnum):
    STAFF = "staff"
    CARE_HOME = "care-home"
    RELAY = "relay"
    REGION = "region"


_ALWAYS = frozenset({Kind.ACK, Kind.HOP_ACK})
DEFAULT_KINDS: dict[Role, frozenset[Kind]] = {
    Role.STAFF: frozenset(Kind),
    Role.REGION: frozenset(Kind),
    Role.CARE_HOME: _ALWAYS | {Kind.TEXT, Kind.STATUS, Kind.RESOURCE_REQUEST, Kind.READ_RECEIPT, Kind.ALERT},
    Role.RELAY: _ALWAYS | {Kind.TEXT, Kind.STATUS},
}


def parse_role(value: str, *, file: str | None = None, key: str = "role") -> Role:
    try:
        return Role(value)
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise ConfigError(f"unknown role {value!r}; expected one of {choices}", file=file, key=key) from None


@dataclass(frozen=True, slots=True)
class RosterEntry:
    card: PublicCard
    role: Role
    kinds: frozenset[Kind]
    verify_key: Ed25519PublicKey

    @property
    def node_id(self) -> bytes:
        return self.card.node_id

    @property
    def name(self) -> str:
        return self.card.name

    @classmethod
    def from_card(cls, card: PublicCard, kinds: frozenset[Kind] | None = None) -> RosterEntry:
        role = parse_role(card.role)
        return cls(
            card,
            role,
            kinds if kinds is not None else DEFAULT_KINDS[role],
            Ed25519PublicKey.from_public_bytes(card.signing_key),
        )


class Roster:
    """Trusted nodes by node id. Saved atomically; reloaded when the file changes."""

    def __init__(self, own: PublicCard, path: Path | None = None) -> None:
        self.path = path
        self._own = RosterEntry.from_card(own, frozenset(Kind))
        self._entries: dict[bytes, RosterEntry] = {own.node_id: self._own}

    def get(self, node_id: bytes) -> RosterEntry | None:
        return self._entries.get(node_id)

    def __iter__(self) -> Iterator[RosterEntry]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, card: PublicCard, kinds: frozenset[Kind] | None = None) -> RosterEntry:
        entry = RosterEntry.from_card(card, kinds)
        self._entries[entry.node_id] = entry
        return entry

    def remove(self, node_id: bytes) -> bool:
        if node_id == self._own.node_id:
            return False
        return self._entries.pop(node_id, None) is not None

    @classmethod
    def load(cls, own: PublicCard, path: Path) -> Roster:
        roster = cls(own, path)
        if not path.exists():
            return roster
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"not valid TOML: {exc}", file=str(path)) from exc
        for index, table in enumerate(data.get("node", [])):
            key = f"node[{index}]"
            try:
                card = PublicCard.decode(str(table["card"]))
            except KeyError:
                raise ConfigError("missing 'card'", file=str(path), key=key) from None
            except ValueError as exc:
                raise ConfigError(str(exc), file=str(path), key=f"{key}.card") from exc
            kinds = None
            if "kinds" in table:
                try:
                    kinds = frozenset(Kind[name.upper().replace("-", "_")] for name in table["kinds"])
                except KeyError as exc:
                    names = ", ".join(k.name.lower() for k in Kind)
                    raise ConfigError(
                        f"unknown kind {exc}; expected {names}", file=str(path), key=f"{key}.kinds"
                    ) from None
            parse_role(card.role, file=str(path), key=f"{key}.card")
            if card.node_id != roster._own.node_id:
                roster.add(card, kinds)
        return roster

    def save(self, path: Path | None = None) -> None:
        target = path or self.path
        if target is None:
            raise ValueError("roster has no file")
        nodes: list[dict[str, Any]] = []
        for entry in self._entries.values():
            if entry is self._own:
                continue
            node: dict[str, Any] = {"card": entry.card.encode()}
            if entry.kinds != DEFAULT_KINDS[entry.role]:
                node["kinds"] = [k.name.lower() for k in sorted(entry.kinds)]
            nodes.append(node)
        write_atomically(target, tomli_w.dumps({"node": nodes}) if nodes else "")
