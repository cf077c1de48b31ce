"""Sealing: who can open what, what it costs in bytes on real signed frames, and altered bytes refused."""

from __future__ import annotations

import hmac

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from hub.core.errors import SealError
from hub.core.frame import BROADCAST, Frame, Kind, Priority, decode_frame
from hub.core.identity import Identity
from hub.core.kinds import NO_PERSONAL_DATA, decode_payload, encode_payload, sealed_by_default
from hub.core.seal import DIRECT_OVERHEAD, SLOT_SIZE, Context, SealingKey, wrapped_overhead
from tests.core.kinds.test_kinds import BODIES, FULL_STATUS, NOW
from transports.lora import MTU as LORA_MTU

MESHTASTIC_PAYLOAD = 233  # bytes of application data in one Meshtastic packet

SENDER = Identity.generate("Plejecenter Lindely", "care-home")
PEOPLE = [Identity.generate(f"Hub {n}", "staff") for n in range(12)]
KEYS = {i.node_id: i.sealing_public for i in [SENDER, *PEOPLE]}


def key_of(identity: Identity) -> SealingKey:
    return SealingKey(identity.sealing_private, identity.node_id)


def signed(kind: Kind, recipient: bytes, payload: bytes, *, seal_to: list[Identity] | None = None) -> Frame:
    """A real signed frame, its payload sealed to ``seal_to`` (DIRECT for a single node recipient)."""
    context = Context(SENDER.node_id, recipient, kind, NOW, 0x12345678)
    if seal_to is not None:
        sealer = key_of(SENDER)
        if recipient == BROADCAST:
            payload = sealer.seal_wrapped(payload, [(p.node_id, p.sealing_public) for p in seal_to], context)
        else:
            payload = sealer.seal_direct(payload, seal_to[0].sealing_public, context)
    return SENDER.sign(
        kind,
        recipient,
        payload,
        created=NOW,
        ttl_minutes=720,
        priority=Priority.URGENT,
        sealed=seal_to is not None,
        nonce=context.nonce,
    )


def test_direct_opens_for_recipient_and_sender_only() -> None:
    payload = encode_payload(Kind.TEXT, "Karen Jensen, 010203-1234, skal have ilt")
    frame = decode_frame(signed(Kind.TEXT, PEOPLE[0].node_id, payload, seal_to=[PEOPLE[0]]).encode())
    assert b"Karen" not in frame.payload and b"010203" not in frame.payload
    assert key_of(PEOPLE[0]).open(frame.payload, Context.of(frame), KEYS) == payload
    assert key_of(SENDER).open(frame.payload, Context.of(frame), KEYS) == payload
    with pytest.raises(SealError, match="another node"):
        key_of(PEOPLE[1]).open(frame.payload, Context.of(frame), KEYS)


def test_wrapped_opens_for_each_recipient_and_the_sender_only() -> None:
    payload = encode_payload(Kind.SITREP, BODIES[Kind.SITREP])
    readers = PEOPLE[:10]
    frame = decode_frame(signed(Kind.SITREP, BROADCAST, payload, seal_to=readers).encode())
    for person in [*readers, SENDER]:
        assert key_of(person).open(frame.payload, Context.of(frame), KEYS) == payload
    for outsider in PEOPLE[10:]:
        with pytest.raises(SealError, match="other nodes"):
            key_of(outsider).open(frame.payload, Context.of(frame), KEYS)


def test_a_sealed_payload_moved_under_another_header_or_altered_does_not_open() -> None:
    payload = encode_payload(Kind.TEXT, "Karen Jensen")
    for recipient, readers in ((PEOPLE[0].node_id, [PEOPLE[0]]), (BROADCAST, PEOPLE[:3])):
        frame = signed(Kind.TEXT, recipient, payload, seal_to=readers)
        opener = key_of(PEOPLE[0])
        moved = Context(SENDER.node_id, recipient, Kind.STATUS, NOW, frame.nonce)
        with pytest.raises(SealError):
            opener.open(frame.payload, moved, KEYS)
        # the tag, the ciphertext, and the opener's own slot (other slots are covered by the signature)
        for at in (len(frame.payload) - 1, len(frame.payload) - 17, 3, 6):
            altered = bytearray(frame.payload)
            altered[at] ^= 0x01
            with pytest.raises(SealError):
                opener.open(bytes(altered), Context.of(frame), KEYS)
        for cut in (0, 1, 2, 17):
            with pytest.raises(SealError):
                opener.open(frame.payload[:cut], Context.of(frame), KEYS)


def test_a_sender_not_in_the_roster_cannot_be_opened_and_says_why() -> None:
    frame = signed(Kind.TEXT, PEOPLE[0].node_id, b"hej", seal_to=[PEOPLE[0]])
    with pytest.raises(SealError, match="not in the roster"):
        key_of(PEOPLE[0]).open(frame.payload, Context.of(frame), {})


def test_overhead_budgets_on_signed_frames() -> None:
    payload = encode_payload(Kind.SITREP, BODIES[Kind.SITREP])
    plain = len(signed(Kind.SITREP, PEOPLE[0].node_id, payload).encode())
    one = len(signed(Kind.SITREP, PEOPLE[0].node_id, payload, seal_to=[PEOPLE[0]]).encode())
    assert one - plain == DIRECT_OVERHEAD <= 32
    sizes = [len(signed(Kind.SITREP, BROADCAST, payload, seal_to=PEOPLE[:n]).encode()) for n in (1, 2, 10)]
    assert sizes[1] - sizes[0] == SLOT_SIZE <= 24
    assert sizes[2] - sizes[0] == 9 * SLOT_SIZE
    assert sizes[0] - plain == wrapped_overhead(1)


def test_full_sealed_status_fits_one_lora_packet() -> None:
    payload = encode_payload(Kind.STATUS, FULL_STATUS)
    frame = signed(Kind.STATUS, PEOPLE[0].node_id, payload, seal_to=[PEOPLE[0]])
    wire = frame.encode()
    assert len(wire) <= LORA_MTU < MESHTASTIC_PAYLOAD, f"full sealed status frame is {len(wire)} bytes"
    opened = key_of(PEOPLE[0]).open(decode_frame(wire).payload, Context.of(frame), KEYS)
    assert decode_payload(Kind.STATUS, opened) == FULL_STATUS


def test_every_kind_but_the_hubs_own_traffic_is_sealed_unless_public() -> None:
    assert {
        Kind.ACK,
        Kind.HOP_ACK,
        Kind.ROSTER,
        Kind.EXERCISE_CONTROL,
        Kind.EXERCISE_SUMMARY,
        Kind.LOGBOOK_HEAD,
        Kind.ROUTE,
    } == NO_PERSONAL_DATA
    for kind in Kind:
        assert sealed_by_default(kind) is (kind not in NO_PERSONAL_DATA)
        assert not sealed_by_default(kind, public=True)


def _fixed(seed: int) -> tuple[X25519PrivateKey, bytes]:
    private = X25519PrivateKey.from_private_bytes(bytes(range(seed, seed + 32)))
    return private, private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


# sealed by the previous implementation (one keyed HMAC per derivation), from the keys above
_OLD_DIRECT = "010feae689f28f99067e6a05824e5b8c9c99cad1557289b9d8545f820d35e143277986781f4fb041"
_OLD_WRAPPED = (
    "02022441337341454ea1cac81d6586bacc678960aa154174d7bdef968aea7a011b1089752d68f579be3e51da68e2c2a0ad18cd2e"
    "75bfd41a10b6e302d8826e36fd1bf022"
)


def test_payloads_sealed_before_the_cached_pad_states_still_open_and_seal_the_same() -> None:
    (a, _), (b, b_public), (c, c_public) = _fixed(0), _fixed(32), _fixed(64)
    sender, first, second = b"A" * 8, b"B" * 8, b"C" * 8
    keys = {sender: _fixed(0)[1], first: b_public, second: c_public}
    direct = Context(sender, first, 3, 1_795_000_000, 7)
    wrapped = Context(sender, BROADCAST, 4, 1_795_000_000, 8)
    assert SealingKey(b, first).open(bytes.fromhex(_OLD_DIRECT), direct, keys) == b"Jens Hansen 010203-1234"
    for private, node in ((b, first), (c, second), (a, sender)):
        assert SealingKey(private, node).open(bytes.fromhex(_OLD_WRAPPED), wrapped, keys) == b"Beboer med ilt"
    # DIRECT is deterministic: the same key schedule gives the same bytes
    resealed = SealingKey(a, sender).seal_direct(b"Jens Hansen 010203-1234", b_public, direct)
    assert resealed.hex() == _OLD_DIRECT


def test_wrapped_slots_are_the_rfc_hkdf_derivation_each_reader_computes() -> None:
    """The written-out loop (cached pad states, all slots XORed at once) gives each reader exactly the
    slot that plain HKDF-SHA256 from its pair secret gives, computed here with the standard library."""
    (a, _), readers = _fixed(0), [_fixed(32), _fixed(64), _fixed(96)]
    ids = [bytes([n]) * 8 for n in range(1, 4)]
    context = Context(b"A" * 8, BROADCAST, 4, 1_795_000_000, 8)
    sealed = SealingKey(a, b"A" * 8).seal_wrapped(
        b"Beboer med ilt", [(node, public) for node, (_, public) in zip(ids, readers, strict=True)], context
    )
    content_keys = set()
    for n, (node, (private, _)) in enumerate(zip(ids, readers, strict=True)):
        shared = private.exchange(a.public_key())
        prk = hmac.digest(b"beredt seal v2", shared, "sha256")
        derived = hmac.digest(prk, b"beredt seal v2 wrap" + context.encode() + node + b"\x01", "sha256")
        slot = sealed[2 + n * SLOT_SIZE : 2 + (n + 1) * SLOT_SIZE]
        assert slot[:2] == derived[:2]  # the hint, in clear
        content_keys.add(bytes(x ^ y for x, y in zip(slot[2:], derived[2:SLOT_SIZE], strict=True)))
    assert len(content_keys) == 1  # every reader unwraps the same content key
    body_key = hmac.digest(content_keys.pop(), b"beredt seal v2 content\x01", "sha256")
    body = sealed[2 + 3 * SLOT_SIZE :]
    assert ChaCha20Poly1305(body_key).decrypt(bytes(12), body, context.encode()) == b"Beboer med ilt"


def test_pair_keys_kept_are_bounded_and_a_dropped_peer_is_derived_again() -> None:
    sealer = SealingKey(SENDER.sealing_private, SENDER.node_id, keep=3)
    context = Context(SENDER.node_id, BROADCAST, Kind.SITREP, NOW, 9)
    readers = [(p.node_id, p.sealing_public) for p in PEOPLE[:5]]
    sealed = sealer.seal_wrapped(b"Status fra Lindely", readers, context)
    assert sealer.kept_pairs == 3
    # the first reader's pair key was dropped (the oldest first); sealing to it again derives it anew
    again = sealer.seal_wrapped(b"Status fra Lindely", readers[:1], context)
    assert sealer.kept_pairs == 3
    for payload in (sealed, again):
        assert key_of(PEOPLE[0]).open(payload, context, KEYS) == b"Status fra Lindely"
