"""A simulated SINE/TETRA network and radios speaking the PEI AT command set, for tests and demos.

``TetraNetwork`` carries SDS between ``TetraRadio`` models by ISSI. Each radio is a sans-IO device model
(serve it with ``PtyDevice``) that answers the PEI commands Beredt uses, as ETSI EN 300 392-5 and the
radios in service describe them: ``AT``, ``ATE0/1``, ``AT+CTSP``, ``AT+CTSDS``, ``AT+CNUMF?`` (a 17-digit
Danish TSI), ``AT+CMGS=?`` (the radio's maximum length), ``AT+CMGS=<issi>,<bits>`` with a ``>`` prompt and
hex text ended by Ctrl-Z (ESC cancels), ``AT+CREG?``. Received SDS come out as ``+CTSDSR`` URCs when their
PID (or status service) was routed to the PEI with ``AT+CTSP``.

What a real network does to a sender is modelled too: the control channel admits ``max_per_window`` SDS
per radio per ``window`` seconds and answers ``+CMGS: <n>,5`` (not sent) beyond it; an SDS-TL transfer
asking for a report to a destination that is not registered comes back as an SDS-REPORT with 0x4B (any
other status can be set per destination in ``reports``);
failures can be injected per command (``fail``: ``+CME ERROR: <code>``; ``silent``: no answer) and a
radio can be deregistered. The *received* report is not the network's: Beredt's far end sends it, which
is what makes it proof that the next hub has the frame.

Run ``python -m simulators.tetra --dir /tmp/sine 1001 1002`` to serve radios at
``/tmp/sine/tty1001`` and ``/tmp/sine/tty1002`` until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import time
from collections.abc import Callable
from pathlib import Path

from hardware import tetra_pei as pei
from hub.core.errors import ProtocolError
from simulators.pty_device import PtyDevice

NOT_SUPPORTED = 4
NO_NETWORK = 30


def tsi(issi: str) -> str:
    """The 17-digit TSI a radio reports for ``issi``: MCC 0238 (Denmark), MNC 00001, 8-digit SSI."""
    return f"0238{1:05d}{int(issi):08d}"


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
        """Destination ISSI -> delivery status the network reports instead of delivering (e.g. 0x4D)."""
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
        if ai_service != pei.SDS_TYPE4:
            return
        try:
            pdu = pei.decode_sdstl(payload)
        except ProtocolError:
            return
        if isinstance(pdu, pei.Transfer) and pdu.report != pei.ReportRequest.NONE:
            if status is None:
                status = pei.DeliveryStatus.DESTINATION_NOT_REGISTERED
            encoded = pei.encode_report(pei.Report(pdu.pid, pdu.ref, status))
            sender.deliver(pei.SDS_TYPE4, called, len(encoded) * 8, encoded)


class TetraRadio:
    """One radio's PEI: a sans-IO ``DeviceModel`` for ``PtyDevice``."""

    def __init__(
        self, network: TetraNetwork, issi: str, *, max_bits: int = 1120, prompt: bool = True
    ) -> None:
        self.network = network
        self.issi = issi
        self.max_bits = max_bits
        self.prompt = prompt
        self.registered = True
        self.echo = True
        self.fail: dict[str, int] = {}
        """Command prefix -> CME error code answered instead of the command's result."""
        self.silent: set[str] = set()
        """Command prefixes the radio never answers."""
        self.routed_pids: set[int] = set()
        self.status_routed = False
        self.ai_service = pei.SDS_TYPE4
        self.sent_times: collections.deque[float] = collections.deque()
        self.commands: list[str] = []
        self.wakeup: Callable[[], None] | None = None
        self._in = bytearray()
        self._out = bytearray()
        self._text_for: tuple[str, int] | None = None
        self._instance = 0

    # --- DeviceModel -------------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
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
                    self._send_text(called, bits, text)
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
        out = bytes(self._out)
        self._out.clear()
        return out

    # --- the network side --------------------------------------------------------------------------------

    def deliver(self, ai_service: int, calling: str, bits: int, payload: bytes) -> None:
        if ai_service == pei.STATUS and not self.status_routed:
            return
        if ai_service == pei.SDS_TYPE4 and (not payload or payload[0] not in self.routed_pids):
            return  # the radio itself would consume it (e.g. show a text message)
        header = f"+CTSDSR: {ai_service},{tsi(calling)},0,{tsi(self.issi)},0,{bits}"
        self._out += f"\r\n{header}\r\n{payload.hex().upper()}\r\n".encode()
        if self.wakeup is not None:
            self.wakeup()

    # --- commands ----------------------------------------------------------------------------------------

    def _reply(self, *lines: str) -> None:
        for line in lines:
            self._out += f"\r\n{line}\r\n".encode()

    def _command(self, line: str) -> None:
        self.commands.append(line)
        upper = line.upper()
        if any(upper.startswith(prefix) for prefix in self.silent):
            return
        for prefix, code in self.fail.items():
            if upper.startswith(prefix):
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
            case "AT+CMGS=?":
                self._reply(f"+CMGS: (0-99999999),(1-{self.max_bits})", "OK")
            case "AT+CREG?":
                self._reply(f"+CREG: 0,{1 if self.registered else 0},1001", "OK")
            case _ if upper.startswith("AT+CTSP="):
                self._ctsp(upper[8:])
            case _ if upper.startswith("AT+CTSDS="):
                self._ctsds(upper[9:])
            case _ if upper.startswith("AT+CMGS="):
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
        if layer == 3 and 0 <= pid <= 0xFF:
            self.routed_pids.add(pid)
        elif layer == 2:
            self.status_routed = True
        else:
            self._reply(f"+CME ERROR: {NOT_SUPPORTED}")
            return
        self._reply("OK")

    def _ctsds(self, args: str) -> None:
        numbers = self._numbers(args)
        if numbers is None or numbers[0] not in (pei.SDS_TYPE4, pei.STATUS):
            self._reply(f"+CME ERROR: {NOT_SUPPORTED}")
            return
        self.ai_service = numbers[0]
        self._reply("OK")

    def _cmgs(self, args: str) -> None:
        numbers = self._numbers(args)
        if numbers is None or len(numbers) != 2 or not 1 <= numbers[1] <= self.max_bits:
            self._reply(f"+CME ERROR: {NOT_SUPPORTED}")
            return
        if not self.registered:
            self._reply(f"+CME ERROR: {NO_NETWORK}")
            return
        self._text_for = (str(numbers[0]), numbers[1])
        if self.prompt:
            self._out += b"\r\n> "

    def _send_text(self, called: str, bits: int, text: bytes) -> None:
        try:
            payload = bytes.fromhex(text.decode("ascii"))
        except ValueError:
            self._reply(f"+CME ERROR: {NOT_SUPPORTED}")
            return
        if len(payload) * 8 < bits or (self.ai_service == pei.STATUS and bits != pei.STATUS_BITS):
            self._reply(f"+CME ERROR: {NOT_SUPPORTED}")
            return
        self._instance = (self._instance + 1) % 256
        ref = payload[2] if self.ai_service == pei.SDS_TYPE4 and len(payload) >= 3 else 0
        if not self.network.admit(self):
            self._reply(f"+CMGS: {self._instance},5", "OK")
            return
        self._reply(f"+CMGS: {self._instance},4,{ref}", "OK")
        self.network.submit(self, self.ai_service, called, bits, payload[: (bits + 7) // 8])


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
