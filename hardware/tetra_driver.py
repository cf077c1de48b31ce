"""Async driver for a SINE (TETRA) radio on its PEI serial port: set up, send SDS-TL and status, receive.

``TetraDriver(device, baud, pid=...)`` API (commands and PDUs from ``hardware.tetra_pei``):

* ``await driver.open()`` -> ``RadioInfo``: opens the port (``baud=None`` probes the rate with ``AT``),
  then ``ATE0``, routes our SDS-TL to the PEI (``AT+CTSP=1,3,<pid>``; ``+CME ERROR: 38``, already
  registered, counts as done; a refusal walks ``pid_fallback``: ``"range"`` routes the PID's whole range
  with selector 24/25, an integer switches to that PID), routes status messages (``AT+CTSP=1,2,20``),
  ``AT+CTSDS=12,0``, ``AT+CNUMF?`` (own ISSI) and ``AT+CMGS=?`` (maximum length; ``fallback_bits`` when
  the radio does not implement the test form).
* ``await driver.send_sdstl(dest, pdu)`` and ``await driver.send_status(dest, value)`` -> ``Submission``
  once the radio *accepted* the SDS; ``submission.sent`` resolves to True or False when the radio reports
  the over-the-air result (the unsolicited ``+CMGS``, matched by instance), or to True after
  ``confirm_deadline`` seconds for radios that never report it. ``submission.ref`` is the radio's own
  SDS-TL message reference when it gives one: reports from the far end carry that reference. ``dest`` is
  an SSI or a 17-digit TSI; the called party type of ``AT+CTSDS`` follows from its length, and the AI
  service and type are switched only when they change. Busy answers (``+CME ERROR: 36/37/42``) are retried
  with back-off for ``busy_seconds`` before the ``CmeError`` is raised.
* ``await driver.registered()`` -> whether the radio is registered on the network (``AT+CREG?``).
* ``await driver.next_event()`` -> ``SdsReceived`` (an SDS-TL transfer under our PID), ``ReportReceived``
  or ``StatusReceived``; with ``texts=True`` also ``TextReceived`` (a text message typed on a terminal,
  PID 0x82, routed at set-up; a radio that refuses to route it is logged and still carries frames).
  ``source`` is None when the radio left out the calling party. Other PIDs and unreadable URCs are
  logged and skipped.
* ``await driver.reopen(deadline)`` waits for an unplugged radio and runs the set-up again;
  ``driver.gone`` is set while it is away; ``aclose()`` is idempotent.

Errors are the modem's: ``CmeError`` (with the radio's code), ``CommandTimeout``, ``DeviceGone``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from hardware import tetra_pei as pei
from hardware.at import Response, Urc
from hardware.modem import AtModem
from hardware.serial_link import COMMON_RATES, SerialLink, backoff_delays, probe_baud
from hub.core.errors import CmeError, DeviceGone, ProtocolError

log = logging.getLogger(__name__)

URC_PREFIXES = ("+CMGS:",)
URC_WITH_DATA = ("+CTSDSR:",)
DEFAULT_MAX_BITS = 1120  # 140 bytes, what most SINE radios take
PidStep = int | Literal["range"]
_AWAITED_LIMIT = 64  # results the radio still owes; beyond this the oldest is assumed sent


@dataclass(frozen=True, slots=True)
class RadioInfo:
    issi: str
    max_bits: int
    baud: int
    pid: int = 0xC8
    """The PID our SDS-TL goes out under (the configured one unless a fallback PID was needed)."""
    max_bits_reported: bool = True
    """False when the radio has no ``AT+CMGS=?`` and ``max_bits`` is the configured fallback."""


@dataclass(frozen=True, slots=True)
class Submission:
    """An SDS the radio accepted (the first stage of ``AT+CMGS``)."""

    instance: int
    ref: int | None
    sent: asyncio.Future[bool]


@dataclass(frozen=True, slots=True)
class SdsReceived:
    source: str | None
    pdu: pei.Transfer


@dataclass(frozen=True, slots=True)
class TextReceived:
    """A text message typed on a terminal (PID 0x82), read only when the driver was opened with ``texts``."""

    source: str | None
    pdu: pei.Transfer
    text: str


@dataclass(frozen=True, slots=True)
class ReportReceived:
    source: str | None
    report: pei.Report


@dataclass(frozen=True, slots=True)
class StatusReceived:
    source: str | None
    value: int


RadioEvent = SdsReceived | TextReceived | ReportReceived | StatusReceived


class TetraDriver:
    def __init__(
        self,
        device: str,
        baud: int | None,
        *,
        pid: int = 0xC8,
        pid_fallback: Sequence[PidStep] = ("range",),
        fallback_bits: int = DEFAULT_MAX_BITS,
        deadline: float = 5.0,
        confirm_deadline: float = 30.0,
        busy_seconds: float = 20.0,
        rates: Sequence[int] = COMMON_RATES,
        texts: bool = False,
    ) -> None:
        if pid not in pei.PRIVATE_PIDS:
            raise ValueError(f"PID 0x{pid:02X} is not a private SDS-TL protocol id (0xC0-0xFE)")
        for step in pid_fallback:
            if step != "range" and not (isinstance(step, int) and 0 <= step <= 0xFF):
                raise ValueError(f'a PID fallback step is "range" or a PID 0-255, not {step!r}')
        self.device = device
        self.baud = baud
        self.pid = pid
        self.pid_fallback = tuple(pid_fallback)
        self.fallback_bits = fallback_bits
        self.deadline = deadline
        self.confirm_deadline = confirm_deadline
        self.busy_seconds = busy_seconds
        self.rates = tuple(rates)
        self.texts = texts
        """Also route and read text messages (PID 0x82) typed on terminals."""
        self.info: RadioInfo | None = None
        self.busy_retries = 0
        self._send_pid = pid
        self._closed = False
        self._modem: AtModem | None = None
        self._selected: tuple[int, int] | None = None
        self._awaited: collections.OrderedDict[int, asyncio.Future[bool]] = collections.OrderedDict()
        self._early: dict[int, bool] = {}
        self._timers: set[asyncio.TimerHandle] = set()

    @property
    def gone(self) -> asyncio.Event:
        if self._modem is None:
            raise DeviceGone("radio not opened", device=self.device)
        return self._modem.gone

    @property
    def send_pid(self) -> int:
        """The PID our SDS-TL goes out under."""
        return self._send_pid

    async def open(self) -> RadioInfo:
        if self._closed:
            raise DeviceGone("driver closed", device=self.device)
        baud = self.baud
        if baud is None:
            baud = await probe_baud(self.device, self.rates, deadline=min(self.deadline, 1.0))
            self.baud = baud
        link = SerialLink(self.device, baud, name=f"sine {self.device}")
        self._modem = await AtModem.open(
            link,
            urc_prefixes=URC_PREFIXES,
            urc_with_data=URC_WITH_DATA,
            default_deadline=self.deadline,
            deadline=self.deadline,
            claim_urc=self._claim_urc,
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
        self._selected = None
        self._forget_awaited()
        await self._command("ATE0")
        self._send_pid = await self._route_sdstl()
        if self.texts:
            await self._route_texts()
        await self._register(pei.CTSP_STATUS)
        await self._select(pei.SDS_TYPE4, pei.CALLED_SSI)
        issi = pei.parse_cnumf((await self._command(pei.CNUMF_QUERY)).info)
        max_bits, reported = await self._max_bits()
        self.info = RadioInfo(issi, max_bits, self._require().link.baud, self._send_pid, reported)
        return self.info

    async def _register(self, command: str) -> None:
        """``AT+CTSP``; a radio that kept the routing from before answers 38 (already registered)."""
        try:
            await self._command(command)
        except CmeError as exc:
            if exc.code != pei.ALREADY_REGISTERED:
                raise
            log.info("%s: %s was already registered (radio stayed powered)", self.device, command)

    async def _route_sdstl(self) -> int:
        """Route our SDS-TL to the PEI, walking ``pid_fallback`` when the radio refuses; the PID to use."""
        attempts: list[tuple[str, int]] = [(pei.ctsp_sdstl(self.pid), self.pid)]
        for step in self.pid_fallback:
            if step == "range":
                attempts.append((pei.ctsp_range(self.pid), self.pid))
            else:
                attempts.append((pei.ctsp_sdstl(step), step))
        refused: CmeError | None = None
        for command, pid in attempts:
            try:
                await self._register(command)
            except CmeError as exc:
                log.warning("%s: radio refused %s (%s); trying the next fallback", self.device, command, exc)
                refused = exc
                continue
            if pid != self.pid:
                log.warning("%s: sending under fallback PID %d instead of %d", self.device, pid, self.pid)
            return pid
        assert refused is not None
        raise refused

    async def _route_texts(self) -> None:
        """Route text messages to the PEI too; a radio that refuses still carries our frames."""
        if self._send_pid == pei.TEXT_PID:
            log.warning("%s: frames go out under the text PID: typed texts cannot be told apart", self.device)
            return
        try:
            await self._register(pei.ctsp_sdstl(pei.TEXT_PID))
        except CmeError as exc:
            log.warning("%s: radio refused to route text messages (%s): none will be read", self.device, exc)

    async def _max_bits(self) -> tuple[int, bool]:
        try:
            answer = await self._command(pei.CMGS_TEST, solicited=URC_PREFIXES)
            return pei.parse_cmgs_test(answer.info), True
        except (CmeError, ProtocolError) as exc:
            log.warning(
                "%s: radio does not tell its SDS size (%s); using %d bits",
                self.device,
                exc,
                self.fallback_bits,
            )
            return self.fallback_bits, False

    def _require(self) -> AtModem:
        if self._modem is None:
            raise DeviceGone("radio not opened", device=self.device)
        return self._modem

    async def _command(self, command: str, *, solicited: tuple[str, ...] = ()) -> Response:
        return await self._require().command(command, deadline=self.deadline, solicited=solicited)

    async def _select(self, service: int, called: int) -> None:
        if self._selected != (service, called):
            self._selected = None  # unknown until the radio confirms
            await self._command(pei.ctsds(service, called))
            self._selected = (service, called)

    async def registered(self) -> bool:
        """Whether the radio is registered on the network now (``AT+CREG?``)."""
        return pei.parse_creg((await self._command(pei.CREG_QUERY)).info)

    async def send_sdstl(self, dest: str, pdu: pei.Transfer | pei.Report) -> Submission:
        payload = pei.encode_transfer(pdu) if isinstance(pdu, pei.Transfer) else pei.encode_report(pdu)
        return await self._submit(pei.SDS_TYPE4, dest, payload)

    async def send_status(self, dest: str, value: int) -> Submission:
        return await self._submit(pei.STATUS, dest, bytes.fromhex(pei.status_hex(value)))

    async def _submit(self, service: int, dest: str, payload: bytes) -> Submission:
        called = pei.called_type(dest)
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.busy_seconds
        delays = backoff_delays(initial=0.5, cap=5.0)
        while True:
            try:
                await self._select(service, called)
                return await self._cmgs(dest, payload)
            except CmeError as exc:
                delay = next(delays)
                if exc.code not in pei.BUSY_ERRORS or loop.time() + delay > give_up:
                    raise
                self.busy_retries += 1
                log.info("%s: radio busy (%s); sending again in %.1f s", self.device, exc, delay)
                await asyncio.sleep(delay)

    async def _cmgs(self, dest: str, payload: bytes) -> Submission:
        modem = self._require()
        # Results kept for an answer still to come belong to this command alone; older ones are stale
        # (an instance number the radio reuses later must not find them).
        self._early.clear()
        try:
            response = await modem.command(
                pei.cmgs(dest, len(payload) * 8),
                deadline=self.deadline,
                text=payload.hex().upper(),
                solicited=URC_PREFIXES,
                # A mute radio must be reported after one deadline, not after a health check that
                # queued behind this command has waited out its own too.
                resync_on_timeout=True,
            )
        except CmeError:
            # The radio may still sit in text entry, or it refused the command line and now holds our hex
            # as half a line: ESC and CR clear both, so the next command is read as a command (after a
            # timeout the modem has done so already).
            await modem.resync()
            raise
        lines = [line for line in response.info if line.startswith("+CMGS:")]
        if not lines:
            raise ProtocolError(f"no +CMGS line in the answer {response.info!r}")
        for late in lines[:-1]:
            # An earlier SDS's result that came while this one was being handed over is not our answer.
            self._claim_urc(Urc(late))
        answer = pei.parse_cmgs_answer(lines[-1])
        return Submission(answer.instance, answer.ref, self._await_result(answer))

    def _await_result(self, answer: pei.CmgsLine) -> asyncio.Future[bool]:
        loop = asyncio.get_running_loop()
        sent: asyncio.Future[bool] = loop.create_future()
        early = self._early.pop(answer.instance, None)
        if answer.status in (pei.SENT, pei.FAILED):
            sent.set_result(answer.status == pei.SENT)  # a radio that reports at once
        elif early is not None:
            sent.set_result(early)
        else:
            stale = self._awaited.pop(answer.instance, None)
            if stale is not None and not stale.done():
                stale.set_result(True)  # the radio reused the instance: the old SDS is long gone
            self._awaited[answer.instance] = sent
            while len(self._awaited) > _AWAITED_LIMIT:
                _, oldest = self._awaited.popitem(last=False)
                if not oldest.done():
                    oldest.set_result(True)
            timer = loop.call_later(self.confirm_deadline, self._assume_sent, answer.instance, sent)
            self._timers.add(timer)
            sent.add_done_callback(lambda _: self._drop_timer(timer))
        return sent

    def _drop_timer(self, timer: asyncio.TimerHandle) -> None:
        timer.cancel()
        self._timers.discard(timer)

    def _assume_sent(self, instance: int, sent: asyncio.Future[bool]) -> None:
        if self._awaited.get(instance) is sent:
            del self._awaited[instance]
        if not sent.done():
            log.info("%s: no over-the-air result for SDS %d; assuming it was sent", self.device, instance)
            sent.set_result(True)

    def _claim_urc(self, urc: Urc) -> bool:
        """Settle an SDS with the unsolicited ``+CMGS`` that reports its over-the-air result."""
        if not urc.line.startswith("+CMGS:"):
            return False
        try:
            result = pei.parse_cmgs_result(urc.line)
        except ProtocolError as exc:
            log.warning("%s: unreadable SDS result: %s", self.device, exc)
            return True
        if result.status not in (pei.SENT, pei.FAILED):
            log.info("%s: SDS %d reports status %s", self.device, result.instance, result.status)
            return True
        sent = self._awaited.pop(result.instance, None)
        if sent is None:
            # The result can overtake the command's own answer inside one read: keep it for _await_result.
            self._early[result.instance] = result.status == pei.SENT
        elif not sent.done():
            sent.set_result(result.status == pei.SENT)
        return True

    def _forget_awaited(self) -> None:
        # Results owed from before a reopen never come; their frames wait for their reports instead.
        for sent in self._awaited.values():
            if not sent.done():
                sent.set_result(True)
        self._awaited.clear()
        self._early.clear()

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
        if self.texts and pdu.pid == pei.TEXT_PID != self._send_pid and isinstance(pdu, pei.Transfer):
            return TextReceived(indication.calling, pdu, pei.decode_text(pdu.data))
        if pdu.pid not in (self.pid, self._send_pid):
            log.info("%s: ignored SDS-TL with PID 0x%02X from %s", self.device, pdu.pid, indication.calling)
            return None
        if isinstance(pdu, pei.Report):
            return ReportReceived(indication.calling, pdu)
        return SdsReceived(indication.calling, pdu)

    async def aclose(self) -> None:
        self._closed = True
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self._forget_awaited()
        modem = self._modem
        if modem is not None:
            await modem.aclose()
