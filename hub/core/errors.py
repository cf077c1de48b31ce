"""The one exception hierarchy of Beredt.

Every error Beredt raises on purpose is a ``BeredtError``. Library exceptions (aiohttp, paho, pyserial,
meshtastic, sqlite) are mapped to these at the module boundary with ``raise ... from exc`` so callers
only ever catch ours, and each carries structured fields for logs and counters::

    BeredtError
    ├── ConfigError             broken or missing configuration (file, key, what is expected)
    ├── ProtocolError           bytes that are not a valid frame, fragment, PDU or AT response
    ├── TrustError              a well-formed frame we refuse (reason: a RefusalReason value)
    ├── SealError               a sealed payload that cannot be sealed or opened
    │   └── DataErased          stored data whose day key was destroyed (retention ended, or erased)
    ├── StoreError              the durable store failed
    │   ├── StoreFull           quota or disk exhausted and nothing could be evicted
    │   ├── StoreMissing        the store that held this hub's messages is gone or empty
    │   └── StoreHeld           another process (the running hub) holds the store's file
    ├── RoutingError            no route to a recipient, unknown recipient or peer
    ├── TransportError          a link could not carry a frame (transport, peer)
    │   ├── LinkDown            the link or the peer is unreachable now: retry later or elsewhere
    │   ├── FrameTooLarge       the frame exceeds the link's MTU: fragment it
    │   ├── BudgetExhausted     airtime, duty cycle, rate or credit budget spent (retry_after seconds)
    │   ├── DeliveryRefused     the far side or the network refused the frame for good (reason)
    │   └── TransportClosed     the transport was closed; using it is a programming error
    ├── ModemError              a serial modem misbehaved (device, command, code)
    │   ├── CommandTimeout      no final result within the command's deadline
    │   ├── CmeError            the modem answered ``+CME ERROR: <code>`` or ``ERROR``
    │   └── DeviceGone          the serial device vanished (unplugged) mid-command
    ├── AuthError               console login refused or session expired (forbidden: CSRF token or role)
    └── DrillError              the drill could not set up its world, or a stage did not hold
"""

from __future__ import annotations

import enum


class BeredtError(Exception):
    """Base of every error Beredt raises on purpose."""


class ConfigError(BeredtError):
    """The configuration is missing or wrong; the message names the file, the key and the fix."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None) -> None:
        self.file = file
        self.key = key
        self.message = message
        where = ": ".join(part for part in (file, key) if part)
        super().__init__(f"{where}: {message}" if where else message)

    def in_file(self, file: str) -> ConfigError:
        """The same error located in ``file``, for code that reads a table without knowing its file."""
        return ConfigError(self.message, file=file, key=self.key)


class UsageError(BeredtError):
    """A command used the wrong way (a missing field, a value of the wrong form); the message says how."""


class ProtocolError(BeredtError):
    """Bytes that do not decode: a malformed frame, fragment, PDU or modem response."""


class RefusalReason(enum.StrEnum):
    """Why an inbound frame was refused; used as counter names and in logs."""

    MALFORMED = "malformed"
    OVERSIZE = "oversize"
    UNKNOWN_SENDER = "unknown-sender"
    BAD_SIGNATURE = "bad-signature"
    REPLAYED = "replayed"
    EXPIRED = "expired"
    NOT_ALLOWED = "not-allowed"
    HOP_LIMIT = "hop-limit"
    NO_ROUTE = "no-route"
    ACK_NOT_FROM_RECIPIENT = "ack-not-from-recipient"
    """An end-to-end ack signed by someone other than the acknowledged message's recipient."""
    REASSEMBLY_LIMIT = "reassembly-limit"
    """A fragment whose set would grow larger than any frame can be."""
    HOP_ACK_NOT_FROM_HOP = "hop-ack-not-from-hop"
    """A hop ack signed by a node the acknowledged frame was never handed to."""
    REVOKED = "revoked"
    """A sender the municipality's signed roster revokes."""
    ROSTER_FORGED = "roster-forged"
    """A roster version not signed by the municipality's root key (or not decodable)."""
    ROSTER_STALE = "roster-stale"
    """A roster version older than the one this hub holds: a replay cannot undo a revocation."""
    OUT_OF_SCOPE = "out-of-scope"
    """A node of a cross-certified municipality whose role or groups our root's cross-certificate excludes."""
    ADDRESS_CARD = "address-card"
    """An address card that is forged, another node's, expired or older than one already taken: the
    frame it came with is kept, no address is learned from it."""
    ROUTE = "route"
    """A route announcement relayed, from no neighbour, older than the last one taken, or undecodable:
    nothing in it is learned."""


class TrustError(BeredtError):
    """A well-formed frame that trust rules refuse (unknown sender, forged, replayed, expired...)."""

    def __init__(self, reason: RefusalReason, detail: str = "") -> None:
        self.reason = reason
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)


class SealError(BeredtError):
    """A payload could not be sealed to its recipient or opened by us."""


class DataErased(SealError):
    """Stored data whose day key is destroyed: its retention ended (``hub.core.at_rest``)."""


class StoreError(BeredtError):
    """The durable store failed (I/O error, corruption, full disk)."""


class StoreFull(StoreError):
    """The store's quota or the disk is exhausted and nothing of lower priority could be evicted."""


class StoreMissing(StoreError):
    """The hub had a store, and it is now missing or empty: starting would silently drop what it held."""


class StoreHeld(StoreError):
    """Another process holds the store's file: the running hub opens it for itself alone (``unix-excl``)."""


class RoutingError(BeredtError):
    """No route to the recipient, or the recipient or peer is unknown."""


class TransportError(BeredtError):
    """A link could not carry a frame. ``transport`` and ``peer`` say which link and which address."""

    def __init__(self, message: str, *, transport: str = "", peer: str | None = None) -> None:
        self.transport = transport
        self.peer = peer
        prefix = f"{transport}" + (f" -> {peer}" if peer else "")
        super().__init__(f"{prefix}: {message}" if prefix else message)


class LinkDown(TransportError):
    """The link or the peer cannot be reached now; the frame may be retried later or elsewhere."""


class FrameTooLarge(TransportError):
    """The frame is larger than the link's MTU; the caller must fragment it."""


class BudgetExhausted(TransportError):
    """Airtime, duty-cycle, rate or credit budget is spent; ``retry_after`` is in seconds."""

    def __init__(
        self, message: str, *, transport: str = "", peer: str | None = None, retry_after: float = 60.0
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, transport=transport, peer=peer)


class DeliveryRefused(TransportError):
    """The far side or the network refused the frame for good; ``reason`` is the link's own code."""

    def __init__(
        self, message: str, *, transport: str = "", peer: str | None = None, reason: str = ""
    ) -> None:
        self.reason = reason
        super().__init__(message, transport=transport, peer=peer)


class TransportClosed(TransportError):
    """The transport has been closed; using it afterwards is a programming error."""


class ModemError(BeredtError):
    """A serial modem failed a command. ``device``, ``command`` and ``code`` locate the failure."""

    def __init__(self, message: str, *, device: str = "", command: str = "", code: int | None = None) -> None:
        self.device = device
        self.command = command
        self.code = code
        detail = " ".join(part for part in (device, repr(command) if command else "") if part)
        super().__init__(f"{detail}: {message}" if detail else message)


class CommandTimeout(ModemError):
    """The modem gave no final result within the command's deadline."""


class CmeError(ModemError):
    """The modem answered ``ERROR`` or ``+CME ERROR: <code>`` (``code`` is None for plain ERROR)."""


class DeviceGone(ModemError):
    """The serial device disappeared (unplugged, powered off) while in use."""


class AuthError(BeredtError):
    """Login refused or session unknown or expired (log in again), or, with ``forbidden``, a wrong CSRF token
    or a role that may not do this (logging in again will not help). ``retry_after`` (seconds) says that
    logins are held back for now: locked out after wrong passwords, or too many logins at once."""

    def __init__(self, message: str, *, forbidden: bool = False, retry_after: float | None = None) -> None:
        self.forbidden = forbidden
        self.retry_after = retry_after
        super().__init__(message)


class DrillError(BeredtError):
    """The drill could not set up its world or a stage did not hold (the message says which and why)."""
