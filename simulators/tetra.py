"""A simulated SINE/TETRA network and radios speaking the PEI AT command set, for tests and demos.

``TetraNetwork`` carries SDS between ``TetraRadio`` models by SSI. Each radio is a sans-IO device model
(serve it with ``PtyDevice``) that answers as ETSI EN 300 392-5 describes the PEI, written here from that
text and not from Beredt's driver: commands end in CR (a LF is tolerated), every answer line is framed
``\\r\\n<line>\\r\\n``, echo is on until ``ATE0``. Commands: ``AT``, ``ATE0/1``, ``AT+CTSP=<profile>,
<layer>,<pid>`` (layer 3 routes one SDS-TL PID, or with selector 24/25 the PID range 0-127/128-255, layer 2
status messages; asking again for a PID already routed answers ``+CME ERROR: 38``), ``AT+CTSDS=<AI
service>,<called type>`` (12 SDS type 4, 13 status; type 0 SSI, 1 TSI), ``AT+CNUMF?`` (a 17-digit Danish
TSI), ``AT+CMGS=?`` (the radio's maximum length), ``AT+CMGS=<called>,<bits>`` with a ``>`` prompt and hex
text ended by Ctrl-Z (ESC cancels), ``AT+CREG?``. Sending is two-stage: ``+CMGS: <instance>,<ref>`` and
``OK`` when the radio takes the SDS, then the unsolicited ``+CMGS: <instance>,4,<ref>`` (sent) or
``,5,<ref>`` (the control channel refused it). Received SDS come out as ``+CTSDSR`` URCs when their PID
(or status service) was routed to the PEI.

Terminals differ; each difference is a switch on the radio: ``prompt`` (print ``>``), ``two_stage``
(False: the status comes inline, ``+CMGS: <instance>,4,<ref>``), ``own_refs`` (the radio writes its own
SDS-TL message reference over the PDU's and reports that one), ``refused_pids`` (its programming refuses
these PIDs), ``cmgs_test`` (False: no ``AT+CMGS=?``), ``creg_tetra_form`` (``+CREG: <stat>,<LA>,<MNI>``
instead of ``+CREG: <n>,<stat>``), ``calling_party`` (False: ``+CTSDSR`` without the calling-party
fields), ``result_delay`` (seconds between ``OK`` and the over-the-air result).

What a real network does to a sender is modelled too: the control channel admits ``max_per_window`` SDS
per radio per ``window`` seconds; an SDS-TL transfer asking for a report to a destination that is not
registered comes back as an SDS-REPORT with 0x4B (any other status can be set per destination in
``reports``); failures can be injected per command (``fail``: ``+CME ERROR: <code>`` until removed;
``errors_next``: codes for the next commands only; ``silent``: no answer) and a radio can be deregistered.
The *received* report is not the network's: Beredt's far end sends it, which is what makes it proof that
the next hub has the frame.

Run ``python -m simulators.tetra --dir /tmp/sine 1001 1002`` to serve radios at
``/tmp/sine/tty1001`` and ``/tmp/sine/tty1002`` until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import re
import time
from collections.abc import Callable
from pathlib import Path

from simulators.pty_device import PtyDevice

# EN 300 392-5 values the radio answers with.
SDS_TYPE4 = 12
STATUS = 13
CALLED_SSI = 0
CALLED_TSI = 1
SENT = 4
FAILED = 5
NOT_SUPPORTED = 4
NO_NETWORK = 30
ALREADY_REGISTERED = 38
RANGE_LOW, RANGE_HIGH = 24, 25  # AT+CTSP layer-3 selectors for PIDs 0-127 and 128-255
# EN 300 392-2 §29.4.2: an SDS-TL PDU starts PID, message type (high nibble; 0 TRANSFER, 1 REPORT) with the
# delivery report request in bits 3-2 of a TRANSFER, then the message reference. A REPORT is PID, 0x10,
# delivery status, message reference.
NOT_REGISTERED = 0x4B
MCC, MNC = 238, 1  # Denmark; SINE's network code here


def tsi(ssi: str) -> str:
    """The 17-digit TSI of ``ssi``: MCC (4 digits), MNC (5 digits), SSI (8 digits)."""
    return f"{MCC:04d}{MNC:05d}{int(ssi):08d}"


class TetraNetwork:
    """The switching infrastructure: registered radios and the control channel's admission."""

    def __init__(
        self, *, max_per_window: int = 4, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_per_window = max_per_window
        self.window = window
        self.clock = clock
        self.radios: dict[str, TetraRadio] = {}
        self.reports: dict[str, int] = {}
        """Destination SSI -> delivery status the network reports instead of delivering (e.g. 0x4D)."""
        self.delivered = 0
        self.refused = 0

    def add_radio(self, issi: str, *, max_bits: int = 1120, prompt: bool = True) -> TetraRadio:
        radio = TetraRadio(self, issi, max_bits=max_bits, prompt=prompt)
        self.radios[issi] = radio
        return radio

    def admit(self, sender: TetraRadio) -> bool:
        now = self.clock()
        sent = sender.sent_times
        while sent and sent[0] <= now - self.window:
            sent.popleft()
        if len(sent) >= self.max_per_window:
            self.refused += 1
            return False
        sent.append(now)
        return True

    def submit(self, sender: TetraRadio, ai_service: int, called: str, bits: int, payload: bytes) -> None:
        dest = self.radios.get(called)
        status = self.reports.get(called)
        if status is None and dest is not None and dest.registered:
            self.delivered += 1
            dest.deliver(ai_service, sender.issi, bits, payload)
            return
        if ai_service != SDS_TYPE4 or len(payload) < 3 or payload[1] >> 4 != 0:
            return  # not an SDS-TL TRANSFER: nobody asked for a report
        if (payload[1] >> 2) & 0x03 == 0:
            return  # the TRANSFER asked for no report
        report = bytes([payload[0], 0x10, NOT_REGISTERED if status is None else status, payload[2]])
        sender.deliver(SDS_TYPE4, called, len(report) * 8, report)


class TetraRadio:
    """One radio's PEI: a sans-IO ``DeviceModel`` for ``PtyDevice``."""

    def __init__(
        self, network: TetraNetwork, issi: str, *, max_bits: int = 1120, prompt: bool = True
    ) -> None:
        self.network = network
        self.issi = issi
        self.max_bits = max_bits
        self.prompt = prompt
        self.two_stage = True
        self.own_refs = False
        self.refused_pids: set[int] = set()
        self.cmgs_test = True
        self.creg_tetra_form = False
        self.calling_party = True
        self.result_delay = 0.0
        self.registered = True
        self.echo = True
        self.fail: dict[str, int] = {}
        """Command prefix -> CME error code answered instead of the command's result."""
        self.errors_next: dict[str, list[int]] = {}
        """Command prefix -> CME error codes answered to the next such commands, one each."""
        self.silent: set[str] = set()
        """Command prefixes the radio never answers."""
        self.mute = False
        """A hung terminal still plugged in: it reads everything, acts on nothing (no SDS goes on the
        air) and says nothing at all (no answer, no echo, no SDS or report from the network) until
        unmuted."""
        self.routed_pids: set[int] = set()
        self.routed_ranges: set[int] = set()
        self.status_routed = False
        self.consumed: collections.deque[tuple[str, bytes]] = collections.deque(maxlen=100)
        """SDS type 4 the radio kept for itself, not routed to the PEI (calling ISSI, the SDS-TL PDU):
        what a terminal shows on its screen, such as a text message (PID 0x82)."""
        self.ai_service = SDS_TYPE4
        self.called_type = CALLED_SSI
        self.sent_times: collections.deque[float] = collections.deque()
        self.commands: list[str] = []
        self.wakeup: Callable[[], None] | None = None
        self._in = bytearray()
        self._out = bytearray()
        self._text_for: tuple[str, int] | None = None
        self._instance = 0
        self._ref = 0

    # --- DeviceModel -------------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        if self.mute:
            return  # a hung firmware: the bytes are read off the wire and lost
        self._in += data
        while True:
            if self._text_for is not None:
                end = next((i for i, b in enumerate(self._in) if b in (0x1A, 0x1B)), -1)
                if end < 0:
                    return
                text, terminator = bytes(self._in[:end]), self._in[end]
                del self._in[: end + 1]
                called, bits = self._text_for
                self._text_for = None
                if terminator == 0x1B:
                    self._reply("OK")
                else:
                    self._send_text(called, bits, text.strip())
                continue
            end = next((i for i, b in enumerate(self._in) if b in (0x0D, 0x0A)), -1)
            if end < 0:
                return
            line = bytes(self._in[:end]).decode("ascii", "replace").strip()
            del self._in[: end + 1]
            if line:
                if self.echo:
                    self._out += line.encode() + b"\r"
                self._command(line)

    def data_to_send(self) -> bytes:
        out = b"" if self.mute else bytes(self._out)
        self._out.clear()
        return out

    # --- the network side --------------------------------------------------------------------------------

    def routes(self, pid: int) -> bool:
        return pid in self.routed_pids or (RANGE_HIGH if pid >= 0x80 else RANGE_LOW) in self.routed_ranges

    def deliver(self, ai_service: int, calling: str, bits: int, payload: bytes) -> None:
        if ai_service == STATUS and not self.status_routed:
            return
        if ai_service == SDS_TYPE4 and (not payload or not self.routes(payload[0])):
            self.consumed.append((calling, payload))  # the radio itself consumes it (shows a text message)
            return
        parties = f"{tsi(calling)},1,{tsi(self.issi)},1" if self.calling_party else f"{tsi(self.issi)},1"
        header = f"+CTSDSR: {ai_service},{parties},{bits}"
        self._out += f"\r\n{header}\r\n{payload.hex().upper()}\r\n".encode()
        self._wake()

    def _wake(self) -> None:
        if self.wakeup is not None:
            self.wakeup()

    # --- commands ----------------------------------------------------------------------------------------

    def _reply(self, *lines: str) -> None:
        for line in lines:
            self._out += f"\r\n{line}\r\n".encode()

    def _injected(self, upper: str) -> int | None:
        for prefix, codes in self.errors_next.items():
            if upper.startswith(prefix) and codes:
                return codes.pop(0)
        return next((code for prefix, code in self.fail.items() if upper.startswith(prefix)), None)

    def _command(self, line: str) -> None:
        self.commands.append(line)
        upper = line.upper()
        if any(upper.startswith(prefix) for prefix in self.silent):
            return
        code = self._injected(upper)
        if code is not None:
            self._reply(f"+CME ERROR: {code}")
            return
        match upper:
            case "AT":
                self._reply("OK")
            case "ATE0" | "ATE1":
                self.echo = upper == "ATE1"
                self._reply("OK")
            case "AT+CNUMF?":
                self._reply(f"+CNUMF: 6,{tsi(self.issi)}", "OK")
            case "AT+CMGS=?" if self.cmgs_test:
                self._reply(f"+CMGS: (0-99999999),(1-{self.max_bits})", "OK")
            case "AT+CREG?":
                stat = 1 if self.registered else 0
                self._reply(
                    f"+CREG: {stat},1001,{MCC:04d}{MNC:05d}" if self.creg_tetra_form else f"+CREG: 0,{stat}"
                )
                self._reply("OK")
            case _ if upper.startswith("AT+CTSP="):
                self._ctsp(upper[8:])
            case _ if upper.startswith("AT+CTSDS="):
                self._ctsds(upper[9:])
            case _ if re.fullmatch(r"AT\+CMGS=\d+,\d+", upper):
                self._cmgs(upper[8:])
            case _:
                self._reply("ERROR")

    def _numbers(self, text: str) -> list[int] | None:
        parts = text.split(",")
        return [int(p) for p in parts] if all(p.strip().isdigit() for p in parts) else None

    def _ctsp(self, args: str) -> None:
        numbers = self._numbers(args)
        if numbers is None or len(numbers) != 3:
            self._reply("ERROR")
            return
        _, layer, pid = numbers
        if layer == 3 and pid in (RANGE_LOW, RANGE_HIGH):
            routed, table = pid in self.routed_ranges, self.routed_ranges
        elif layer == 3 and 0 <= pid <= 0xFF and pid not in self.refused_pids:
            routed, table = pid in self.routed_pids, self.routed_pids
        elif layer == 2:
            routed, self.status_routed, table = self.status_routed, True, set()
        else:
            self._reply(f"+CME ERROR: {NOT_SUPPORTED}")
            return
        if routed:
            self._reply(f"+CME ERROR: {ALREADY_REGISTERED}")  # a radio that stayed powered keeps its routing
            return
        table.add(pid)
        self._reply("OK")

    def _ctsds(self, args: str) -> None:
        numbers = self._numbers(args)
        if numbers is None or numbers[0] not in (SDS_TYPE4, STATUS) or numbers[1:2] not in ([0], [1]):
            self._reply(f"+CME ERROR: {NOT_SUPPORTED}")
            return
        self.ai_service, self.called_type = numbers[0], numbers[1]
        self._reply("OK")

    def _cmgs(self, args: str) -> None:
        called, bits = args.split(",")
        digits = 17 if self.called_type == CALLED_TSI else 8
        if not 1 <= int(bits) <= self.max_bits or (len(called) != 17 if digits == 17 else len(called) > 8):
            self._reply(f"+CME ERROR: {NOT_SUPPORTED}")  # too long, or the identity is not of the set type
            return
        if not self.registered:
            self._reply(f"+CME ERROR: {NO_NETWORK}")
            return
        self._text_for = (str(int(called[-8:])), int(bits))
        if self.prompt:
            self._out += b"\r\n> "

    def _send_text(self, called: str, bits: int, text: bytes) -> None:
        try:
            payload = bytearray(bytes.fromhex(text.decode("ascii")))
        except ValueError:
            self._reply(f"+CME ERROR: {NOT_SUPPORTED}")
            return
        if len(payload) * 8 < bits or (self.ai_service == STATUS and bits != 16):
            self._reply(f"+CME ERROR: {NOT_SUPPORTED}")
            return
        self._instance = self._instance % 255 + 1
        ref = 0
        if self.ai_service == SDS_TYPE4 and len(payload) >= 3:
            if self.own_refs:
                self._ref = (self._ref + 1) % 256
                payload[2] = self._ref
            ref = payload[2]
        admitted = self.network.admit(self)
        status = SENT if admitted else FAILED
        if self.two_stage:
            self._reply(f"+CMGS: {self._instance},{ref}", "OK")
            self._later(f"+CMGS: {self._instance},{status},{ref}")
        else:
            self._reply(f"+CMGS: {self._instance},{status},{ref}", "OK")
        if admitted:
            self.network.submit(self, self.ai_service, called, bits, bytes(payload[: (bits + 7) // 8]))

    def _later(self, line: str) -> None:
        """The over-the-air result: after the answer, or ``result_delay`` seconds later."""
        if self.result_delay <= 0:
            self._reply(line)
            return

        def emit() -> None:
            self._reply(line)
            self._wake()

        asyncio.get_running_loop().call_later(self.result_delay, emit)


async def serve(directory: Path, issis: list[str], *, baud: int, max_bits: int, per_minute: int) -> None:
    network = TetraNetwork(max_per_window=per_minute, window=60.0)
    devices = []
    for issi in issis:
        device = PtyDevice(network.add_radio(issi, max_bits=max_bits), directory / f"tty{issi}", baud=baud)
        device.start()
        devices.append(device)
        print(f"radio {issi} (TSI {tsi(issi)}) at {device.link_path}, {baud} baud", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        for device in devices:
            await device.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve simulated SINE radios on ptys.")
    parser.add_argument("issis", nargs="+", help="ISSIs of the radios, e.g. 1001 1002")
    parser.add_argument("--dir", type=Path, default=Path("."), help="where the tty<issi> links go")
    parser.add_argument("--baud", type=int, default=38400)
    parser.add_argument("--max-bits", type=int, default=1120, help="answer to AT+CMGS=? (bits)")
    parser.add_argument("--per-minute", type=int, default=4, help="SDS per radio per minute")
    args = parser.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            serve(args.dir, args.issis, baud=args.baud, max_bits=args.max_bits, per_minute=args.per_minute)
        )


if __name__ == "__main__":
    main()
