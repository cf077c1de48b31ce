"""A simulated Iridium 9603 SBD transceiver (as in a RockBLOCK 9603), as a sans-IO ``DeviceModel``.

Written from Iridium's "ISU AT Command Reference" (the SBD and 9602/9603 chapters) and the RockBLOCK
documentation, not from Beredt's driver, so that the two can disagree. Framing as the modem does it:

* a command line ends with CR only; LF is ignored (a line ended by LF alone is not a command);
* echo is on after power-up and ``AT&F0``/``ATZ`` (``ATE0``/``ATE1``); the echo is the line and its CR;
* verbose results (``ATV1``, the default) are ``\\r\\n<text>\\r\\n``, information lines too; numeric
  results (``ATV0``) are ``<code>\\r`` (0 OK, 4 ERROR) with information as ``<text>\\r\\n``; ``ATQ1``
  suppresses result codes;
* ``AT+SBDWB=<n>`` and ``AT+SBDWT`` answer ``READY`` on its own line; the payload (n bytes and a 2-byte
  checksum, or one text line ended by CR) is then taken raw and answered ``0`` (ok), ``2`` (checksum) or
  ``3`` (size) and the result code;
* ``AT+SBDRB`` answers in binary at once (2-byte length, message, 2-byte checksum), then the result code;
* ``SBDRING`` is unsolicited whenever the gateway rings and ring alerts are on.

Commands: ``AT``, ``E``, ``V``, ``Q``, ``Z``, ``&F0``, ``&K0/3``, ``&D0-3``, ``&W0/1``, ``&Y0/1`` (basic
commands may be chained, ``ATE0V1``), ``+CGMI``/``+GMI``, ``+CGMM``/``+GMM``, ``+CGMR``/``+GMR``,
``+CGSN``/``+GSN``, ``+CSQ``, ``+CSQF``, ``+CRIS``, ``+CRISX``, ``+CIER`` (``+CIEV`` indicator events),
``-MSSTM``, ``-MSGEO``, ``+GEMON``, ``+SBDWB``, ``+SBDWT``, ``+SBDRB``, ``+SBDRT``, ``+SBDIX``/``+SBDIXA``
(with or without a location), ``+SBDD0/1/2``, ``+SBDC``, ``+SBDS``, ``+SBDSX``, ``+SBDTC``, ``+SBDMTA``,
``+SBDAREG``. Quirks a driver must live with: the MO buffer is kept after a successful session (a second
``AT+SBDIX`` sends it again), nothing is accepted while a session runs, the ring-alert flag stays set
until a session succeeds. Not modelled: the 60 s SBDWB/SBDWT timeout (answer ``1``), voice and data calls.

The radio side (signal, network time, sessions) belongs to a ``Constellation``, normally
``simulators.iridium_cloud.IridiumCloud``, which runs each session asynchronously and hands its outcome
back through ``finish_session``. Network time follows the Iridium time eras: a 32-bit count of 90 ms
frames since the era's epoch, ERA2 from 2014-05-11 14:23:55 UTC and ERA3 from 2025-02-14 18:14:17 UTC,
broadcast from ``ERA3_BROADCAST`` (the switch-over Iridium announced for 14 January 2026); ``epoch``
pins one epoch instead.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

MO_MAX = 340  # bytes an MO message may hold
MT_MAX = 270  # bytes the MT buffer holds
TEXT_MAX = 120  # characters AT+SBDWT takes
TICK = 0.09  # seconds per Iridium L-band frame
ERA2 = 1_399_818_235.0  # 2014-05-11T14:23:55Z
ERA3 = 1_739_556_857.0  # 2025-02-14T18:14:17Z
ERA3_BROADCAST = 1_768_348_800.0  # 2026-01-14T00:00:00Z
NUMERIC = {"OK": 0, "ERROR": 4}
EARTH_KM = 6376  # the -MSGEO grid's nominal Earth radius; resolution 4 km
MODEL = "IRIDIUM 9600 Family SBD Transceiver"
REVISION = (
    "Call Processor Version: TA19002",
    "Modem DSP Version: 1.7 svn: 2358",
    "DBB Version: 0x0001 (ASIC)",
    "RFA VersionSRFA2: 0x0007 (SRFA2)",
    "NVM Version: KVS",
    "Hardware Version: BOOT07d4/9603NrvA-D/04/RAW0c",
    "BOOT Version: TA19002 (rev exported)",
)


def checksum(data: bytes) -> bytes:
    """The SBD checksum: the least significant 16 bits of the sum of the bytes, high byte first."""
    return (sum(data) & 0xFFFF).to_bytes(2, "big")


def mo_succeeded(mo_status: int) -> bool:
    """MO status 0-4 means the MO message reached the gateway (5-8 and above fail)."""
    return 0 <= mo_status <= 4


@dataclass(frozen=True, slots=True)
class SessionOutcome:
    """What the constellation and the gateway made of one session."""

    mo_status: int
    mt: bytes | None = None
    mtmsn: int = 0
    mt_queued: int = 0


class Constellation(Protocol):
    """The radio side of a simulated modem: what the sky and the gateway answer."""

    def signal_bars(self) -> int: ...

    def network_time(self) -> float | None: ...

    def start_session(self, modem: Iridium9603, mo: bytes | None) -> None:
        """Begin a session for ``modem``; later call ``modem.finish_session(outcome)``."""
        ...


def era_epoch(unix_time: float) -> float:
    """The epoch the network counts frames from at ``unix_time``."""
    return ERA3 if unix_time >= ERA3_BROADCAST else ERA2


class Iridium9603:
    """The modem's command interpreter and buffers (a ``DeviceModel``)."""

    def __init__(
        self,
        imei: str,
        constellation: Constellation,
        *,
        epoch: float | None = None,
        position: tuple[float, float] = (56.1572, 10.2107),
    ) -> None:
        self.imei = imei
        self.constellation = constellation
        self.epoch = epoch
        """None: the era the network broadcasts at the time; a number pins that epoch."""
        self.position = position
        self.wakeup: Callable[[], None] | None = None
        self.echo = True
        self.verbose = True
        self.quiet = False
        self.ring_alerts = False
        self.registration = 0
        self.indicators = (0, 0, 0)  # +CIER mode, signal events, service events
        self.energy_uah = 0
        self.mo: bytes | None = None
        self.mt = b""
        self.momsn = 0
        self.mtmsn = -1
        self.mt_waiting = 0
        self.in_session = False
        self.sessions = 0
        self.ring_pending = False
        self.ring_time: int | None = None
        self.commands: list[str] = []
        # Fault injection for tests: the next SBDWB payload is judged to carry a bad checksum, the next
        # SBDRB answer has its checksum corrupted, a ring alert comes just before the next SBDRB answer.
        self.corrupt_next_write = False
        self.corrupt_next_read = False
        self.ring_before_next_read = False
        self._input = bytearray()
        self._output = bytearray()
        self._binary_wanted = 0
        self._text_wanted = False

    # -- DeviceModel ------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        if self.in_session:
            return  # the 9603 takes no commands while a session runs
        self._input += data
        while self._input and not self.in_session:
            if self._binary_wanted:
                if len(self._input) < self._binary_wanted:
                    return
                block = bytes(self._input[: self._binary_wanted])
                del self._input[: self._binary_wanted]
                self._binary_wanted = 0
                self._finish_write(block)
                continue
            end = self._input.find(b"\r")
            if end < 0:
                if len(self._input) > 512:
                    self._input.clear()
                    self._result("ERROR")
                return
            raw = bytes(self._input[:end]).replace(b"\n", b"")
            del self._input[: end + 1]
            if self._text_wanted:
                self._text_wanted = False
                self._finish_text(raw)
            elif raw.strip():
                self._command(raw)

    def data_to_send(self) -> bytes:
        out = bytes(self._output)
        self._output.clear()
        return out

    # -- the radio side ---------------------------------------------------------------------------

    def frame_count(self) -> int | None:
        """Iridium system time as the modem holds it: frames since the epoch, 32 bits, or None."""
        now = self.constellation.network_time()
        if now is None:
            return None
        epoch = self.epoch if self.epoch is not None else era_epoch(now)
        return int((now - epoch) / TICK) & 0xFFFF_FFFF

    def finish_session(self, outcome: SessionOutcome) -> None:
        """The constellation's answer to the running ``AT+SBDIX``/``AT+SBDIXA``."""
        if not self.in_session:
            return
        self.in_session = False
        self.sessions += 1
        mt_status, mt_length = 0, 0
        if mo_succeeded(outcome.mo_status):
            if self.mo is not None:
                self.momsn = (self.momsn + 1) & 0xFFFF
            if outcome.mt is not None:
                self.mt = outcome.mt
                self.mtmsn = outcome.mtmsn
                mt_status, mt_length = 1, len(outcome.mt)
            # A successful session answers the ring; a failed one leaves it to be answered.
            self.ring_pending = outcome.mt_queued > 0
            self.mt_waiting = outcome.mt_queued
        else:
            mt_status = 2  # the mailbox check failed with the session
        self._info(
            f"+SBDIX: {outcome.mo_status}, {self.momsn}, {mt_status}, {outcome.mtmsn}, {mt_length}, "
            f"{outcome.mt_queued}"
        )
        self._result("OK")
        self._wake()

    def ring(self) -> None:
        """The gateway holds MT traffic for a registered modem: set the RA flag, and print ``SBDRING``
        if ring alerts are on."""
        if not self.registration:
            return
        self.ring_pending = True
        self.ring_time = self.frame_count()
        if self.ring_alerts and not self.in_session:
            self._info("SBDRING")
            self._wake()

    def indicators_changed(self) -> None:
        """Signal or service changed: ``+CIEV`` events for the indicators ``AT+CIER`` enabled."""
        mode, signal, service = self.indicators
        if not mode:
            return
        bars = self.constellation.signal_bars()
        if signal:
            self._info(f"+CIEV:0,{bars}")
        if service:
            self._info(f"+CIEV:1,{int(bars > 0)}")
        self._wake()

    # -- commands ---------------------------------------------------------------------------------

    def _command(self, raw: bytes) -> None:
        if self.echo:
            self._output += raw + b"\r"
        try:
            line = raw.decode("ascii").strip()
        except UnicodeDecodeError:
            self._result("ERROR")
            return
        self.commands.append(line)
        if line[:2].upper() != "AT":
            self._result("ERROR")
            return
        rest = line[2:]
        extended = next((name for name in _EXTENDED if rest.upper().startswith(name)), None)
        if extended is not None:
            _EXTENDED[extended](self, rest[len(extended) :])
        elif self._basic(rest.upper()):
            self._result("OK")
        else:
            self._result("ERROR")

    def _basic(self, text: str) -> bool:
        """Chained basic commands (``E0V1``, ``&K0``); False, changing nothing, if one is unknown."""
        commands = re.findall(r"(&?[A-Z])(\d*)", text)
        if "".join(name + value for name, value in commands) != text:
            return False
        for name, value in commands:
            known = name in ("Z", "&F") or (name in "EVQ" and value in ("", "0", "1"))
            if not known and (name not in ("&K", "&D", "&W", "&Y") or not value):
                return False
        for name, value in commands:
            if name in ("Z", "&F"):
                self.echo, self.verbose, self.quiet = True, True, False
            elif name in ("E", "V", "Q"):
                setattr(self, {"E": "echo", "V": "verbose", "Q": "quiet"}[name], value == "1")
        return True

    def _answer(self, arg: str, *lines: str) -> None:
        if arg:
            self._result("ERROR")
            return
        for line in lines:
            self._info(line)
        self._result("OK")

    def _manufacturer(self, arg: str) -> None:
        self._answer(arg, "Iridium")

    def _model(self, arg: str) -> None:
        self._answer(arg, MODEL)

    def _revision(self, arg: str) -> None:
        self._answer(arg, *REVISION)

    def _serial(self, arg: str) -> None:
        self._answer(arg, self.imei)

    def _csq(self, arg: str) -> None:
        self._answer(arg, f"+CSQ:{self.constellation.signal_bars()}")

    def _csqf(self, arg: str) -> None:
        self._answer(arg, f"+CSQF:{self.constellation.signal_bars()}")

    def _msstm(self, arg: str) -> None:
        frames = self.frame_count()
        self._answer(arg, "-MSSTM: no network service" if frames is None else f"-MSSTM: {frames:x}")

    def _msgeo(self, arg: str) -> None:
        lat, lon = (math.radians(v) for v in self.position)
        grid = [
            4 * round(EARTH_KM * c / 4)
            for c in (math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat))
        ]
        frames = self.frame_count() or 0
        self._answer(arg, f"-MSGEO: {grid[0]},{grid[1]},{grid[2]},{frames:x}")

    def _gemon(self, arg: str) -> None:
        if arg == "":
            self._answer("", f"+GEMON:{self.energy_uah}")
        elif re.fullmatch(r"=\d{1,8}", arg) and int(arg[1:]) < 1 << 26:
            self.energy_uah = int(arg[1:])
            self._result("OK")
        else:
            self._result("ERROR")

    def _cris(self, arg: str) -> None:
        self._answer(arg, f"+CRIS:000,{int(self.ring_pending)}")

    def _crisx(self, arg: str) -> None:
        stamp = self.ring_time or 0
        self._answer(arg, f"+CRISX:000,{int(self.ring_pending)},{stamp:x}")

    def _cier(self, arg: str) -> None:
        if arg == "?":
            self._answer("", "+CIER:{},{},{},0,0".format(*self.indicators))
            return
        match = re.fullmatch(r"=([01])(?:,([01]))?(?:,([01]))?(?:,([01]))?(?:,([01]))?", arg)
        if match is None:
            self._result("ERROR")
            return
        self.indicators = (int(match.group(1)), int(match.group(2) or 0), int(match.group(3) or 0))
        self._result("OK")
        self.indicators_changed()  # the modem reports the indicators' present state once enabled

    def _sbdwb(self, arg: str) -> None:
        if not re.fullmatch(r"=\d{1,4}", arg):
            self._result("ERROR")
            return
        size = int(arg[1:])
        if not 1 <= size <= MO_MAX:
            self._info("3")
            self._result("OK")
            return
        self._info("READY")
        self._binary_wanted = size + 2

    def _finish_write(self, block: bytes) -> None:
        message, check = block[:-2], block[-2:]
        if self.corrupt_next_write or check != checksum(message):
            self.corrupt_next_write = False
            self._info("2")
        else:
            self.mo = message
            self._info("0")
        self._result("OK")

    def _sbdwt(self, arg: str) -> None:
        if arg == "":
            self._info("READY")
            self._text_wanted = True
        elif arg.startswith("=") and 1 <= len(arg) - 1 <= TEXT_MAX:
            self.mo = arg[1:].encode("ascii")
            self._result("OK")
        else:
            self._result("ERROR")

    def _finish_text(self, raw: bytes) -> None:
        if self.echo:
            self._output += raw + b"\r"
        if not 1 <= len(raw) <= TEXT_MAX:
            self._info("1")
        else:
            self.mo = raw
            self._info("0")
        self._result("OK")

    def _sbdix(self, arg: str) -> None:
        # An optional location, "=[+|-]DDMM.MMM,[+|-]dddmm.mmm", goes to the gateway with the session.
        if arg and not re.fullmatch(r"=[+-]?\d{4}\.\d{1,3},[+-]?\d{5}\.\d{1,3}", arg):
            self._result("ERROR")
            return
        self.in_session = True
        self.constellation.start_session(self, self.mo)

    def _sbdrb(self, arg: str) -> None:
        if arg:
            self._result("ERROR")
            return
        if self.ring_before_next_read:
            # The gateway rings just as the command arrives: the URC is on the wire before the answer.
            self.ring_before_next_read = False
            self.ring()
        answer = bytearray(len(self.mt).to_bytes(2, "big") + self.mt + checksum(self.mt))
        if self.corrupt_next_read:
            self.corrupt_next_read = False
            answer[-1] ^= 0x5A
        self._output += answer
        self._result("OK")

    def _sbdrt(self, arg: str) -> None:
        if arg:
            self._result("ERROR")
            return
        # "+SBDRT:" then the MT buffer as text on the next line: one response, not two lines of it.
        self._info("+SBDRT:")
        self._output += self.mt + b"\r\n"
        self._result("OK")

    def _sbdd(self, arg: str) -> None:
        if arg not in ("0", "1", "2"):
            self._result("ERROR")
            return
        if arg in ("0", "2"):
            self.mo = None
        if arg in ("1", "2"):
            self.mt = b""
        self._answer("", "0")

    def _sbdc(self, arg: str) -> None:
        self.momsn = 0
        self._answer(arg, "0")

    def _sbds(self, arg: str) -> None:
        self._answer(
            arg, f"+SBDS: {int(self.mo is not None)}, {self.momsn}, {int(bool(self.mt))}, {self.mtmsn}"
        )

    def _sbdsx(self, arg: str) -> None:
        self._answer(
            arg,
            f"+SBDSX: {int(self.mo is not None)}, {self.momsn}, {int(bool(self.mt))}, {self.mtmsn}, "
            f"{int(self.ring_pending)}, {self.mt_waiting}",
        )

    def _sbdtc(self, arg: str) -> None:
        self.mt = self.mo or b""
        self._answer(arg, f"SBDTC: Outbound SBD Copied to Inbound SBD: size = {len(self.mt)}")

    def _sbdmta(self, arg: str) -> None:
        if arg == "?":
            self._answer("", f"+SBDMTA:{int(self.ring_alerts)}")
        elif arg in ("=0", "=1"):
            self.ring_alerts = arg == "=1"
            self._result("OK")
        else:
            self._result("ERROR")

    def _sbdareg(self, arg: str) -> None:
        if arg == "?":
            self._answer("", f"+SBDAREG:{self.registration}")
        elif arg in ("=0", "=1", "=2"):
            self.registration = int(arg[1:])
            self._result("OK")
        else:
            self._result("ERROR")

    # -- output -----------------------------------------------------------------------------------

    def _info(self, line: str) -> None:
        text = line.encode("ascii")
        self._output += (b"\r\n" + text + b"\r\n") if self.verbose else (text + b"\r\n")

    def _result(self, word: str) -> None:
        if self.quiet:
            return
        self._output += f"\r\n{word}\r\n".encode() if self.verbose else f"{NUMERIC[word]}\r".encode()

    def _wake(self) -> None:
        if self.wakeup is not None:
            self.wakeup()


# Longest names first, so that +SBDIXA is not read as +SBDIX with an argument "A".
_EXTENDED: dict[str, Callable[[Iridium9603, str], None]] = dict(
    sorted(
        {
            "+CGMI": Iridium9603._manufacturer,
            "+GMI": Iridium9603._manufacturer,
            "+CGMM": Iridium9603._model,
            "+GMM": Iridium9603._model,
            "+CGMR": Iridium9603._revision,
            "+GMR": Iridium9603._revision,
            "+CGSN": Iridium9603._serial,
            "+GSN": Iridium9603._serial,
            "+CSQF": Iridium9603._csqf,
            "+CSQ": Iridium9603._csq,
            "-MSSTM": Iridium9603._msstm,
            "-MSGEO": Iridium9603._msgeo,
            "+GEMON": Iridium9603._gemon,
            "+CRISX": Iridium9603._crisx,
            "+CRIS": Iridium9603._cris,
            "+CIER": Iridium9603._cier,
            "+SBDWB": Iridium9603._sbdwb,
            "+SBDWT": Iridium9603._sbdwt,
            "+SBDRB": Iridium9603._sbdrb,
            "+SBDRT": Iridium9603._sbdrt,
            "+SBDIXA": Iridium9603._sbdix,
            "+SBDIX": Iridium9603._sbdix,
            "+SBDD": Iridium9603._sbdd,
            "+SBDC": Iridium9603._sbdc,
            "+SBDSX": Iridium9603._sbdsx,
            "+SBDS": Iridium9603._sbds,
            "+SBDTC": Iridium9603._sbdtc,
            "+SBDMTA": Iridium9603._sbdmta,
            "+SBDAREG": Iridium9603._sbdareg,
        }.items(),
        key=lambda item: -len(item[0]),
    )
)
