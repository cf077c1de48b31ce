"""An asyncio driver for the Iridium 9602/9603 SBD transceiver (RockBLOCK 9603) on a serial port.

The driver turns the AT dialogue of Iridium's ISU AT Command Reference into five operations: send one MO
message (``AT+SBDWB`` then ``AT+SBDIX``, retried with back-off chosen by the MO status class), check the
mailbox (clear the MO buffer, then ``AT+SBDIX``, or ``AT+SBDIXA`` when answering a ring alert), read
signal bars (``AT+CSQF``/``AT+CSQ``), read network time (``AT-MSSTM``, read against Iridium's time eras,
see ``hardware.iridium_sbd.msstm_time``, unless ``epoch`` pins one) and wait for ``SBDRING``. After every
successful session it reads the MT message the session brought (``AT+SBDRB``) and runs further sessions
while the gateway reports more queued, so callers get all waiting MT traffic without polling blindly.

The modem runs one command at a time and nothing during a session; composite operations hold a lock so a
ring handler never clears the MO buffer between a write and its session. The lock is released during
retry back-off, so each attempt rewrites the MO buffer. After a successful session the MO buffer is
cleared: the 9603 keeps it, and the next mailbox check would send (and bill) it again.

Failures: ``ModemError`` with ``code`` = the MO status when a session fails for good (fault or size class,
or retries exhausted; ``hardware.iridium_sbd.mo_status_meaning(code)`` says why), ``ProtocolError`` for
an MO message outside 1-340 bytes or an MT message whose checksum stays wrong, and ``CommandTimeout``,
``CmeError`` and ``DeviceGone`` from ``hardware.modem.AtModem``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass

from hardware import iridium_sbd as sbd
from hardware.at import BinaryRead
from hardware.modem import AtModem
from hardware.serial_link import SerialLink, backoff_delays
from hub.core.clock import PLAUSIBLE_EPOCH
from hub.core.errors import ModemError, ProtocolError

log = logging.getLogger(__name__)

URC_PREFIXES = ("SBDRING", "+AREG:")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Back-off per MO status class. Real modems want seconds for RF drops and minutes for no service;
    tests shrink all of it."""

    soon_initial: float = 5.0
    soon_cap: float = 60.0
    later_initial: float = 180.0
    later_cap: float = 900.0
    give_up_after: float = 1800.0
    """Total seconds one ``send`` keeps trying before it raises."""


@dataclass(frozen=True, slots=True)
class SessionReport:
    """What one ``send`` or ``check_mailbox`` achieved."""

    result: sbd.SessionResult
    """The last session (the successful one for a send)."""
    mt: tuple[bytes, ...]
    """MT messages fetched, in arrival order."""
    failed: tuple[int, ...] = ()
    """MO status codes of the attempts that failed before success."""
    mt_dropped: int = 0
    """MT messages whose checksum stayed wrong after a re-read."""


class Iridium9603Driver:
    """One 9603 behind an ``AtModem``."""

    def __init__(
        self,
        modem: AtModem,
        *,
        retry: RetryPolicy | None = None,
        session_deadline: float = 120.0,
        epoch: float | None = None,
        max_mt_per_check: int = 32,
        rng: random.Random | None = None,
    ) -> None:
        self.modem = modem
        self.retry = retry or RetryPolicy()
        self.session_deadline = session_deadline
        self.epoch = epoch
        self.max_mt_per_check = max_mt_per_check
        self.imei = ""
        self.sessions = 0
        self.ring_alerts = False
        self._rng = rng or random.Random()
        self._lock = asyncio.Lock()

    @classmethod
    async def open(
        cls,
        device: str,
        baud: int = 19200,
        *,
        ring_alerts: bool = True,
        deadline: float = 5.0,
        retry: RetryPolicy | None = None,
        session_deadline: float = 120.0,
        epoch: float | None = None,
    ) -> Iridium9603Driver:
        """Open ``device``, start the AT reader and initialise the modem."""
        link = SerialLink(device, baud, name="iridium")
        modem = await AtModem.open(link, urc_prefixes=URC_PREFIXES, deadline=deadline)
        driver = cls(modem, retry=retry, session_deadline=session_deadline, epoch=epoch)
        try:
            await driver.initialise(ring_alerts=ring_alerts)
        except BaseException:
            await modem.aclose()
            raise
        return driver

    async def initialise(self, *, ring_alerts: bool = True) -> None:
        """Echo off, verbose results, no flow control, DTR ignored (3-wire RockBLOCK wiring), ring alerts,
        IMEI. A modem another client left with numeric results (``ATV0``) answers the first command
        ``0``; that is taken as its OK."""
        async with self._lock:
            await self.modem.command("ATE0V1Q0", finals=("0",))
            for command in ("AT&K0", "AT&D0"):
                await self.modem.command(command)
            await self._clear(sbd.ClearBuffer.MO)  # a stale MO message would go out with the next check
            self.ring_alerts = ring_alerts
            if ring_alerts:
                await self.modem.command(sbd.sbdmta_command(True).decode().strip())
                await self.modem.command(sbd.sbdareg_command(1).decode().strip())
            response = await self.modem.command("AT+CGSN")
            self.imei = sbd.parse_imei(_info_line(response.info, "", "AT+CGSN"))

    # -- sending ----------------------------------------------------------------------------------

    async def send(self, data: bytes) -> SessionReport:
        """Send one MO message, retrying per its MO status class until success or the policy gives up."""
        sbd.sbdwb_payload(data)  # size check before the modem is touched
        loop = asyncio.get_running_loop()
        started = loop.time()
        soon = backoff_delays(self.retry.soon_initial, self.retry.soon_cap, self._rng)
        later = backoff_delays(self.retry.later_initial, self.retry.later_cap, self._rng)
        failed: list[int] = []
        while True:
            async with self._lock:
                await self._write_mo(data)
                result = await self._session(answer_ring=False)
                if result.mo_ok:
                    await self._clear(sbd.ClearBuffer.MO)
                    mt, dropped = await self._collect_mt(result)
                    return SessionReport(result, mt, tuple(failed), dropped)
            failed.append(result.mo_status)
            retry = result.retry_class
            if retry in (sbd.RetryClass.FAULT, sbd.RetryClass.NEVER):
                raise ModemError(
                    f"session failed: {result.meaning} ({result.mo_status})",
                    device=self.modem.link.device,
                    command="AT+SBDIX",
                    code=result.mo_status,
                )
            delay = next(soon if retry is sbd.RetryClass.SOON else later)
            if loop.time() - started + delay > self.retry.give_up_after:
                raise ModemError(
                    f"gave up after {len(failed)} sessions; last: {result.meaning} ({result.mo_status})",
                    device=self.modem.link.device,
                    command="AT+SBDIX",
                    code=result.mo_status,
                )
            log.info(
                "iridium session failed (%s, %d); retrying in %.1f s", result.meaning, result.mo_status, delay
            )
            await asyncio.sleep(delay)

    async def check_mailbox(self, *, answer_ring: bool = False) -> SessionReport:
        """One session with an empty MO buffer (``AT+SBDIXA`` for a ring), then every queued MT message.

        A failed session is not retried here: the caller decides when the next check is worth a credit.
        """
        async with self._lock:
            await self._clear(sbd.ClearBuffer.MO)
            result = await self._session(answer_ring=answer_ring)
            if not result.mo_ok:
                return SessionReport(result, (), (result.mo_status,))
            mt, dropped = await self._collect_mt(result)
            return SessionReport(result, mt, (), dropped)

    async def _collect_mt(self, first: sbd.SessionResult) -> tuple[tuple[bytes, ...], int]:
        messages: list[bytes] = []
        dropped = 0
        result = first
        for _ in range(self.max_mt_per_check):
            if result.mt_status is not sbd.MtStatus.RECEIVED:
                more = result.mt_queued > 0
            else:
                try:
                    messages.append(await self._read_mt_quietly())
                except ProtocolError as exc:
                    dropped += 1
                    log.warning("iridium MT %d dropped: %s", result.mtmsn, exc)
                # A ring that came while ring alerts were off for the read shows only in the RA flag.
                more = result.mt_queued > 0 or (self.ring_alerts and await self._ring_flag())
            if not more:
                break
            result = await self._session(answer_ring=False)
            if not result.mo_ok:
                break
        return tuple(messages), dropped

    async def _read_mt_quietly(self) -> bytes:
        # hardware.at takes the SBDRB block by count from the first byte after the command, so an SBDRING
        # crossing AT+SBDRB on the wire would be read as a length prefix. With ring alerts off for the read
        # no URC can come between; a ring alert in that window stays in the RA flag (see _collect_mt).
        if not self.ring_alerts:
            return await self._read_mt_checked()
        await self.modem.command(sbd.sbdmta_command(False).decode().strip())
        try:
            return await self._read_mt_checked()
        finally:
            await self.modem.command(sbd.sbdmta_command(True).decode().strip())

    async def _read_mt_checked(self) -> bytes:
        # The MT buffer keeps its message, so a checksum error on the serial line costs one re-read,
        # not a lost message.
        try:
            return await self._read_mt()
        except ProtocolError as exc:
            log.info("iridium SBDRB checksum error, reading again: %s", exc)
            return await self._read_mt()

    # -- single commands --------------------------------------------------------------------------

    async def _write_mo(self, data: bytes) -> None:
        command = sbd.sbdwb_command(len(data)).decode().strip()
        ready = await self.modem.command(command, finals=("READY",))
        if ready.result != "READY":
            raise ModemError(
                f"no READY: {ready.info}", device=self.modem.link.device, command=command, code=None
            )
        answer = await self.modem.command(command + " <data>", data=sbd.sbdwb_payload(data))
        written = sbd.parse_write_result(_info_line(answer.info, "", command))
        if written is not sbd.WriteResult.OK:
            raise ModemError(
                f"MO write failed: {written.name.lower().replace('_', ' ')}",
                device=self.modem.link.device,
                command=command,
                code=int(written),
            )

    async def _session(self, *, answer_ring: bool) -> sbd.SessionResult:
        command = sbd.sbdix_command(answer_ring).decode().strip()
        response = await self.modem.command(command, deadline=self.session_deadline)
        self.sessions += 1
        return sbd.parse_sbdix(_info_line(response.info, "+SBDIX", command))

    async def _read_mt(self) -> bytes:
        response = await self.modem.command("AT+SBDRB", binary=BinaryRead())
        parsed = sbd.parse_sbdrb(response.binary or b"")
        if parsed is None:
            raise ProtocolError("SBDRB answer shorter than its length prefix")
        return parsed[0]

    async def _clear(self, which: sbd.ClearBuffer) -> None:
        command = sbd.sbdd_command(which).decode().strip()
        response = await self.modem.command(command)
        if not sbd.parse_sbdd_result(_info_line(response.info, "", command)):
            raise ModemError("buffer not cleared", device=self.modem.link.device, command=command, code=1)

    @property
    def busy(self) -> bool:
        """A session or another exchange holds the modem (a session can take a minute or more)."""
        return self._lock.locked()

    async def read_mt(self) -> bytes:
        """The MT buffer as it is now (``ProtocolError`` on a checksum mismatch)."""
        async with self._lock:
            return await self._read_mt()

    async def signal(self, *, fast: bool = True) -> int:
        """Signal bars 0-5: the last reading (``AT+CSQF``, instant) or a fresh one (``AT+CSQ``, seconds)."""
        command = "AT+CSQF" if fast else "AT+CSQ"
        async with self._lock:
            response = await self.modem.command(command, deadline=5.0 if fast else 60.0)
        return sbd.parse_csq(_info_line(response.info, "+CSQ", command))

    async def network_time(self) -> float | None:
        """Unix time from the Iridium network, or None without network service."""
        async with self._lock:
            response = await self.modem.command("AT-MSSTM")
        frames = sbd.parse_msstm_frames(_info_line(response.info, "-MSSTM", "AT-MSSTM"))
        if frames is None:
            return None
        if self.epoch is not None:
            return self.epoch + frames * sbd.TICK_SECONDS
        return sbd.msstm_time(frames, not_before=PLAUSIBLE_EPOCH)

    async def ring_pending(self) -> bool:
        """Whether a ring alert still waits for an answer (``AT+SBDSX``); a session that fetched the
        message in the meantime answered it, and a second one would cost a credit for nothing."""
        async with self._lock:
            return await self._ring_flag()

    async def _ring_flag(self) -> bool:
        response = await self.modem.command("AT+SBDSX")
        return sbd.parse_sbdsx(_info_line(response.info, "+SBDSX", "AT+SBDSX")).ring_alert

    async def wait_ring(self, deadline: float | None = None) -> None:
        """Return at the next ``SBDRING``; other URCs are logged and skipped."""
        loop = asyncio.get_running_loop()
        end = None if deadline is None else loop.time() + deadline
        while True:
            remaining = None if end is None else max(0.0, end - loop.time())
            urc = await self.modem.next_urc(remaining)
            if sbd.is_ring(urc.line):
                return
            log.info("iridium URC %s", urc.line)

    async def aclose(self) -> None:
        await self.modem.aclose()


def _info_line(info: tuple[str, ...], prefix: str, command: str) -> str:
    """The last information line starting with ``prefix`` (an echoed command line never matches)."""
    for line in reversed(info):
        if line.startswith(prefix) and not line.upper().startswith("AT"):
            return line
    raise ProtocolError(f"{command}: no {prefix or 'result'} line in the answer {info!r}")
