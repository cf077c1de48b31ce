"""Cross-certificates: one municipality's root vouching, within a scope, for another municipality's root.

A cross-certificate is part of a roster version (CBOR key 7 of every page, see ``hub.core.kinds.roster``),
so it is signed by the issuing root, travels, is kept and is replaced exactly as the roster is: a newer
version without it ends it, and a replayed older version is refused as stale. Each one is

    CBOR map   1 the other municipality's root key (32 bytes)   2 its name (text)
               3 roles its nodes may have to be trusted here (list of text, at least one)
               4 groups (list of text; empty: any; else a node needs at least one of them)
               5 valid_until (Unix seconds, > 0: a cross-certificate always ends)

A hub trusts a node of the other root's roster only while the certificate is valid and only if the node's
role (and group, when groups are named) is within the scope; the other root can never add to, change or
revoke this municipality's own nodes, and its own cross-certificates are not followed (no transitive trust).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

MAX_CROSS = 32
ROOT_KEY_SIZE = 32


@dataclass(frozen=True, slots=True)
class CrossCertificate:
    """The issuing root's word: nodes of ``root``'s roster with one of ``roles`` (and, when ``groups`` is not
    empty, one of those groups) are trusted here until ``valid_until``."""

    root: bytes
    name: str
    roles: tuple[str, ...]
    groups: tuple[str, ...] = ()
    valid_until: int = 0

    def verify_key(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(self.root)

    def covers(self, role: str, groups: tuple[str, ...]) -> bool:
        """True if a node with this role and these groups is within the scope."""
        return role in self.roles and (not self.groups or bool(set(groups) & set(self.groups)))

    def to_map(self) -> dict[int, Any]:
        item: dict[int, Any] = {1: self.root, 2: self.name, 3: list(self.roles), 5: self.valid_until}
        if self.groups:
            item[4] = list(self.groups)
        return item


def cross_from_map(item: dict[int, Any], text: Any) -> CrossCertificate:
    """Decode one certificate (``text`` checks a text field); ``ValueError`` if it is not one."""
    root = bytes(item[1])
    if len(root) != ROOT_KEY_SIZE:
        raise ValueError("a cross-certificate's root key must be 32 bytes")
    roles = tuple(text(r) for r in item[3])
    if not roles:
        raise ValueError("a cross-certificate names at least one role")
    valid_until = item[5]
    if not isinstance(valid_until, int) or valid_until <= 0:
        raise ValueError("a cross-certificate's valid_until must be Unix seconds")
    return CrossCertificate(root, text(item[2]), roles, tuple(text(g) for g in item.get(4, [])), valid_until)
