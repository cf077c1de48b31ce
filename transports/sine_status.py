"""Settings of a SINE link: its ``[links.<name>]`` options, the status plan, and the status encoding.

``parse_options`` validates the table the hub hands ``transports.sine.open_transport`` and raises
``ConfigError`` naming the key and what is expected.

A status SDS (TETRA AI service 13) carries one 16-bit number; 0x8000-0xFFFF are the user range, whose
meaning the network operator and the users agree as a *status plan* (ETSI EN 300 392-5; set in each radio's
codeplug). Beredt takes the plan from configuration (``status_plan = { ok = 0x8001, ... }``) so the same
names work on every hub. A received status is handed to the hub as ``Received.data = b"\\x00" + value``
(big-endian, 3 bytes): a frame never starts with 0x00 (frames start with their version, fragments with 2),
so the hub can tell a status from a frame by the first byte; ``meta`` carries ``status`` (the plan name,
or None for a value outside the plan) and ``value``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hardware import tetra_pei as pei
from hardware.tetra_driver import PidStep
from hub.core.errors import ProtocolError
from hub.core.options import Options

STATUS_MARKER = 0x00
STATUS_RANGE = range(0x8000, 0x10000)


def encode_status(value: int) -> bytes:
    """The ``Received.data`` of a status SDS."""
    if value not in STATUS_RANGE:
        raise ValueError(f"status value 0x{value:X} outside 0x8000-0xFFFF")
    return bytes([STATUS_MARKER]) + value.to_bytes(2, "big")


def decode_status(data: bytes) -> int:
    """The value of a status ``Received.data``; ``ProtocolError`` for anything else."""
    if len(data) != 3 or data[0] != STATUS_MARKER:
        raise ProtocolError(f"not a SINE status: {data[:8].hex()}")
    value = int.from_bytes(data[1:], "big")
    if value not in STATUS_RANGE:
        raise ProtocolError(f"status value 0x{value:04X} outside the user range")
    return value


class StatusPlan:
    """Names to 16-bit values and back; validated from the ``status_plan`` table of a link."""

    def __init__(self, values: Mapping[str, int]) -> None:
        self._by_name = dict(values)
        self._by_value = {value: name for name, value in values.items()}

    @classmethod
    def from_options(cls, table: Options) -> StatusPlan:
        """The plan from the ``status_plan`` table ``table`` (name = 0x8000..0xFFFF)."""
        values: dict[str, int] = {}
        for name in table.table:
            value = table.integer(
                name, 0, low=0x8000, high=0xFFFF, what="en brugerstatusværdi fra 0x8000 til 0xFFFF"
            )
            if value in values.values():
                raise table.error(
                    name, f"værdien 0x{value:04X} er brugt to gange; giv hver status sin egen værdi"
                )
            values[str(name)] = value
        return cls(values)

    @property
    def names(self) -> list[str]:
        return sorted(self._by_name)

    def value(self, name: str) -> int:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(
                f"status {name!r} is not in the plan ({', '.join(self.names) or 'empty'})"
            ) from None

    def name(self, value: int) -> str | None:
        return self._by_value.get(value)


BAUD_RATES = (9600, 19200, 38400, 57600, 115200)
_KEYS = {
    "kind", "device", "baud", "pid", "status_plan", "max_per_minute", "timeout", "mtu",
    "max_queue_seconds", "health_interval", "pid_fallback", "busy_seconds", "command_timeout", "peer_hold",
    "team_texts", "entry",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class SineOptions:
    device: str
    baud: int | None
    """None: probe the radio's rate with ``AT`` at each of ``BAUD_RATES``."""
    pid: int = 0xC8
    status_plan: StatusPlan = field(default_factory=lambda: StatusPlan({}))
    max_per_minute: float = 4.0
    timeout: float = 90.0
    """Seconds a frame waits for its delivery report once its turn on the control channel came."""
    mtu: int | None = None
    max_queue_seconds: float = 600.0
    health_interval: float = 30.0
    pid_fallback: tuple[PidStep, ...] = ("range",)
    """What to route when the radio refuses ``pid``: "range" (selector 24/25) and/or standard PIDs."""
    busy_seconds: float = 20.0
    """How long a busy radio (``+CME ERROR: 36/37/42``) is asked again before the SDS is refused."""
    command_timeout: float = 10.0
    """Seconds an AT command may go unanswered before the radio counts as mute (default ``min(10,
    timeout)``): a frame's ``AT+CMGS`` or a health check's ``AT+CREG?`` left unanswered this long takes
    the link down."""

    peer_hold: float = 300.0
    """Seconds a peer counts as down after its SDS failed (not registered, not reachable, or no delivery
    report within ``timeout``), unless it is heard from sooner."""
    team_texts: bool = False
    """Read text messages typed on team terminals listed in ``handhelds.toml`` (``transports.sine_texts``)."""
    entry: tuple[str, ...] = ()
    """ISSIs (or TSIs) of relay radios a hub with no neighbour on this link announces itself to
    (``Capabilities.entry``): SDS have no broadcast, so a SINE-only care home is told one at enrolment."""

    @property
    def command_deadline(self) -> float:
        return self.command_timeout


def parse_options(name: str, options: Mapping[str, Any]) -> SineOptions:
    table = Options(options, f"links.{name}", known=_KEYS)
    device = table.required_text("device", "radioens serielle enhed, fx /dev/serial/by-id/...")
    baud = table.raw("baud", "auto")
    if baud != "auto" and baud not in BAUD_RATES:
        raise table.error(
            "baud", f'forventede "auto" eller en af {", ".join(map(str, BAUD_RATES))}, ikke {baud!r}'
        )
    plan = table.table_of("status_plan", what="en tabel med navn = 0x8000..0xFFFF")
    timeout = table.number("timeout", 90.0, above=0)
    fallback = table.raw("pid_fallback", ["range"])
    steps: list[PidStep] = []
    for step in fallback if isinstance(fallback, list) else [None]:
        if step != "range" and not (
            isinstance(step, int) and not isinstance(step, bool) and 0 <= step <= 0xFF
        ):
            raise table.error(
                "pid_fallback",
                f'forventede en liste af "range" og PID-numre 0-255, fx ["range", 130], ikke {fallback!r}',
            )
        steps.append("range" if step == "range" else step)
    return SineOptions(
        device=device,
        baud=None if baud == "auto" else int(baud),
        pid=table.integer(
            "pid", 0xC8, low=0xC0, high=0xFE, what="et privat SDS-TL-protokol-id 0xC0-0xFE (192-254)"
        ),
        status_plan=StatusPlan.from_options(plan),
        max_per_minute=table.number("max_per_minute", 4.0, above=0),
        timeout=timeout,
        mtu=table.optional_integer("mtu", low=16, high=252, what="et heltal 16-252 (bytes)"),
        max_queue_seconds=table.number("max_queue_seconds", 600.0, above=0),
        health_interval=table.number("health_interval", 30.0, above=0),
        pid_fallback=tuple(steps),
        busy_seconds=table.number("busy_seconds", 20.0, above=0),
        command_timeout=table.number("command_timeout", min(10.0, timeout), above=0),
        peer_hold=table.number("peer_hold", 300.0, above=0),
        team_texts=table.flag("team_texts", False),
        entry=table.names(
            "entry", valid=_is_radio_address, what="ISSI'er (1-8 cifre) eller TSI'er (17 cifre)"
        ),
    )


def _is_radio_address(value: str) -> bool:
    return value.isdigit() and (1 <= len(value) <= pei.SSI_DIGITS or len(value) == pei.TSI_DIGITS)
