"""The payload of a message this hub sends: whether its role may send the kind at all, and sealing it to
whoever may read it; and opening a payload sealed to this hub."""

from __future__ import annotations

from hub.core.errors import RoutingError, SealError
from hub.core.frame import BROADCAST, MAX_PAYLOAD, Frame, Kind
from hub.core.identity import Identity
from hub.core.seal import Context, SealingKey
from hub.relay.roster import DEFAULT_KINDS, PROTOCOL_KINDS, Roster
from hub.relay.roster import Role as NodeRole

ROLE_IN_DANISH = {
    NodeRole.STAFF: "en stabshub",
    NodeRole.CARE_HOME: "en institutions hub",
    NodeRole.RELAY: "et relæ",
    NodeRole.REGION: "en regionshub",
}


def may_send(identity: Identity, roster: Roster, kind: Kind) -> bool:
    """Whether receivers take ``kind`` from this node (``check_may_send`` without the reason)."""
    try:
        check_may_send(identity, roster, kind)
    except RoutingError:
        return False
    return True


def check_may_send(identity: Identity, roster: Roster, kind: Kind) -> None:
    """Refuse now what every receiver would refuse for ever: a kind this node may not send, by the rule
    admission applies to it elsewhere (the roster's ``kinds`` for it when it names them, else its
    role's defaults)."""
    try:
        role = NodeRole(identity.role)
    except ValueError:
        return  # an unknown role is refused at admission with its own reason
    allowed = roster.own_kinds if roster.own_kinds is not None else DEFAULT_KINDS[role]
    if kind in allowed:
        return
    may = ", ".join(sorted(k.name.lower() for k in allowed - PROTOCOL_KINDS)) or "ingen"
    rule = (
        f"rosterens kinds for {identity.card.name} tillader {may}"
        if roster.own_kinds is not None
        else f"rollen {role.value} i rosteren tillader {may}"
    )
    raise RoutingError(
        f"{ROLE_IN_DANISH[role]} må ikke sende {kind.name.lower()}-beskeder ({rule});"
        " de modtagende hubber ville afvise dem"
    )


def seal_payload(sealing: SealingKey, roster: Roster, payload: bytes, context: Context) -> bytes:
    """``payload`` sealed to its recipient, or for a broadcast to every reader in ``roster``."""
    if context.recipient != BROADCAST:
        entry = roster.get(context.recipient)
        if entry is None:
            raise SealError(
                f"{context.recipient.hex()} er ikke i rosteren og kunne ikke åbne en forseglet besked:"
                " tilføj dens kort med 'beredt roster add', eller send beskeden som offentlig"
            )
        return sealing.seal_direct(payload, entry.card.sealing_key, context)
    # a broadcast is read by every hub in the roster that has people at it; relays only forward
    readers = [
        (e.node_id, e.card.sealing_key)
        for e in roster
        if e.node_id != context.sender and e.role is not NodeRole.RELAY
    ]
    if not readers:
        raise SealError(
            "ingen i rosteren kunne åbne en forseglet rundsending: tilføj de andre hubbers kort med"
            " 'beredt roster add', eller send beskeden som offentlig"
        )
    sealed = sealing.seal_wrapped(payload, readers, context)
    if len(sealed) > MAX_PAYLOAD:
        raise SealError(
            f"forseglet til {len(readers)} læsere fylder beskeden {len(sealed)} bytes, mere end grænsen"
            f" på {MAX_PAYLOAD} bytes: gør den kortere, eller send den til færre modtagere"
        )
    return sealed


def open_payload(sealing: SealingKey, roster: Roster, frame: Frame) -> bytes:
    """The payload of ``frame`` in clear, opened if it was sealed; ``SealError`` if this hub is not
    among those it was sealed to (nor its sender)."""
    if not frame.sealed:
        return frame.payload
    keys = {entry.node_id: entry.card.sealing_key for entry in roster}
    return sealing.open(frame.payload, Context.of(frame), keys)
