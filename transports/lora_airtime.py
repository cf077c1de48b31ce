"""LoRa time on air per Meshtastic modem preset, and the rolling-hour airtime budget that spends it.

Theory of operation: the Semtech formula (SX1276 datasheet §4.1.1.7, AN1200.13) gives the time a LoRa
packet occupies the channel from spreading factor SF, bandwidth BW, coding rate 4/(4+CR), preamble length
and payload length PL (explicit header, CRC on, low-data-rate optimisation when a symbol lasts 16 ms or
more)::

    T_sym      = 2^SF / BW
    T_preamble = (n_preamble + 4.25) * T_sym
    n_payload  = 8 + max(ceil((8 PL - 4 SF + 28 + 16) / (4 (SF - 2 DE))) * (CR + 4), 0)
    T_air      = T_preamble + n_payload * T_sym

Meshtastic uses a 16-symbol preamble and puts a 16-byte header in front of the encoded ``Data`` protobuf
(``src/mesh/RadioInterface.cpp``, ``src/mesh/airtime.cpp``). EU 868 allows a node 10 % duty cycle: 360 s of
transmission per rolling hour; the firmware refuses beyond it with ``DUTY_CYCLE_LIMIT``.

``AirtimeBudget`` keeps what a node has sent in the last hour and decides, per priority, whether another
packet may go now: routine and normal traffic stop early so that a share of the hour is always left for
urgent and life-safety traffic, and life-safety may go while anything at all is left. Pure logic: time
is passed in by the caller.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass

from hub.core.frame import Priority

MESH_HEADER_LEN = 16
"""Meshtastic's on-air packet header (dest, sender, id, flags, channel hash, next hop, relay node)."""
DATA_OVERHEAD = 8
"""Protobuf tags and lengths of ``Data{portnum, payload, bitfield}`` around an application payload of
128-233 bytes (the firmware adds the two-byte bitfield to every packet a node originates)."""
EU868_HOURLY_LIMIT = 360.0
"""Seconds of transmission per rolling hour a node may use on EU 868 (10 % duty cycle)."""
WINDOW = 3600.0


class ModemPreset(enum.Enum):
    """Meshtastic modem presets as (spreading factor, bandwidth in Hz, coding rate denominator - 4)."""

    SHORT_TURBO = (7, 500_000, 1)
    SHORT_FAST = (7, 250_000, 1)
    SHORT_SLOW = (8, 250_000, 1)
    MEDIUM_FAST = (9, 250_000, 1)
    MEDIUM_SLOW = (10, 250_000, 1)
    LONG_FAST = (11, 250_000, 1)
    LONG_MODERATE = (11, 125_000, 4)
    LONG_SLOW = (12, 125_000, 4)

    @property
    def spreading_factor(self) -> int:
        return self.value[0]

    @property
    def bandwidth(self) -> int:
        return self.value[1]

    @property
    def coding_rate(self) -> int:
        return self.value[2]

    def symbol_time(self) -> float:
        return float(2**self.spreading_factor) / self.bandwidth


def time_on_air(phy_payload_len: int, preset: ModemPreset, *, preamble: int = 16) -> float:
    """Seconds a LoRa packet of ``phy_payload_len`` bytes occupies the channel (Semtech formula)."""
    if phy_payload_len < 0 or phy_payload_len > 255:
        raise ValueError(f"a LoRa packet carries 0-255 bytes, not {phy_payload_len}")
    sf = preset.spreading_factor
    t_sym = preset.symbol_time()
    low_rate = 1 if t_sym >= 0.016 else 0
    numerator = 8 * phy_payload_len - 4 * sf + 28 + 16
    symbols = 8 + max(math.ceil(numerator / (4 * (sf - 2 * low_rate))) * (preset.coding_rate + 4), 0)
    return (preamble + 4.25) * t_sym + symbols * t_sym


def packet_airtime(app_payload_len: int, preset: ModemPreset) -> float:
    """Time on air of one Meshtastic packet carrying ``app_payload_len`` application bytes."""
    return time_on_air(min(255, app_payload_len + MESH_HEADER_LEN + DATA_OVERHEAD), preset)


def preset_from_name(name: str) -> ModemPreset:
    """The preset called ``name`` (e.g. ``LONG_FAST``); raises ``ValueError`` listing the valid names."""
    try:
        return ModemPreset[name.upper()]
    except KeyError:
        valid = ", ".join(p.name for p in ModemPreset)
        raise ValueError(f"ukendt modem-preset {name!r}; forventede en af {valid}") from None


# Share of the hourly budget each priority may fill before it has to wait; the rest is kept for higher
# priorities so that a routine flood can never lock a life-safety message out of the hour.
PRIORITY_CEILING: dict[int, float] = {
    Priority.ROUTINE: 0.6,
    Priority.NORMAL: 0.8,
    Priority.URGENT: 1.0,
    Priority.LIFE_SAFETY: 1.0,
}


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether a packet may go now; if not, ``retry_after`` seconds until it may."""

    allowed: bool
    retry_after: float = 0.0


class AirtimeBudget:
    """Transmissions of the last hour and the per-priority decision whether one more fits.

    ``limit`` is the seconds of airtime this node allows itself per rolling hour. Times are any monotonic
    seconds supplied by the caller.
    """

    def __init__(self, limit: float) -> None:
        if limit <= 0:
            raise ValueError("airtime budget must be positive")
        self.limit = limit
        self._spent: deque[tuple[float, float]] = deque()
        self._total = 0.0

    def used(self, now: float) -> float:
        """Seconds of airtime spent in the hour up to ``now``."""
        self._expire(now)
        return max(self._total, 0.0)

    def record(self, now: float, airtime: float) -> None:
        """Account a transmission of ``airtime`` seconds made at ``now``."""
        self._expire(now)
        self._spent.append((now, airtime))
        self._total += airtime

    def decide(self, now: float, airtime: float, priority: int) -> Decision:
        """May a packet of ``airtime`` seconds at ``priority`` go at ``now``?

        Each priority may fill the hour up to its ceiling (``PRIORITY_CEILING``); life-safety may also go
        when it overshoots the budget a little, as long as some of the budget is left, because a message
        about a life is worth a small overrun of a self-imposed margin (the radio's legal limit still holds).
        """
        used = self.used(now)
        ceiling = self.limit * PRIORITY_CEILING.get(int(priority), PRIORITY_CEILING[Priority.NORMAL])
        if used + airtime <= ceiling:
            return Decision(True)
        if int(priority) >= Priority.LIFE_SAFETY and used < self.limit:
            return Decision(True)
        return Decision(False, self._wait_until_fits(now, used, airtime, ceiling))

    def _wait_until_fits(self, now: float, used: float, airtime: float, ceiling: float) -> float:
        """Seconds until enough old transmissions leave the window for ``airtime`` to fit ``ceiling``."""
        excess = used + airtime - ceiling
        if airtime > ceiling:
            return WINDOW
        freed = 0.0
        for at, spent in self._spent:
            freed += spent
            if freed >= excess:
                return max(at + WINDOW - now, 0.0)
        return WINDOW

    def _expire(self, now: float) -> None:
        while self._spent and self._spent[0][0] <= now - WINDOW:
            _, spent = self._spent.popleft()
            self._total -= spent
        if not self._spent:
            self._total = 0.0
