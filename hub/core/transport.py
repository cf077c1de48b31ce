"""The transport contract: what the router may ask of a link, and nothing more.

A transport moves opaque byte strings (encoded frames or fragments, never larger than its MTU) to a
transport-level address (a URL, an MQTT node topic, a mesh node number, an ISSI, an IMEI) and reports
what arrives and how the link fares. It never looks inside a frame: fragmentation, signatures, acks,
retries and policy are the hub's. Transports are opened by ``transports.registry.open_transport``,
already started; ``aclose()`` stops them.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from hub.core.errors import TransportError
from hub.core.ranked import FrameRank, unranked


class Cost(enum.IntEnum):
    """How dear a link is to use; the policy keeps routine traffic off the dear ones."""

    FREE = 0  # internet, MQTT
    METERED = 1  # shared airtime or a rate limit (LoRa duty cycle, SDS control channel)
    PAID = 2  # money per message (satellite credits)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the router needs to know to choose a link and size frames for it."""

    mtu: int
    """Largest byte string ``send`` accepts; the hub fragments frames to fit."""
    link_ack: bool
    """True when a returning ``send`` proves the next hub received the bytes (e.g. a Meshtastic
    routing ACK or an SDS-TL delivery report), so the hub's own hop ack can be skipped."""
    cost: Cost = Cost.FREE
    bytes_per_second: float = 1_000_000.0
    """Sustained rate the link can carry, for drain-time estimates."""
    broadcast: bool = False
    """True when ``send`` to ``BROADCAST_ADDRESS`` reaches every node on the link."""
    address_cards: bool = False
    """True when the link carries the sender's signed address card with what it receives
    (``Received.meta["card"]``, from ``TransportContext.address_card``): the hub then learns a peer's
    address on it only from a valid card, never from ``Received.source``."""
    node_id_addresses: bool = False
    """True when a node's address on the link is its node id (MQTT, where the topic names the node): the
    hub then takes a peer's address from the signed frame's sender, never from ``Received.source``, which
    is only what the publisher claims."""
    sources_vouched: bool = True
    """False when ``Received.source`` is only what anyone who reaches the link claims (a satellite webhook
    with no provider secret to check): the hub then learns no address from it, since a fresh signed frame
    seen elsewhere, posted with an address of the poster's choosing, would steer that peer's traffic."""
    entry: tuple[str, ...] = ()
    """Addresses that reach a neighbour on the link before any is known, where the link has no broadcast:
    a hub with no neighbour there announces itself to them (``hub.relay.route_learning``). A satellite
    modem's every MO goes to the provider, which hands it to the webhook configured for that modem
    (``"cloud"``); a SINE link's ``entry`` ISSIs are the relay radios a care home is enrolled with."""


BROADCAST_ADDRESS = "*"


@dataclass(frozen=True, slots=True)
class Received:
    """Bytes that arrived. ``source`` is the sender's address on this link, usable with ``send``."""

    source: str
    data: bytes
    meta: Mapping[str, Any] = field(default_factory=dict)
    """Link details worth logging (RSSI, SNR, hop count, arrival topic); never trusted for security,
    except a signed address card (``"card"``) once the hub has checked its signature. ``"remote"`` is
    the connection's source address where the link has one (an IPv6 address as its /64): what the hub
    holds for unsigned bytes (fragments) is counted against it, because ``source`` may be the sender's
    own claim."""


@dataclass(frozen=True, slots=True)
class LinkChanged:
    """The link (``peer`` None) or the reachability of one peer address changed."""

    up: bool
    reason: str
    peer: str | None = None


@dataclass(frozen=True, slots=True)
class TimeHint:
    """A time reading from an outside source (GPS via the radio, Iridium network time)."""

    unix_time: float
    source: str


@dataclass(frozen=True, slots=True)
class PersonalAlarm:
    """A registered Meshtastic handheld's button or canned message, heard by this link's radio.

    Not a frame and not signed by a hub: the radio's firmware decrypted it as a direct message to our
    node with the public key it holds for ``node``, and the link checked that node and key against the
    handheld register (``hub.core.handhelds``) and its rate limit. The hub signs it on as CITIZEN_ALARM."""

    node: int
    public_key: bytes
    text: str
    port: str
    """``text`` (a canned or typed message) or ``alert`` (the firmware's alert button)."""


@dataclass(frozen=True, slots=True)
class TeamText:
    """A short text from a home-care team's registered handheld (LoRa) or terminal (SINE).

    Not a frame and not signed by a hub: the link checked the sender against its register of team
    devices as far as its network authenticates senders (a PKI direct message from the registered node
    and key; a TETRA terminal's ISSI). The citizens' follow-up reads it as a coded visit
    (``hub.citizens.visit_codes``) and answers through ``reply``, on the same link, to the same device."""

    sender: str
    """The device as its network names it: ``!a1b2c3d4`` or a TETRA ISSI."""
    team: str
    """The district of the team the device is registered to."""
    text: str
    key: str
    """The message's own identity on its network (sender and packet id): a repeat has the same key."""
    reply: Callable[[str], Awaitable[None]]


TransportEvent = Received | LinkChanged | TimeHint | PersonalAlarm | TeamText


@runtime_checkable
class Transport(Protocol):
    """A link to other hubs.

    ``send`` returns once the link has taken the bytes (or, with ``capabilities.link_ack``, once the
    next hub has them). It raises ``FrameTooLarge`` above the MTU, ``LinkDown`` when the link or peer
    is unreachable now, ``BudgetExhausted`` when airtime/credit/rate is spent, ``DeliveryRefused`` when
    the far side refuses for good, and ``TransportClosed`` after ``aclose``. A cancelled ``send`` may or
    may not have put the bytes on the air; the hub's acks settle which.

    ``events`` yields every ``Received``, ``LinkChanged``, ``TimeHint``, ``PersonalAlarm`` and
    ``TeamText`` until the transport closes; there is one consumer (the hub). ``probe`` checks cheaply
    whether ``dest`` is reachable now and raises ``LinkDown`` if not; it never spends paid credit.
    ``aclose`` is idempotent, releases ports and devices even when cancelled, and ends ``events``.
    """

    name: str
    capabilities: Capabilities

    async def send(self, dest: str, data: bytes, *, priority: int = 1) -> None: ...

    def events(self) -> AsyncIterator[TransportEvent]: ...

    async def probe(self, dest: str) -> None: ...

    async def aclose(self) -> None: ...


OutFrame = tuple[bytes, int]
"""A frame to send and its priority, as ``Transport.send`` takes them."""


@runtime_checkable
class SendsBatches(Protocol):
    """A transport that carries many frames to one address in one go (the internet link: one POST).

    ``send_batch`` hands over ``frames`` (each within the MTU) at once, waits for all of them under one
    deadline and returns each frame's outcome in order: None when the link took it (as ``send``
    returning), else the ``TransportError`` that ``send`` would have raised for it. It raises nothing
    for a frame: one refused frame or a failed batch fails only the frames it concerns, and the others
    are reported as sent. Cancelled, it may or may not have put some of them on the wire."""

    async def send_batch(self, dest: str, frames: Sequence[OutFrame]) -> list[TransportError | None]: ...


@runtime_checkable
class AsksTime(Protocol):
    """A transport that can put a time challenge to a peer (the internet link, in its probe)."""

    async def ask_time(self, dest: str, nonce: bytes) -> str | None:
        """The peer's encoded signed answer to ``nonce`` (``hub.core.time_answer``), or None if it gave
        none (an older hub, or one without a trusted clock); ``LinkDown`` if unreachable."""
        ...


@dataclass(frozen=True, slots=True)
class TransportContext:
    """What the composition root hands every transport factory."""

    node_id: str
    """This hub's node id, 16 hex digits."""
    data_dir: Path
    """Where the transport may keep state (e.g. learned addresses, budget counters)."""
    logger: logging.Logger
    config_dir: Path | None = None
    """The folder of the config file, for resolving relative paths in link options (certificates)."""
    address_card: Callable[[str, str], str] | None = None
    """This node's signed address card for (link kind, address), encoded (``hub.core.address_card``),
    renewed by the hub as time passes; None where no hub runs (a transport tested alone)."""
    time_answer: Callable[[bytes], str | None] | None = None
    """This node's signed answer to a time challenge's nonce, encoded (``hub.core.time_answer``), or
    None when it has none to give; None where no hub runs."""
    frame_rank: FrameRank = unranked
    """How urgent a frame is (``hub.core.ranked``), given by the hub: a transport that queues what it
    receives, or what it sends, may serve acks first without knowing message kinds."""
