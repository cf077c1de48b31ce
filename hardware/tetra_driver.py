"""Async driver for a SINE (TETRA) radio on its PEI serial port: set up, send SDS-TL and status, receive.

``TetraDriver(device, baud, pid=...)`` API (commands and PDUs from ``hardware.tetra_pei``):

* ``await driver.open()`` -> ``RadioInfo(issi, max_bits)``: opens the port (``baud=None`` probes the rate
  with ``AT``), then ``ATE0``, ``AT+CTSP=1,3,<pid>`` (our SDS-TL to the PEI), ``AT+CTSP=1,2,20`` (status
  messages), ``AT+CTSDS=12,0``, ``AT+CNUMF?`` (own ISSI) and ``AT+CMGS=?`` (maximum length).
* ``await driver.send_sdstl(dest, pdu)`` and ``await driver.send_status(dest, value)`` -> ``CmgsResult``
  (``sent`` False when the radio could not put it on the air); the AI service (``AT+CTSDS``) is switched
  only when it changes.
* ``await driver.registered()`` -> whether the radio is registered on the network (``AT+CREG?``).
* ``await driver.next_event()`` -> ``SdsReceived`` (an SDS-TL transfer under our PID), ``ReportReceived``
  or ``StatusReceived``; other PIDs and unreadable URCs are logged and skipped.
* ``await driver.reopen(deadline)`` waits for an unplugged radio and runs the set-up again;
  ``driver.gone`` is set while it is away; ``aclose()`` is idempotent.

Errors are the modem's: ``CmeError`` (with the radio's code), ``CommandTimeout``, ``DeviceGone``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from hardware import tetra_pei as pei
from hardware.at import Response
from hardware.modem import AtModem
from hardware.serial_link import COMMON_RATES, SerialLink, probe_baud
from hub.core.errors import CommandTimeout, DeviceGone, ProtocolError

log = logging.getLogger(__name__)

URC_WITH_DATA = ("+CTSDSR:",)


@dataclass(frozen=True, slots=True)
class RadioInfo:
    issi: str
    max_bits: int
    baud: int


@dataclass(frozen=True, slots=True)
class SdsReceived:
    source: str
    pdu: pei.Transfer


@dataclass(frozen=True, slots=True)
class ReportReceived:
    source: str
    report: pei.Report


@dataclass(frozen=True, slots=True)
class StatusReceived:
    source: str
    value: int


RadioEvent = SdsReceived | ReportReceived | StatusReceived


class TetraDriver:
    def __init__(
        self,
        device: str,
        baud: int | None,
        *,
        pid: int = 0xC8,
        deadline: float = 5.0,
        rates: Sequence[int] = COMMON_RATES,
    ) -> None:
        if pid not in pei.PRIVATE_PIDS:
            raise ValueError(f"PID 0x{pid:02X} is not a private SDS-TL protocol id (0xC0-0xFE)")
        self.device = device
        self.baud = baud
        self.pid = pid
        self.deadline = deadline
        self.rates = tuple(rates)
        self.info: RadioInfo | None = None
        self._closed = False
        self._modem: AtModem | None = None
        self._service: int | None = None

    @property
    def gone(self) -> asyncio.Event:
        if self._modem is None:
            raise DeviceGone("radio not opened", device=self.device)
        return self._modem.gone

    async def open(self) -> RadioInfo:
        if self._closed:
            raise DeviceGone("driver closed", device=self.device)
        baud = self.baud
        if baud is None:
            baud = await probe_baud(self.device, self.rates, deadline=min(self.deadline, 1.0))
            self.baud = baud
        link = SerialLink(self.device, baud, name=f"sine {self.device}")
        self._modem = await AtModem.open(
            link, urc_with_data=URC_WITH_DATA, default_deadline=self.deadline, deadline=self.deadline
        )
        try:
            return await self._setup()
        except BaseException:
            # A radio that fails its set-up is closed so that the next open starts from a clean port.
            modem, self._modem = self._modem, None
            await modem.aclose()
            raise

    async def reopen(self, *, deadline: float = 60.0) -> RadioInfo:
        """Wait for the radio to come back and set it up again (or open it, if it never was)."""
        if self._modem is None:
            return await self.open()
        await self._modem.reopen(deadline=deadline)
        return await self._setup()

    async def _setup(self) -> RadioInfo:
        self._service = None
        await self._command("ATE0")
        await self._command(pei.ctsp_sdstl(self.pid))
        await self._command(pei.CTSP_STATUS)
        await self._select(pei.SDS_TYPE4)
        issi = pei.parse_cnumf((await self._command(pei.CNUMF_QUERY)).info)
        max_bits = pei.parse_cmgs_test((await self._command(pei.CMGS_TEST)).info)
        self.info = RadioInfo(issi, max_bits, self._require().link.baud)
        return self.info

    def _require(self) -> AtModem:
        if self._modem is None:
            raise DeviceGone("radio not opened", device=self.device)
        return self._modem

    async def _command(self, command: str, text: str | None = None) -> Response:
        return await self._require().command(command, deadline=self.deadline, text=text)

    async def _select(self, service: int) -> None:
        if self._service != service:
            self._service = None  # unknown until the radio confirms
            await self._command(pei.ctsds(service))
            self._service = service

    async def registered(self) -> bool:
        """Whether the radio is registered on the network now (``AT+CREG?``)."""
        return pei.parse_creg((await self._command(pei.CREG_QUERY)).info)

    async def send_sdstl(self, dest: str, pdu: pei.Transfer | pei.Report) -> pei.CmgsResult:
        payload = pei.encode_transfer(pdu) if isinstance(pdu, pei.Transfer) else pei.encode_report(pdu)
        await self._select(pei.SDS_TYPE4)
        return await self._cmgs(dest, payload)

    async def send_status(self, dest: str, value: int) -> pei.CmgsResult:
        text = pei.status_hex(value)
        await self._select(pei.STATUS)
        return await self._cmgs(dest, bytes.fromhex(text))

    async def _cmgs(self, dest: str, payload: bytes) -> pei.CmgsResult:
        try:
            response = await self._command(pei.cmgs(dest, len(payload) * 8), text=payload.hex().upper())
        except CommandTimeout:
            # The radio may still sit in text entry or hold our hex as half a line: ESC and CR clear
            # both, so the next command is read as a command.
            await self._require().resync()
            raise
        return pei.parse_cmgs(response.info)

    async def next_event(self, deadline: float | None = None) -> RadioEvent:
        """The next SDS for us; ``DeviceGone`` once the radio left, ``CommandTimeout`` past ``deadline``."""
        modem = self._require()
        while True:
            urc = await modem.next_urc(deadline)
            try:
                event = self._decode(urc.line, urc.data)
            except ProtocolError as exc:
                log.warning("%s: skipped unreadable SDS: %s", self.device, exc)
                continue
            if event is not None:
                return event

    def _decode(self, line: str, data: str | None) -> RadioEvent | None:
        if not line.startswith("+CTSDSR:"):
            return None
        indication = pei.parse_ctsdsr(line, data)
        if indication.ai_service == pei.STATUS:
            return StatusReceived(indication.calling, pei.parse_status(indication))
        if indication.ai_service != pei.SDS_TYPE4:
            return None
        pdu = pei.decode_sdstl(indication.payload)
        if pdu.pid != self.pid:
            log.info("%s: ignored SDS-TL with PID 0x%02X from %s", self.device, pdu.pid, indication.calling)
            return None
        if isinstance(pdu, pei.Report):
            return ReportReceived(indication.calling, pdu)
        return SdsReceived(indication.calling, pdu)

    async def aclose(self) -> None:
        self._closed = True
        modem = self._modem
        if modem is not None:
            await modem.aclose()
