"""The SINE link: Beredt frames as SDS-TL over a TETRA radio's PEI, the delivery report as the hop ack.

Each frame (or fragment, at most ``capabilities.mtu`` bytes) travels as SDS type 4 carrying an SDS-TL
TRANSFER under Beredt's private protocol id, asking for a "received" report. The far end's transport
answers with that report itself, so a report proves that the next *hub* has the bytes: ``send`` returns
only then, and ``capabilities.link_ack`` is True. A failure report raises ``LinkDown`` (destination not
registered or not reachable, memory full) or ``DeliveryRefused`` (any other definitive failure). The
radio hands an SDS over in two stages (accepted, then sent or failed over the air, see
``hardware.tetra_driver``): a frame the radio could not put on the air fails at once with
``BudgetExhausted``, and a radio that assigns its own SDS-TL reference has its reference matched to the
report. A busy radio (``+CME ERROR: 36/37/42``) is asked again with back-off and, if it stays busy, the
frame is refused with ``BudgetExhausted``; the link stays up.

SDS ride the control channel, which tolerates a few messages per minute per radio and no bursts: every
SDS this radio sends (frames, reports, status) is spaced ``60 / max_per_minute`` seconds apart, queued
highest priority first (our reports first of all; the queue is ``transports.sine_queue``); a frame
that would wait longer than ``max_queue_seconds`` is refused at once with ``BudgetExhausted``
(``retry_after``). A radio that vanishes (unplugged) fails what is queued with ``LinkDown``, reports
``LinkChanged(up=False)`` and is reopened with back-off; registration is polled with ``AT+CREG?``
every ``health_interval`` seconds. Reports are matched to their frames by ``transports.sine_reports``;
a peer whose SDS failed is held down by ``transports.sine_peers``. Status SDS (the operator's 16-bit
status plan, see ``transports.sine_status``) go out with ``send_status`` and arrive as
``Received(data=b"\\x00" + value, meta={"status": name, "value": value})``. Options: see
``open_transport`` and docs/sine.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from hardware import tetra_pei as pei
from hardware.serial_link import backoff_delays
from hardware.tetra_driver import (
    DEFAULT_MAX_BITS,
    RadioInfo,
    ReportReceived,
    SdsReceived,
    StatusReceived,
    TetraDriver,
    TextReceived,
)
from hub.core.errors import (
    BudgetExhausted,
    CmeError,
    CommandTimeout,
    DeliveryRefused,
    DeviceGone,
    FrameTooLarge,
    LinkDown,
    ModemError,
    ProtocolError,
    TransportClosed,
    TransportError,
)
from hub.core.handhelds import FILE_NAME as HANDHELDS_FILE
from hub.core.handhelds import load_terminals
from hub.core.tasks import cancel_and_wait
from hub.core.transport import Capabilities, Cost, LinkChanged, Received, TransportContext, TransportEvent
from transports.sine_peers import PeerHold
from transports.sine_queue import SdsJob, SdsQueue, sds_address, settle
from transports.sine_reports import ReportBook
from transports.sine_status import SineOptions, StatusPlan, encode_status, parse_options
from transports.sine_texts import TEXT_CHARS, TerminalGate

REPORT_PRIORITY = 1_000  # our delivery reports go before any frame: a late report costs the sender a resend
ANSWER_PRIORITY = REPORT_PRIORITY - 1  # a team terminal's answer: after reports, before frames


class SineTransport:
    """One SINE radio as a Beredt link; built and started by ``open_transport``."""

    def __init__(self, name: str, driver: TetraDriver, options: SineOptions, logger: logging.Logger) -> None:
        self.name = name
        self.plan = options.status_plan
        self._driver = driver
        self._options = options
        self._log = logger
        self._interval = 60.0 / options.max_per_minute
        # Until the radio tells its maximum (AT+CMGS=?), assume the 140 bytes most SINE radios take.
        self.capabilities = self._capabilities(options.mtu or pei_mtu(1120))
        self._events: asyncio.Queue[TransportEvent | None] = asyncio.Queue(maxsize=1000)
        self._queue = SdsQueue(self._interval)
        self._present = False
        self._registered = True
        self._down_reason = ""
        """Why a present radio is not usable: not registered, or not answering commands."""
        self.peers = PeerHold(name, options.peer_hold, self._emit)
        self._reports = ReportBook(name, self.peers, logger)
        self._closed = False
        self._runner: asyncio.Task[None] | None = None
        self.info: RadioInfo | None = None
        self.counters = {"sent": 0, "received": 0, "reports_sent": 0, "refused": 0, "events_dropped": 0}
        self.terminals: TerminalGate | None = None
        """Reads texts typed on team terminals (``team_texts = true``); ``open_transport`` sets it."""

    def _capabilities(self, mtu: int) -> Capabilities:
        return Capabilities(
            mtu=mtu,
            link_ack=True,
            cost=Cost.METERED,
            bytes_per_second=mtu / self._interval,
            entry=self._options.entry,
        )

    @property
    def up(self) -> bool:
        return self._present and self._registered

    # --- life cycle ----------------------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            self._adopt(await self._driver.open())
        except (ModemError, ProtocolError) as exc:
            # A hub must start even with its radio unplugged; the supervisor keeps trying to open it.
            self._log.warning("%s: radio not ready at start: %s", self.name, exc)
            self._emit(LinkChanged(up=False, reason=f"radio not ready: {exc}"))
        self._runner = asyncio.create_task(self._supervise(), name=f"sine {self.name} supervisor")

    def _adopt(self, info: RadioInfo) -> None:
        self.info = info
        radio_mtu = pei_mtu(info.max_bits)
        mtu = min(self._options.mtu, radio_mtu) if self._options.mtu else radio_mtu
        self.capabilities = self._capabilities(mtu)
        self._present = self._registered = True
        self._log.info("%s: radio ISSI %s at %d baud, MTU %d bytes", self.name, info.issi, info.baud, mtu)
        self._emit(LinkChanged(up=True, reason=f"radio {info.issi} ready"))

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        runner, self._runner = self._runner, None
        try:
            await cancel_and_wait(runner)
        finally:
            await self._driver.aclose()
            self._fail_everything(TransportClosed("transport closed", transport=self.name))
            with contextlib.suppress(asyncio.QueueEmpty):
                while self._events.full():
                    self._events.get_nowait()
            self._events.put_nowait(None)

    async def _supervise(self) -> None:
        delays = backoff_delays(initial=0.5, cap=30.0)
        while True:
            if self._present:
                reason = await self._serve()
                self._present = False
                self._emit(LinkChanged(up=False, reason=reason))
                self._fail_everything(LinkDown(reason, transport=self.name))
            try:
                self._adopt(await self._driver.reopen(deadline=30.0))
                delays = backoff_delays(initial=0.5, cap=30.0)
            except (ModemError, ProtocolError) as exc:
                self._log.info("%s: radio still away: %s", self.name, exc)
                await asyncio.sleep(next(delays))

    async def _serve(self) -> str:
        """Run the radio until it vanishes; returns why it stopped."""
        reason = "radio stopped"
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._receive_loop(), name=f"sine {self.name} receive")
                group.create_task(self._send_loop(), name=f"sine {self.name} send")
                group.create_task(self._health_loop(), name=f"sine {self.name} health")
        except* DeviceGone as gone:
            reason = f"radio unplugged: {gone.exceptions[0]}"
        return reason

    # --- sending -------------------------------------------------------------------------------------------

    async def send(self, dest: str, data: bytes, *, priority: int = 1) -> None:
        self._check_usable(dest)
        address = sds_address(dest, self.name)
        peer = pei.ssi_of(address)
        self.peers.check(peer)
        if len(data) > self.capabilities.mtu:
            raise FrameTooLarge(
                f"{len(data)} bytes > MTU {self.capabilities.mtu}", transport=self.name, peer=dest
            )
        ref = self._reports.allocate(peer, self._interval)
        job = SdsJob(address, pei.Transfer(self._driver.send_pid, ref, data), None, ref)
        future = self._enqueue(job, priority)
        self._reports.wait(peer, ref, future)
        try:
            async with asyncio.timeout(self._options.max_queue_seconds + self._options.timeout):
                await future
        except TimeoutError as exc:
            raise LinkDown("no delivery report in time", transport=self.name, peer=dest) from exc
        finally:
            self._reports.forget(peer, job.ref, future)
            future.cancel()
        self.counters["sent"] += 1

    async def send_status(self, dest: str, name: str, *, priority: int = 2) -> None:
        """Send the status ``name`` of the plan as a status SDS; returns once the radio has sent it."""
        self._check_usable(dest)
        dest = sds_address(dest, self.name)
        try:
            value = self.plan.value(name)
        except KeyError as exc:
            raise DeliveryRefused(
                str(exc.args[0]), transport=self.name, peer=dest, reason="unknown-status"
            ) from exc
        future = self._enqueue(SdsJob(dest, value, None), priority)
        try:
            async with asyncio.timeout(self._options.max_queue_seconds + self._options.timeout):
                await future
        except TimeoutError as exc:
            raise LinkDown("status not sent in time", transport=self.name, peer=dest) from exc
        finally:
            future.cancel()

    def _check_usable(self, dest: str) -> None:
        if self._closed:
            raise TransportClosed("send after close", transport=self.name, peer=dest)
        if not self.up:
            reason = self._down_reason if self._present else "radio unplugged"
            raise LinkDown(reason, transport=self.name, peer=dest)

    def drain_seconds(self, priority: int) -> float:
        """How long a new SDS of ``priority`` would wait for its turn on the control channel."""
        return self._queue.wait_seconds(priority)

    def _enqueue(self, job: SdsJob, priority: int) -> asyncio.Future[None]:
        """Queue a frame or status SDS (refused when it would wait too long); its future settles its fate."""
        wait = self.drain_seconds(priority)
        if wait > self._options.max_queue_seconds:
            self.counters["refused"] += 1
            raise BudgetExhausted(
                f"SDS queue needs {wait:.0f} s", transport=self.name, peer=job.dest, retry_after=wait
            )
        job.future = asyncio.get_running_loop().create_future()
        self._push(job, priority)
        return job.future

    def _push(self, job: SdsJob, priority: int) -> None:
        self._queue.push(job, priority)

    async def _send_loop(self) -> None:
        while True:
            job = await self._queue.next_due()
            if job.future is not None and job.future.done():
                continue  # the caller gave up while it waited
            try:
                await self._transmit(job)
            finally:
                self._queue.sent_now()

    async def _transmit(self, job: SdsJob) -> None:
        try:
            if isinstance(job.payload, int):
                submission = await self._driver.send_status(job.dest, job.payload)
            else:
                submission = await self._driver.send_sdstl(job.dest, job.payload)
        except DeviceGone:
            settle(job.future, LinkDown("radio unplugged mid-send", transport=self.name, peer=job.dest))
            raise
        except CommandTimeout as exc:
            # Plugged in but mute: nothing else would tell us, so the command deadline does. The link goes
            # down at once (what waits goes elsewhere); the health check brings it back once it answers.
            reason = f"radio not answering: {exc}"
            settle(job.future, LinkDown(reason, transport=self.name, peer=job.dest))
            self._set_usable(False, reason)
            return
        except CmeError as exc:
            if exc.code in pei.BUSY_ERRORS:  # still busy after the driver's retries: later, not down
                self.counters["refused"] += 1
                busy = BudgetExhausted(
                    f"radio busy: {exc}", transport=self.name, peer=job.dest, retry_after=2 * self._interval
                )
                settle(job.future, busy)
            else:
                settle(job.future, LinkDown(f"radio did not send: {exc}", transport=self.name, peer=job.dest))
            return
        except (ModemError, ProtocolError) as exc:  # no answer, an unreadable +CMGS
            settle(job.future, LinkDown(f"radio did not send: {exc}", transport=self.name, peer=job.dest))
            return
        if isinstance(job.payload, pei.Report):
            self.counters["reports_sent"] += 1
            return
        if isinstance(job.payload, pei.Transfer) and submission.ref is not None and submission.ref != job.ref:
            self._reports.rekey(job.peer, job.ref, submission.ref)
            job.ref = submission.ref
        submission.sent.add_done_callback(lambda sent: self._on_sent(job, sent))

    def _on_sent(self, job: SdsJob, sent: asyncio.Future[bool]) -> None:
        """The radio's over-the-air result: a status is done once sent; a frame still awaits its report,
        for ``timeout`` seconds (a far radio that went mute or lost its network sends none)."""
        if sent.cancelled() or sent.result():
            if isinstance(job.payload, int):
                settle(job.future, None)
            elif job.future is not None and not job.future.done():
                deadline = asyncio.get_running_loop().call_later(self._options.timeout, self._no_report, job)
                job.future.add_done_callback(lambda _: deadline.cancel())
            return
        self.counters["refused"] += 1
        busy = BudgetExhausted(
            "control channel refused the SDS",
            transport=self.name,
            peer=job.dest,
            retry_after=2 * self._interval,
        )
        settle(job.future, busy)

    def _no_report(self, job: SdsJob) -> None:
        """A sent frame's report did not come: the far radio is mute or off its network. It counts as
        down like an unreachable one, so what waits for it here takes another way at once."""
        reason = f"no delivery report within {self._options.timeout:g} s"
        self.peers.down(job.peer, reason)
        settle(job.future, LinkDown(reason, transport=self.name, peer=job.dest))

    # --- receiving -----------------------------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        while True:
            event = await self._driver.next_event()
            match event:
                case SdsReceived(source=None, pdu=pdu):
                    # Without the calling party there is no one to report to; the frame is signed and
                    # says who sent it, so it is still worth handing on.
                    self._log.info("%s: SDS ref %d without a calling party", self.name, pdu.ref)
                    self.counters["received"] += 1
                    self._emit(Received("", pdu.data, {"sds_ref": pdu.ref}))
                case SdsReceived(source=str() as source, pdu=pdu):
                    self.peers.up(source)
                    self._report_back(source, pdu)
                    self.counters["received"] += 1
                    self._emit(Received(source, pdu.data, {"sds_ref": pdu.ref}))
                case TextReceived(source=source, pdu=pdu, text=text) if self.terminals is not None:
                    if (heard := self.terminals.judge(source, pdu.ref, text)) is not None:
                        self._report_back(heard.sender, pdu)  # only to a terminal we know
                        self._emit(heard)
                case ReportReceived(source=source, report=report):
                    self._reports.on_report(source, report)
                case StatusReceived(source=source, value=value):
                    if value in pei.USER_STATUS:
                        meta = {"status": self.plan.name(value), "value": value}
                        self._emit(Received(source or "", encode_status(value), meta))
                    else:
                        self._log.info("%s: ignored network status 0x%04X from %s", self.name, value, source)

    def _report_back(self, source: str, pdu: pei.Transfer) -> None:
        """The SDS-REPORT ``pdu`` asked for, before anything else we send."""
        if pdu.report is not pei.ReportRequest.NONE:
            status = pei.DeliveryStatus.CONSUMED
            if pdu.report is not pei.ReportRequest.CONSUMED:
                status = pei.DeliveryStatus.RECEIVED
            self._push(SdsJob(source, pei.Report(pdu.pid, pdu.ref, status), None), REPORT_PRIORITY)

    async def answer_terminal(self, dest: str, text: str) -> None:
        """A text SDS to a team's terminal (the answer to its coded visit): after our reports, before frames;
        no report asked. Returns once queued: the nurse sends again if no answer comes. Answers that would
        wait longer than ``max_queue_seconds`` are refused (``BudgetExhausted``) like frames: a terminal
        that keeps sending cannot fill the queue and hold the control channel with answers."""
        self._check_usable(dest)
        wait = self.drain_seconds(ANSWER_PRIORITY)
        if wait > self._options.max_queue_seconds:
            self.counters["refused"] += 1
            raise BudgetExhausted(
                f"SDS queue needs {wait:.0f} s", transport=self.name, peer=dest, retry_after=wait
            )
        data = pei.encode_text(text[:TEXT_CHARS])
        ref = self._reports.allocate(pei.ssi_of(dest), self._interval)
        pdu = pei.Transfer(pei.TEXT_PID, ref, data, pei.ReportRequest.NONE)
        self._push(SdsJob(dest, pdu, None), ANSWER_PRIORITY)

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self._options.health_interval)
            try:
                registered = await self._driver.registered()
                reason = "registered on the network" if registered else "not registered on the network"
            except DeviceGone:
                raise
            except CmeError as exc:
                if exc.code in pei.BUSY_ERRORS:
                    continue  # a busy radio tells nothing about registration: ask again next time
                self._log.warning("%s: registration check failed: %s", self.name, exc)
                registered, reason = False, "not registered on the network"
            except CommandTimeout as exc:
                registered, reason = False, f"radio not answering: {exc}"
            except (ModemError, ProtocolError) as exc:
                self._log.warning("%s: registration check failed: %s", self.name, exc)
                registered, reason = False, "not registered on the network"
            self._set_usable(registered, reason)

    def _set_usable(self, usable: bool, reason: str) -> None:
        """Registered and answering (or not): tell the hub on a change; a link going down fails what
        waits on it, so the router can send it another way at once."""
        if not usable:
            self._down_reason = reason
        if usable == self._registered:
            return
        self._registered = usable
        self._log.log(logging.INFO if usable else logging.WARNING, "%s: %s", self.name, reason)
        self._emit(LinkChanged(up=usable, reason=reason))
        if not usable:
            self._fail_everything(LinkDown(reason, transport=self.name))

    # --- events and probing --------------------------------------------------------------------------------

    def _emit(self, event: TransportEvent) -> None:
        if self._closed:
            return
        try:
            self._events.put_nowait(event)
        except asyncio.QueueFull:  # a hub that stopped reading loses events, as a radio's buffer would
            self.counters["events_dropped"] += 1

    async def events(self) -> AsyncIterator[TransportEvent]:
        while True:
            event = await self._events.get()
            if event is None:
                self._events.put_nowait(None)
                return
            yield event

    async def probe(self, dest: str) -> None:
        """Cheap: the radio is present and registered and ``dest`` has not failed lately. Spends no SDS.

        A peer whose SDS failed (not registered, not reachable) counts as down for ``peer_hold`` seconds
        or until it is heard from; then the router may try it again, since only a send can tell."""
        self._check_usable(dest)
        self.peers.check(pei.ssi_of(sds_address(dest, self.name)))

    def status(self) -> dict[str, Any]:
        return {
            "radio": self.info.issi if self.info else None,
            "up": self.up,
            "queue": len(self._queue),
            "drain_seconds": round(len(self._queue) * self._interval, 1),
            "awaiting_reports": len(self._reports),
            **self.counters,
            **({"team_texts": dict(self.terminals.counters)} if self.terminals is not None else {}),
        }

    def _fail_everything(self, error: TransportError) -> None:
        for job in self._queue.clear():
            settle(job.future, error)
        self._reports.fail_all(error)


def pei_mtu(max_bits: int) -> int:
    """Largest frame in one SDS-TL transfer for a radio whose ``AT+CMGS=?`` maximum is ``max_bits``."""
    return min(max_bits, 2047) // 8 - pei.SDSTL_HEADER


async def open_transport(name: str, options: Mapping[str, Any], ctx: TransportContext) -> SineTransport:
    """``[links.<name>] kind = "sine"``; the keys are checked by ``transports.sine_status.parse_options``."""
    parsed = parse_options(name, options)
    driver = TetraDriver(
        parsed.device,
        parsed.baud,
        pid=parsed.pid,
        pid_fallback=parsed.pid_fallback,
        fallback_bits=8 * (parsed.mtu + pei.SDSTL_HEADER) if parsed.mtu else DEFAULT_MAX_BITS,
        deadline=parsed.command_deadline,
        confirm_deadline=min(30.0, parsed.timeout),
        busy_seconds=parsed.busy_seconds,
        texts=parsed.team_texts,
    )
    transport = SineTransport(name, driver, parsed, ctx.logger.getChild(f"sine.{name}"))
    if parsed.team_texts:
        terminals = load_terminals(ctx.data_dir / HANDHELDS_FILE)
        transport.terminals = TerminalGate(terminals, answer=transport.answer_terminal, log=transport._log)
    await transport.start()
    return transport


__all__ = ["REPORT_PRIORITY", "SineTransport", "StatusPlan", "open_transport", "pei_mtu"]
