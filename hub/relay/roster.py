"""The roster: which nodes this hub trusts, in which role, and which kinds each may send.

Two sources, one lookup. The local roster is a TOML file in the data directory, one ``[[node]]`` table per
trusted node holding its public card (see hub.core.identity) and optionally ``groups = [...]`` and
``contact_minutes`` (how often it should be heard from), edited with ``beredt roster``. A hub given
the municipality's root key (``[trust] root``) also trusts every node of the newest root-signed version
(``hub.core.kinds.roster``, applied by ``hub.relay.roster_updates``); that version's revocation list
overrides both sources, so a revoked node is refused even where someone once added it by hand. The hub's
own card is always trusted. Nodes of another municipality's roster are trusted when our root's version
cross-certifies that municipality's root (``hub.core.kinds.cross_cert``), only within its scope and
validity, and never in place of a node of our own: our word on a node id always wins. A role decides
the default kinds a node may originate; ``kinds = [...]`` in its table narrows or widens that, always
on top of the protocol kinds (``PROTOCOL_KINDS``) every hub needs to take part in the network at all.
"""

from __future__ import annotations

import enum
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import tomli_w
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hub.core.errors import ConfigError
from hub.core.files import write_atomically
from hub.core.frame import Kind
from hub.core.identity import PublicCard
from hub.core.kinds.cross_cert import CrossCertificate
from hub.core.kinds.roster import MAX_CONTACT_MINUTES, MAX_TEXT, RosterNode, RosterVersion
from hub.core.reading_errors import toml_where


class Role(enum.StrEnum):
    STAFF = "staff"
    CARE_HOME = "care-home"
    RELAY = "relay"
    REGION = "region"


PROTOCOL_KINDS = frozenset({Kind.ACK, Kind.HOP_ACK, Kind.LOGBOOK_HEAD, Kind.ROUTE, Kind.EXERCISE_SUMMARY})
"""What every hub sends of its own, whatever its role or its roster entry's ``kinds``: it acknowledges
what it receives and carries, its log book has a witness, it tells its neighbours what it reaches, and it
tells an exercise's coordinator what its links did in the exercise. None of these carries a person's
word or changes another hub's trust (ROSTER and EXERCISE_CONTROL do, so they stay with the role), and
without them a node's own messages are never confirmed: a ``kinds`` list cannot take them away."""
DEFAULT_KINDS: dict[Role, frozenset[Kind]] = {
    Role.STAFF: frozenset(Kind),
    Role.REGION: frozenset(Kind),
    # a home-care team's hub is a care-home node: it reports the visits it makes (VISIT)
    Role.CARE_HOME: PROTOCOL_KINDS
    | {
        Kind.TEXT,
        Kind.STATUS,
        Kind.RESOURCE_REQUEST,
        Kind.READ_RECEIPT,
        Kind.ALERT,
        Kind.VISIT,
        Kind.CITIZEN_ALARM,
    },
    # A relay's radio may hear a citizen's handheld (transports.lora_alarm): it passes the alarm on. It
    # hands the root's roster to a hub it just learned (hub.relay.roster_handoff): the root's signature
    # inside each page, not the relay's on the frame, is what makes a page trusted.
    Role.RELAY: PROTOCOL_KINDS | {Kind.TEXT, Kind.STATUS, Kind.CITIZEN_ALARM, Kind.ROSTER},
}


def _override_names(kinds: frozenset[Kind]) -> list[str]:
    """A roster entry's ``kinds`` as saved: the protocol kinds go without saying."""
    return [k.name.lower() for k in sorted(kinds - PROTOCOL_KINDS)]


def parse_kinds(names: list[str]) -> frozenset[Kind]:
    """Kind names as people write them (any case, dash or underscore); ``ValueError`` names an unknown one
    as it was written, and the known ones."""
    kinds = set()
    for name in names:
        try:
            kinds.add(Kind[name.strip().upper().replace("-", "_")])
        except KeyError:
            known = ", ".join(k.name.lower() for k in Kind)
            raise ValueError(f"ukendt slags {name.strip()!r}; kendte: {known}") from None
    return frozenset(kinds)


def _parse_kinds(value: object, *, file: str, key: str) -> frozenset[Kind]:
    """A ``kinds = [...]`` list of a roster entry."""
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise ConfigError('forventede en liste af slags, som ["status", "text"]', file=file, key=key)
    try:
        return parse_kinds(value)
    except ValueError as exc:
        raise ConfigError(str(exc), file=file, key=key) from None


def valid_group_name(name: str) -> bool:
    """A name a group may have: 1-80 characters, not only spaces, no colon (``group:NAME`` addresses it)."""
    return bool(name.strip()) and len(name) <= MAX_TEXT and ":" not in name


def parse_role(value: str, *, file: str | None = None, key: str = "role") -> Role:
    try:
        return Role(value)
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise ConfigError(f"ukendt rolle {value!r}; forventede en af {choices}", file=file, key=key) from None


@dataclass(frozen=True, slots=True)
class RosterEntry:
    card: PublicCard
    role: Role
    kinds: frozenset[Kind]
    verify_key: Ed25519PublicKey
    institution: str = ""
    valid_until: int = 0  # Unix seconds after which the root no longer vouches for it; 0: open
    groups: tuple[str, ...] = ()  # the groups it may be addressed through (see hub.relay.groups)
    contact_minutes: int = 0  # how often it should be heard from; 0: the console's default
    municipality: str = ""  # another municipality's name when its root vouches for it (cross-certified)

    @property
    def node_id(self) -> bytes:
        return self.card.node_id

    @property
    def name(self) -> str:
        return self.card.name

    @classmethod
    def from_card(
        cls,
        card: PublicCard,
        kinds: frozenset[Kind] | None = None,
        groups: tuple[str, ...] = (),
        contact_minutes: int = 0,
    ) -> RosterEntry:
        role = parse_role(card.role)
        return cls(
            card,
            role,
            kinds | PROTOCOL_KINDS if kinds is not None else DEFAULT_KINDS[role],
            Ed25519PublicKey.from_public_bytes(card.signing_key),
            groups=groups,
            contact_minutes=contact_minutes,
        )

    @classmethod
    def from_node(cls, node: RosterNode) -> RosterEntry:
        """The entry for a node of a root-signed version (an unknown role gets no kinds at all)."""
        try:
            role = Role(node.card.role)
        except ValueError:
            role, kinds = Role.RELAY, frozenset[Kind]()
        else:
            kinds = DEFAULT_KINDS[role]
        verify_key = Ed25519PublicKey.from_public_bytes(node.card.signing_key)
        return cls(
            node.card, role, kinds, verify_key, node.institution, node.valid_until, node.groups,
            node.contact_minutes,
        )  # fmt: skip


def scoped_entry(cert: CrossCertificate, node: RosterNode) -> RosterEntry | None:
    """A foreign root's node as trusted here: within ``cert``'s scope, no longer than ``cert`` is valid."""
    if not cert.covers(node.card.role, node.groups):
        return None
    entry = RosterEntry.from_node(node)
    until = min(node.valid_until or cert.valid_until, cert.valid_until)
    return replace(entry, valid_until=until, municipality=cert.name)


@dataclass(frozen=True, slots=True)
class _Foreign:
    """The newest version of a cross-certified root's roster, and what of it is trusted here."""

    cert: CrossCertificate
    version: RosterVersion
    entries: dict[bytes, RosterEntry]
    out_of_scope: frozenset[bytes]

    @classmethod
    def of(cls, cert: CrossCertificate, version: RosterVersion) -> _Foreign:
        entries: dict[bytes, RosterEntry] = {}
        outside: set[bytes] = set()
        for node in version.nodes:
            if node.node_id in version.revoked:
                continue
            entry = scoped_entry(cert, node)
            if entry is None:
                outside.add(node.node_id)
            else:
                entries[node.node_id] = entry
        return cls(cert, version, entries, frozenset(outside))


class Roster:
    """Trusted nodes by node id: the local file's, then the signed version's, minus the revoked.

    Only the local part is saved (atomically) to the file; the signed part is replaced whole by
    ``apply``."""

    def __init__(self, own: PublicCard, path: Path | None = None) -> None:
        self.path = path
        self._own = RosterEntry.from_card(own, frozenset(Kind))
        # what the local file says this node may send, as the other hubs' copies of it say: None
        # when it names no kinds for it (then its role's defaults hold)
        self.own_kinds: frozenset[Kind] | None = None
        self._entries: dict[bytes, RosterEntry] = {own.node_id: self._own}
        self._signed: dict[bytes, RosterEntry] = {}
        self._retired: frozenset[bytes] = frozenset()  # old ids of rotated keys, still in their grace
        self._foreign: dict[bytes, _Foreign] = {}  # cross-certified root -> its roster
        self.version: RosterVersion | None = None
        self._ahead: tuple[int, frozenset[bytes]] = (0, frozenset())
        """A newer version's number and revocation list, from a page of it, until that version applies."""

    def get(self, node_id: bytes) -> RosterEntry | None:
        if node_id == self._own.node_id:
            return self._own
        if self.is_revoked(node_id):
            return None
        own = self._entries.get(node_id) or self._signed.get(node_id)
        if own is not None or self.is_ours(node_id):
            return own
        return next((f.entries[node_id] for f in self._foreign.values() if node_id in f.entries), None)

    def is_ours(self, node_id: bytes) -> bool:
        """True if our own roster (file or root) has a word on this node: no other root may change it."""
        return (
            node_id == self._own.node_id
            or node_id in self._entries
            or node_id in self._signed
            or self.is_revoked(node_id)
            or node_id in self._retired
        )

    def out_of_scope(self, node_id: bytes) -> bool:
        """True if a cross-certified root lists this node but outside the scope our root allows."""
        return not self.is_ours(node_id) and any(node_id in f.out_of_scope for f in self._foreign.values())

    def foreign_version(self, root: bytes) -> RosterVersion | None:
        part = self._foreign.get(root)
        return part.version if part else None

    def apply_foreign(self, root: bytes, version: RosterVersion) -> None:
        """Trust ``version`` of ``root``'s roster within the scope our version's cross-certificate gives."""
        cert = next((c for c in self.version.cross if c.root == root), None) if self.version else None
        if cert is not None:
            self._foreign[root] = _Foreign.of(cert, version)

    def foreign(self) -> Iterator[RosterEntry]:
        """Other municipalities' nodes trusted here (not addressed by groups or broadcast seals)."""
        for part in self._foreign.values():
            yield from (e for n, e in part.entries.items() if not self.is_ours(n))

    def is_revoked(self, node_id: bytes) -> bool:
        return (self.version is not None and node_id in self.version.revoked) or node_id in self._ahead[1]

    @property
    def revoked_ahead(self) -> tuple[int, frozenset[bytes]]:
        """What ``revoke_ahead`` holds: the newer version's number and the nodes it revoked early."""
        return self._ahead

    def revoke_ahead(self, version: int, revoked: frozenset[bytes]) -> frozenset[bytes]:
        """Refuse now the nodes a newer version (``version``, from one root-signed page of it) revokes,
        before all its pages are here: every page carries the whole list, so a revocation takes effect
        with the first page, not the last. Return the nodes revoked by this call."""
        if self.version is not None and version <= self.version.version:
            return frozenset()
        new = frozenset(n for n in revoked if not self.is_revoked(n) and n != self._own.node_id)
        self._ahead = (max(version, self._ahead[0]), self._ahead[1] | new)
        return new

    def apply(self, version: RosterVersion) -> None:
        """Trust exactly the nodes of ``version`` (besides the local file's); its revocations win."""
        self.version = version
        if version.version >= self._ahead[0]:
            self._ahead = (0, frozenset())
        self._signed = {n.node_id: RosterEntry.from_node(n) for n in version.nodes}
        self._retired = frozenset(n.replaces for n in version.nodes if n.replaces)
        certs = {c.root: c for c in version.cross}  # a cross-certificate no longer signed ends here
        self._foreign = {
            root: _Foreign.of(certs[root], part.version)
            for root, part in self._foreign.items()
            if root in certs
        }

    def __iter__(self) -> Iterator[RosterEntry]:
        """The nodes to list, address and seal to: an old key in its grace after a rotation is not one
        of them (``get`` still finds it, so its frames on the way are accepted until the grace ends)."""
        merged = {**self._signed, **self._entries}
        return iter(
            e
            for e in merged.values()
            if e is self._own or not (self.is_revoked(e.node_id) or e.node_id in self._retired)
        )

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def add(
        self,
        card: PublicCard,
        kinds: frozenset[Kind] | None = None,
        groups: tuple[str, ...] = (),
        contact_minutes: int = 0,
    ) -> RosterEntry:
        entry = RosterEntry.from_card(card, kinds, groups, contact_minutes)
        self._entries[entry.node_id] = entry
        return entry

    def remove(self, node_id: bytes) -> bool:
        """Drop a node from the local file's part (a signed node stays until the root revokes it)."""
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
            raise ConfigError(
                f"ikke gyldig TOML{toml_where(str(exc))}; ret syntaksen dér: tekst i anførselstegn"
                ' (card = "beredt1:…"), tabeller i dobbelte firkantede parenteser ([[node]])',
                file=str(path),
            ) from exc
        for index, table in enumerate(data.get("node", [])):
            key = f"node[{index}]"
            try:
                card = PublicCard.decode(str(table["card"]))
            except KeyError:
                raise ConfigError(
                    "mangler 'card' (nodens kort fra 'beredt id')", file=str(path), key=key
                ) from None
            except ValueError as exc:
                raise ConfigError(str(exc), file=str(path), key=f"{key}.card") from exc
            kinds = None
            if "kinds" in table:
                kinds = _parse_kinds(table["kinds"], file=str(path), key=f"{key}.kinds")
            groups = table.get("groups", [])
            if not isinstance(groups, list) or not all(
                isinstance(g, str) and valid_group_name(g) for g in groups
            ):
                raise ConfigError(
                    'forventede en liste af gruppenavne (intet kolon), som ["distrikt-syd", "plejehjem"]',
                    file=str(path),
                    key=f"{key}.groups",
                )
            contact = table.get("contact_minutes", 0)
            if (
                isinstance(contact, bool)
                or not isinstance(contact, int)
                or not 0 <= contact <= MAX_CONTACT_MINUTES
            ):
                raise ConfigError(
                    f"forventede hele minutter fra 1 til {MAX_CONTACT_MINUTES} (0: konsollens standard)",
                    file=str(path),
                    key=f"{key}.contact_minutes",
                )
            parse_role(card.role, file=str(path), key=f"{key}.card")
            if card.node_id != roster._own.node_id:
                roster.add(card, kinds, tuple(g.strip() for g in groups), contact)
            else:
                roster.own_kinds = None if kinds is None else kinds | PROTOCOL_KINDS
        return roster

    def save(self, path: Path | None = None) -> None:
        target = path or self.path
        if target is None:
            raise ValueError("roster has no file")
        nodes: list[dict[str, Any]] = []
        if self.own_kinds is not None:  # kept, or the next send would fall back to the role's defaults
            own = self._own
            nodes.append({"card": own.card.encode(), "kinds": _override_names(self.own_kinds)})
        for entry in self._entries.values():
            if entry is self._own:
                continue
            node: dict[str, Any] = {"card": entry.card.encode()}
            if entry.kinds != DEFAULT_KINDS[entry.role]:
                node["kinds"] = _override_names(entry.kinds)
            if entry.groups:
                node["groups"] = list(entry.groups)
            if entry.contact_minutes:
                node["contact_minutes"] = entry.contact_minutes
            nodes.append(node)
        write_atomically(target, tomli_w.dumps({"node": nodes}) if nodes else "")
