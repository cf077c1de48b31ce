"""What a fake radio's firmware does with public-key (PKI) direct messages, from ``Router.cpp``.

Sending (``perhapsEncode`` / ``wouldEncryptWithPKC``): a packet this node originates, addressed to one
node (not a broadcast), on any port but traceroute, node info, routing and position, is encrypted with
X25519 + AES-CCM to the destination's public key when the node database holds that key; it goes out on
channel hash 0 marked ``pki_encrypted``. Otherwise it is channel-encrypted as before.

Receiving (``perhapsDecode``): ``pki_encrypted`` and ``public_key`` are cleared on every packet from the
air. A packet to this node, not a broadcast, on channel hash 0, is decrypted with the key the node
database holds for its claimed sender; only if that works is it marked ``pki_encrypted`` with that key
copied into ``public_key`` and channel index 0. If it fails, the packet is dropped.

The simulated air carries no ciphertext: a PKI packet on the air carries, in ``public_key``, the public
half of the key pair that really encrypted it (the sender's own), and decryption "works" exactly when
the receiver's node database holds that same key for the claimed sender, which is what the real
Diffie-Hellman secret guarantees. A node that forges another's ``from`` (``forged_dm``) encrypts with its
own key, so its packet fails at the receiver as it would on a real mesh.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from meshtastic.protobuf import mesh_pb2, portnums_pb2

PortNum = portnums_pb2.PortNum
BROADCAST_NUM = 0xFFFFFFFF
NEVER_PKI = frozenset(
    {PortNum.TRACEROUTE_APP, PortNum.NODEINFO_APP, PortNum.ROUTING_APP, PortNum.POSITION_APP}
)
"""Ports ``wouldEncryptWithPKC`` never encrypts with PKI."""
MAX_LORA_PAYLOAD_LEN = 255
MESHTASTIC_HEADER_LENGTH = 16
MESHTASTIC_PKC_OVERHEAD = 12
"""PKI's 8-byte AES-CCM tag and 4-byte extra nonce (``RadioInterface.h``)."""


def new_public_key() -> bytes:
    """The public half of a fresh X25519 key pair, as the firmware makes at first boot."""
    return X25519PrivateKey.generate().public_key().public_bytes_raw()


def seal_outgoing(packet: mesh_pb2.MeshPacket, own_key: bytes | None, dest_key: bytes | None) -> None:
    """Mark ``packet`` (from this node's host) as PKI-encrypted when the firmware would encrypt it so."""
    packet.pki_encrypted = False
    packet.ClearField("public_key")
    if (
        own_key is None
        or dest_key is None
        or packet.to == BROADCAST_NUM
        or packet.decoded.portnum in NEVER_PKI
    ):
        return
    packet.pki_encrypted = True
    packet.public_key = own_key  # stands for "encrypted with the sender's private key"
    packet.channel = 0


def mark_bitfield(packet: mesh_pb2.MeshPacket) -> None:
    """``perhapsEncode`` gives every packet a node originates a ``bitfield`` (ok-to-MQTT, want-response
    bits), so it is always encoded: two bytes of the Data protobuf that the host did not send."""
    packet.decoded.bitfield = packet.decoded.bitfield | (int(packet.decoded.want_response) << 1)


def too_large(packet: mesh_pb2.MeshPacket) -> bool:
    """``perhapsEncode``'s TOO_LARGE: the encoded Data, the 16-byte header and, for PKI, the 12 bytes of
    tag and nonce must fit one 255-byte LoRa packet (the 233-byte payload limit alone is not enough)."""
    overhead = MESHTASTIC_HEADER_LENGTH + (MESHTASTIC_PKC_OVERHEAD if packet.pki_encrypted else 0)
    return len(packet.decoded.SerializeToString()) + overhead > MAX_LORA_PAYLOAD_LEN


def open_incoming(packet: mesh_pb2.MeshPacket, my_node: int, sender_key: bytes | None) -> bool:
    """Decrypt ``packet`` as the receiver ``my_node`` whose node database holds ``sender_key`` for its
    sender; False when the firmware would drop it (a PKI packet it cannot decrypt)."""
    if packet.to != my_node and packet.to != BROADCAST_NUM:
        return True  # a relay forwards the ciphertext it cannot read; only the destination decrypts
    encrypted_with = bytes(packet.public_key) if packet.pki_encrypted and packet.to == my_node else None
    packet.pki_encrypted = False  # local-only metadata: never taken from the air
    packet.ClearField("public_key")
    if encrypted_with is None:
        return True  # channel-encrypted: the channel key opens it
    if sender_key is None or sender_key != encrypted_with:
        return False
    packet.pki_encrypted = True
    packet.public_key = sender_key
    packet.channel = 0
    return True


def forged_dm(
    claimed_from: int, to: int, port: int, payload: bytes, forger_key: bytes
) -> mesh_pb2.MeshPacket:
    """A direct message claiming to come from ``claimed_from``, encrypted by a node holding ``forger_key``."""
    packet = mesh_pb2.MeshPacket(to=to, id=0x5EED0001, hop_limit=3, hop_start=3, want_ack=True)
    setattr(packet, "from", claimed_from)
    packet.decoded.portnum = PortNum.ValueType(port)
    packet.decoded.payload = payload
    packet.pki_encrypted = True
    packet.public_key = forger_key
    return packet
