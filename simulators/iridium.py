"""A simulated Iridium 9603 SBD transceiver, served on a pty, for tests and demos without a sky view.

``Iridium9603`` is the device itself as a sans-IO ``DeviceModel`` (see ``simulators.pty_device``):
it speaks the ISU AT command set a RockBLOCK 9603 answers (``AT``, ``ATE0/1``, ``AT&K0``, ``AT&D0``,
``AT+SBDWB``, ``AT+SBDIX``/``AT+SBDIXA``, ``AT+SBDRB``, ``AT+SBDD0/1/2``, ``AT+SBDSX``, ``AT+SBDMTA``,
``AT+SBDAREG``, ``AT+CSQ``/``AT+CSQF``, ``AT-MSSTM``, ``AT+SBDTC``, ``AT+CGSN``), with the modem's quirks
that matter to a driver: echo on until ``ATE0``, the MO buffer kept after a successful session (a second
``AT+SBDIX`` would send it again), nothing accepted while a session runs, ``SBDRING`` whenever the
gateway holds new MT traffic and ring alerts are on (also just before a command arrives, as on a real
wire), the ring-alert flag kept until a session succeeds. The radio side (signal, network time,
sessions) belongs to a ``Constellation``, normally ``simulators.iridium_cloud.IridiumCloud``,
which runs each session asynchronously and hands its outcome back through ``finish_session``.

Run ``python -m simulators.iridium --link /tmp/iridium0`` for a modem and its cloud in one
process (see ``docs/satellite.md``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from hardware import iridium_sbd as sbd

log = logging.getLogger(__name__)

_MAX_LINE = 512


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


class Iridium9603:
    """The modem's command interpreter and buffers (a ``DeviceModel``)."""

    def __init__(self, imei: str, constellation: Constellation, *, epoch: float = sbd.IRIDIUM_EPOCH) -> None:
        self.imei = imei
        self.constellation = constellation
        self.epoch = epoch
        self.wakeup: Callable[[], None] | None = None
        self.echo = True
        self.ring_alerts = False
        self.registration = 0
        self.mo: bytes | None = None
        self.mt = b""
        self.momsn = 0
        self.mtmsn = -1
        self.mt_waiting = 0
        self.in_session = False
        self.sessions = 0
        self.ring_pending = False
        # Fault injection for tests: the next SBDWB payload is judged to carry a bad checksum, the next
        # SBDRB answer has its checksum corrupted, a ring alert comes just before the next SBDRB answer.
        self.corrupt_next_write = False
        self.corrupt_next_read = False
        self.ring_before_next_read = False
        self._input = bytearray()
        self._output = bytearray()
        self._binary_wanted = 0

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
            end = next((i for i, byte in enumerate(self._input) if byte in (0x0D, 0x0A)), -1)
            if end < 0:
                if len(self._input) > _MAX_LINE:
                    self._input.clear()
                    self._result("ERROR")
                return
            raw = bytes(self._input[:end])
            del self._input[: end + 1]
            if raw.strip():
                self._command(raw)

    def data_to_send(self) -> bytes:
        out = bytes(self._output)
        self._output.clear()
        return out

    # -- the radio side ---------------------------------------------------------------------------

    def finish_session(self, outcome: SessionOutcome) -> None:
        """The constellation's answer to the running ``AT+SBDIX``/``AT+SBDIXA``."""
        if not self.in_session:
            return
        self.in_session = False
        self.sessions += 1
        mt_status = sbd.MtStatus.NONE
        mt_length = 0
        if sbd.mo_status_meaning(outcome.mo_status)[1] is sbd.RetryClass.NONE:
            if self.mo is not None:
                self.momsn = (self.momsn + 1) & 0xFFFF
            if outcome.mt is not None:
                self.mt = outcome.mt
                self.mtmsn = outcome.mtmsn
                mt_status, mt_length = sbd.MtStatus.RECEIVED, len(outcome.mt)
            # A successful session answers the ring; a failed one leaves it to be answered.
            self.ring_pending = outcome.mt_queued > 0
            self.mt_waiting = outcome.mt_queued
        result = sbd.SessionResult(
            outcome.mo_status, self.momsn, mt_status, outcome.mtmsn, mt_length, outcome.mt_queued
        )
        self._info(sbd.format_sbdix(result))
        self._result("OK")
        self._wake()

    def ring(self) -> None:
        """The gateway holds MT traffic for a registered modem: set the RA flag, and print ``SBDRING``
        if ring alerts are on."""
        if not self.registration:
            return
        self.ring_pending = True
        if self.ring_alerts and not self.in_session:
            self._output += b"SBDRING\r\n"
            self._wake()

    # -- commands ---------------------------------------------------------------------------------

    def _command(self, raw: bytes) -> None:
        if self.echo:
            self._output += raw + b"\r"
        try:
            text = raw.decode("ascii").strip().upper()
        except UnicodeDecodeError:
            self._result("ERROR")
            return
        match = re.fullmatch(r"AT([+\-&*]?[A-Z]*)(=?)(.*)", text)
        if match is None:
            self._result("ERROR")
            return
        name, assign, arg = match.groups()
        handler = _COMMANDS.get(name)
        if handler is None:
            self._result("ERROR")
            return
        handler(self, assign + arg)

    def _basic(self, arg: str) -> None:
        self._result("OK")

    def _echo(self, arg: str) -> None:
        if arg not in ("", "0", "1"):
            self._result("ERROR")
            return
        self.echo = arg == "1"
        self._result("OK")

    def _flow_or_dtr(self, arg: str) -> None:
        self._result("OK" if arg.isdigit() else "ERROR")

    def _sbdwb(self, arg: str) -> None:
        if not re.fullmatch(r"=\d{1,4}", arg):
            self._result("ERROR")
            return
        size = int(arg[1:])
        if not 1 <= size <= sbd.MO_MAX:
            self._info("3")
            self._result("OK")
            return
        self._output += b"READY\r\n"
        self._binary_wanted = size + 2

    def _finish_write(self, block: bytes) -> None:
        message, check = block[:-2], block[-2:]
        if self.corrupt_next_write or check != sbd.checksum(message):
            self.corrupt_next_write = False
            self._info("2")
        else:
            self.mo = message
            self._info("0")
        self._result("OK")

    def _sbdix(self, arg: str) -> None:
        if arg:
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
        answer = bytearray(sbd.sbdrb_response(self.mt))
        if self.corrupt_next_read:
            self.corrupt_next_read = False
            answer[-1] ^= 0x5A
        self._output += answer
        self._result("OK")

    def _sbdd(self, arg: str) -> None:
        if arg not in ("0", "1", "2"):
            self._result("ERROR")
            return
        which = sbd.ClearBuffer(int(arg))
        if which in (sbd.ClearBuffer.MO, sbd.ClearBuffer.BOTH):
            self.mo = None
        if which in (sbd.ClearBuffer.MT, sbd.ClearBuffer.BOTH):
            self.mt = b""
        self._info("0")
        self._result("OK")

    def _sbdmta(self, arg: str) -> None:
        if arg == "?":
            self._info(f"+SBDMTA:{int(self.ring_alerts)}")
        elif arg in ("=0", "=1"):
            self.ring_alerts = arg == "=1"
        else:
            self._result("ERROR")
            return
        self._result("OK")

    def _sbdareg(self, arg: str) -> None:
        if arg == "?":
            self._info(f"+SBDAREG:{self.registration}")
        elif arg in ("=0", "=1", "=2"):
            self.registration = int(arg[1:])
        else:
            self._result("ERROR")
            return
        self._result("OK")

    def _sbdsx(self, arg: str) -> None:
        status = sbd.SbdStatus(
            self.mo is not None, self.momsn, bool(self.mt), self.mtmsn, self.ring_pending, self.mt_waiting
        )
        self._info(sbd.format_sbdsx(status))
        self._result("OK")

    def _csq(self, arg: str) -> None:
        self._info(f"+CSQ:{self.constellation.signal_bars()}")
        self._result("OK")

    def _csqf(self, arg: str) -> None:
        self._info(f"+CSQF:{self.constellation.signal_bars()}")
        self._result("OK")

    def _msstm(self, arg: str) -> None:
        now = self.constellation.network_time()
        if now is not None:
            # The counter is 32 bits: past its range it wraps, as a modem left on an old epoch would show.
            now = self.epoch + (now - self.epoch) % (0x1_0000_0000 * sbd.TICK_SECONDS)
        self._info(sbd.format_msstm(now, epoch=self.epoch))
        self._result("OK")

    def _sbdtc(self, arg: str) -> None:
        self.mt = self.mo or b""
        self._info(f"SBDTC: Outbound SBD Copied to Inbound SBD: size = {len(self.mt)}")
        self._result("OK")

    def _cgsn(self, arg: str) -> None:
        self._info(self.imei)
        self._result("OK")

    # -- output -----------------------------------------------------------------------------------

    def _info(self, line: str) -> None:
        self._output += b"\r\n" + line.encode("ascii") + b"\r\n"

    def _result(self, word: str) -> None:
        self._output += b"\r\n" + word.encode("ascii") + b"\r\n"

    def _wake(self) -> None:
        if self.wakeup is not None:
            self.wakeup()


_COMMANDS: dict[str, Callable[[Iridium9603, str], None]] = {
    "": Iridium9603._basic,
    "E": Iridium9603._echo,
    "&K": Iridium9603._flow_or_dtr,
    "&D": Iridium9603._flow_or_dtr,
    "+SBDWB": Iridium9603._sbdwb,
    "+SBDIX": Iridium9603._sbdix,
    "+SBDIXA": Iridium9603._sbdix,
    "+SBDRB": Iridium9603._sbdrb,
    "+SBDD": Iridium9603._sbdd,
    "+SBDMTA": Iridium9603._sbdmta,
    "+SBDAREG": Iridium9603._sbdareg,
    "+SBDSX": Iridium9603._sbdsx,
    "+CSQ": Iridium9603._csq,
    "+CSQF": Iridium9603._csqf,
    "-MSSTM": Iridium9603._msstm,
    "+SBDTC": Iridium9603._sbdtc,
    "+CGSN": Iridium9603._cgsn,
}


async def _serve(args: argparse.Namespace) -> None:
    from simulators.iridium_cloud import IridiumCloud
    from simulators.pty_device import PtyDevice

    cloud = IridiumCloud(
        webhook_url=args.webhook, webhook_secret=args.webhook_secret, session_delay=args.session_delay
    )
    modem = Iridium9603(args.imei, cloud, epoch=args.epoch)
    cloud.attach(modem, args.serial)
    device = PtyDevice(modem, args.link, baud=args.baud)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await cloud.start(args.mt_host, args.mt_port)
    device.start()
    print(
        f"Iridium 9603 IMEI {args.imei} (RB{args.serial:07d}) on {args.link}; MT API {cloud.mt_url}",
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        await device.aclose()
        await cloud.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve a simulated Iridium 9603 and its provider cloud.")
    parser.add_argument("--link", required=True, help="path of the tty symlink to create, e.g. /tmp/iridium0")
    parser.add_argument("--imei", default="300234010753370")
    parser.add_argument("--serial", type=int, default=12345, help="RockBLOCK serial (RB + 7 digits)")
    parser.add_argument("--baud", type=int, default=19200)
    parser.add_argument("--webhook", help="URL the cloud POSTs MO messages to")
    parser.add_argument("--webhook-secret", help="shared secret for the HS256 token in each POST")
    parser.add_argument("--session-delay", type=float, default=5.0, help="seconds each session takes")
    parser.add_argument("--mt-host", default="127.0.0.1")
    parser.add_argument("--mt-port", type=int, default=0, help="port of the MT API (0: any free port)")
    parser.add_argument(
        "--epoch",
        type=float,
        default=sbd.IRIDIUM_EPOCH,
        help="Unix time of the -MSSTM epoch (after 2026-08-10)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
