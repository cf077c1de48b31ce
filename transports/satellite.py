"""The satellite link: Iridium SBD through a local 9603 modem, or through the provider's webhook and MT API.

One ``[links.<name>] kind = "satellite"`` table opens one of two roles. The **modem role** (``device``)
drives a 9603 on a serial port: a frame goes out as one MO message (``AT+SBDWB`` + ``AT+SBDIX``, retried
by the driver per MO status class) and MT traffic comes in with every session, when a ring alert is
answered, and on the optional schedule ``mailbox_check_minutes``; there is no blind polling, because an
empty mailbox check is billed. Addresses on this link are ``"cloud"`` (the provider's webhook, i.e. the
central hub in webhook role) and ``"RB0012345"`` (another modem on the same account: the provider forwards
a payload that starts with that prefix). A modem-to-modem payload also carries the sender's own ``RB``
serial after the destination's, because MT messages say nothing about who sent them. The **webhook role**
(``webhook_listen``) receives the provider's POSTs (``transports.satellite_webhook``) as frames from the
modem's IMEI and sends to an IMEI by queueing MT messages through ``mt_url``.

Every message costs credits (one per started 50 bytes, see ``hardware.iridium_sbd.credits_for``). A
daily budget, persisted in ``ctx.data_dir`` so a restart does not reset it, and a priority floor (both in
``transports.satellite_budget``) keep routine traffic off the link: ``send`` raises ``BudgetExhausted``
for frames below ``min_priority`` (default 2, urgent) or beyond ``daily_credit_budget``. The MTU (232 for
a modem, 250 for the webhook end) keeps every full fragment, prefixes included, at exactly five 50-byte
steps. A successful session proves only that the gateway has the bytes, so ``link_ack`` is False.
``probe`` reads signal bars (or reaches the MT API host) and never opens a paid session. Network time
(``AT-MSSTM``) is reported as ``TimeHint`` events.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from hardware import iridium_sbd as sbd
from hardware.iridium_driver import Iridium9603Driver, RetryPolicy, SessionReport
from hardware.serial_link import backoff_delays
from hub.core.clock import PLAUSIBLE_EPOCH, Clock, SystemClock
from hub.core.errors import (
    BeredtError,
    BudgetExhausted,
    DeliveryRefused,
    DeviceGone,
    LinkDown,
    ModemError,
    ProtocolError,
    TransportClosed,
)
from hub.core.options import Options
from hub.core.tasks import cancel_and_wait
from hub.core.transport import LinkChanged, Received, TimeHint, Transport, TransportContext

# Shared with the webhook role; re-exported so that these names stay importable from this module too.
from transports.satellite_budget import WEBHOOK_MTU as WEBHOOK_MTU
from transports.satellite_budget import CreditBudget as CreditBudget
from transports.satellite_budget import SatelliteBase as SatelliteBase
from transports.satellite_webhook import open_webhook_role

CLOUD = "cloud"
MODEM_MTU = 5 * sbd.CREDIT_BYTES - 2 * sbd.RB_PREFIX_SIZE  # 232: RB<dest> RB<own> + frame = 250 bytes
_TIME_HINT_INTERVAL = 600.0


class SatelliteModemTransport(SatelliteBase):
    """The modem role: a 9603 on ``device``."""

    def __init__(
        self,
        name: str,
        *,
        device: str,
        baud: int,
        budget: CreditBudget,
        logger: logging.Logger,
        min_priority: int = 2,
        serial: int | None = None,
        mailbox_check_minutes: float = 0.0,
        retry: RetryPolicy | None = None,
        session_deadline: float = 120.0,
        epoch: float | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(name, MODEM_MTU, budget, min_priority, logger)
        # Every MO goes to the provider, which hands it to the webhook configured for this modem: a hub
        # with no neighbour here can still announce itself to whoever holds that webhook.
        self.capabilities = dataclasses.replace(self.capabilities, entry=(CLOUD,))
        self.device, self.baud, self.serial = device, baud, serial
        self.mailbox_check_minutes = mailbox_check_minutes
        self.retry, self.session_deadline, self.epoch = retry, session_deadline, epoch
        self.clock = clock or SystemClock()
        self.driver: Iridium9603Driver | None = None
        self.ready = asyncio.Event()
        self._last_session = -1e18
        self._last_time_hint = -1e18
        self.time_hints_refused = 0
        self._supervisor: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._supervisor = asyncio.create_task(self._supervise(), name=f"{self.name} modem supervisor")

    # -- sending ----------------------------------------------------------------------------------

    def _wire(self, dest: str, data: bytes) -> bytes:
        if dest == CLOUD:
            return data
        try:
            target = sbd.parse_rb_address(dest)
        except ProtocolError as exc:
            raise DeliveryRefused(
                f"not a satellite address: use {CLOUD!r} or RB + 7 digits",
                transport=self.name,
                peer=dest,
                reason="address",
            ) from exc
        if self.serial is None:
            raise DeliveryRefused(
                "modem-to-modem sends need this modem's own serial (option 'serial')",
                transport=self.name,
                peer=dest,
                reason="no-serial",
            )
        return sbd.rb_prefix(target) + sbd.rb_prefix(self.serial) + data

    async def send(self, dest: str, data: bytes, *, priority: int = 1) -> None:
        if self.closed:
            raise TransportClosed("send after close", transport=self.name, peer=dest)
        wire = self._wire(dest, data)
        credits = self._admit(dest, data, priority, len(wire))
        driver = self.driver
        if driver is None:
            self.budget.refund(credits)
            raise LinkDown("modem not available", transport=self.name, peer=dest)
        try:
            report = await driver.send(wire)
        except BaseException as exc:
            self.budget.refund(credits)
            if isinstance(exc, BeredtError):
                raise self._map(exc, dest) from exc
            raise
        self.log.info(
            "%s: %d bytes to %s cost %d credits (%d of %d used today)%s",
            self.name,
            len(wire),
            dest,
            credits,
            self.budget.used_today,
            self.budget.daily,
            f" after failures {report.failed}" if report.failed else "",
        )
        await self._after_session(driver, report)

    def _map(self, exc: BeredtError, dest: str) -> BeredtError:
        if isinstance(exc, DeviceGone):
            return LinkDown(f"modem unplugged: {exc}", transport=self.name, peer=dest)
        if isinstance(exc, ModemError) and exc.command == "AT+SBDIX" and exc.code is not None:
            meaning, retry = sbd.mo_status_meaning(exc.code)
            if retry is sbd.RetryClass.NEVER:
                return DeliveryRefused(
                    f"gateway refused: {meaning}", transport=self.name, peer=dest, reason=str(exc.code)
                )
            return LinkDown(str(exc), transport=self.name, peer=dest)
        if isinstance(exc, ModemError | ProtocolError):
            return LinkDown(f"modem failed: {exc}", transport=self.name, peer=dest)
        return exc

    async def _after_session(self, driver: Iridium9603Driver, report: SessionReport) -> None:
        self._last_session = self.clock.monotonic()
        mt_credits = sum(sbd.credits_for(len(message)) for message in report.mt)
        if mt_credits:
            self.budget.spend(mt_credits)
        for message in report.mt:
            self._deliver_mt(message, driver.imei)
        if self.clock.monotonic() - self._last_time_hint >= _TIME_HINT_INTERVAL:
            await self._time_hint(driver)

    def _deliver_mt(self, message: bytes, imei: str) -> None:
        # A provider may or may not strip the RB prefix it forwarded on; ours, if present, goes first.
        if self.serial is not None and message.startswith(sbd.rb_prefix(self.serial)):
            message = message[sbd.RB_PREFIX_SIZE :]
        source = CLOUD
        tagged = sbd.split_rb_prefix(message)
        if tagged is not None:
            source, message = f"RB{tagged[0]:07d}", tagged[1]
        if message:
            self._put(
                Received(
                    source=source, data=message, meta={"imei": imei, "credits": sbd.credits_for(len(message))}
                )
            )

    async def _time_hint(self, driver: Iridium9603Driver) -> None:
        try:
            unix_time = await driver.network_time()
        except (ModemError, ProtocolError) as exc:
            self.log.info("%s: no network time: %s", self.name, exc)
            return
        if unix_time is None:
            return
        if unix_time < PLAUSIBLE_EPOCH:
            # A count read against the wrong era (msstm_epoch pinned to an old one) lands years back. A
            # wrong hint would be believed by a hub whose own clock is untrusted, so none is better.
            self.time_hints_refused += 1
            self.log.warning(
                "%s: Iridium network time reads %s; remove msstm_epoch or set Iridium's current epoch",
                self.name,
                datetime.fromtimestamp(unix_time, UTC).isoformat(timespec="seconds"),
            )
            return
        self._last_time_hint = self.clock.monotonic()
        self._put(TimeHint(unix_time=unix_time, source="iridium"))

    async def probe(self, dest: str) -> None:
        """Signal bars from the modem's last reading: no session, no credit."""
        if self.closed:
            raise TransportClosed("probe after close", transport=self.name, peer=dest)
        try:
            self._wire(dest, b"")
        except DeliveryRefused as exc:
            raise LinkDown(str(exc), transport=self.name, peer=dest) from exc
        driver = self.driver
        if driver is None:
            raise LinkDown("modem not available", transport=self.name, peer=dest)
        if driver.busy:
            return  # a session is running, which says more than signal bars; waiting for it would stall
        try:
            bars = await driver.signal(fast=True)
        except (ModemError, ProtocolError) as exc:
            raise LinkDown(f"modem does not answer: {exc}", transport=self.name, peer=dest) from exc
        if bars == 0:
            raise LinkDown("no satellite signal", transport=self.name, peer=dest)

    # -- background: open, ring alerts, scheduled checks, reopen after unplug ----------------------

    async def _supervise(self) -> None:
        delays = backoff_delays(1.0, 60.0)
        reported_down = False
        while True:
            try:
                driver = await Iridium9603Driver.open(
                    self.device,
                    self.baud,
                    retry=self.retry,
                    session_deadline=self.session_deadline,
                    epoch=self.epoch,
                )
            except (ModemError, ProtocolError) as exc:
                if not reported_down:
                    self._put(LinkChanged(up=False, reason=f"modem unavailable: {exc}"))
                    reported_down = True
                await asyncio.sleep(next(delays))
                continue
            delays = backoff_delays(1.0, 60.0)
            reported_down = False
            self.driver = driver
            await self._time_hint(driver)  # first, so the clock is set before any frame is stamped
            self.ready.set()
            self._put(LinkChanged(up=True, reason=f"modem {driver.imei} ready"))
            try:
                async with asyncio.TaskGroup() as group:
                    tasks = [group.create_task(self._answer_rings(driver), name=f"{self.name} ring alerts")]
                    if self.mailbox_check_minutes > 0:
                        tasks.append(
                            group.create_task(self._scheduled_checks(driver), name=f"{self.name} mailbox")
                        )
                    await driver.modem.gone.wait()
                    for task in tasks:
                        task.cancel()
            finally:
                self.driver = None
                self.ready.clear()
                await driver.aclose()
            self._put(LinkChanged(up=False, reason="modem unplugged"))
            reported_down = True

    async def _answer_rings(self, driver: Iridium9603Driver) -> None:
        while True:
            await driver.wait_ring()
            try:
                if not await driver.ring_pending():
                    self.log.info("%s: ring alert already answered by a session", self.name)
                    continue
            except (ModemError, ProtocolError) as exc:
                self.log.info("%s: ring status unknown (%s); answering", self.name, exc)
            delays = backoff_delays(self.retry.soon_initial if self.retry else 5.0, 300.0)
            for _ in range(5):
                if await self._check(driver, answer_ring=True):
                    break
                await asyncio.sleep(next(delays))

    async def _scheduled_checks(self, driver: Iridium9603Driver) -> None:
        interval = self.mailbox_check_minutes * 60.0
        while True:
            # A session in the meantime already brought the MT fields for free: wait on from it.
            wait = self._last_session + interval - self.clock.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            await self._check(driver, answer_ring=False)
            self._last_session = self.clock.monotonic()

    async def _check(self, driver: Iridium9603Driver, *, answer_ring: bool) -> bool:
        """One mailbox check; False when it should be tried again."""
        try:
            self.budget.reserve(1)  # an empty check is billed one credit; MT traffic is counted after
        except BudgetExhausted as exc:
            self.log.error("%s: not checking the mailbox: %s", self.name, exc)
            return True
        try:
            report = await driver.check_mailbox(answer_ring=answer_ring)
        except (ModemError, ProtocolError) as exc:
            self.budget.refund(1)
            self.log.warning("%s: mailbox check failed: %s", self.name, exc)
            return isinstance(exc, DeviceGone)  # the supervisor reopens; a retry here cannot help
        if not report.result.mo_ok:
            self.budget.refund(1)
            self.log.info("%s: mailbox check failed: %s", self.name, report.result.meaning)
            return False
        if report.mt:
            self.budget.refund(1)
        await self._after_session(driver, report)
        return True

    async def aclose(self) -> None:
        if self.closed and self._supervisor is None:
            return
        self._end_events()
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            await cancel_and_wait(supervisor)
        if self.driver is not None:
            await self.driver.aclose()
            self.driver = None


# -- configuration --------------------------------------------------------------------------------

_COMMON = {"kind", "daily_credit_budget", "min_priority"}
_MODEM = {
    "device",
    "baud",
    "serial",
    "mailbox_check_minutes",
    "retry_soon_seconds",
    "retry_later_seconds",
    "give_up_minutes",
    "session_timeout",
    "msstm_epoch",
}
_WEBHOOK = {
    "webhook_listen",
    "webhook_path",
    "webhook_token",
    "mt_url",
    "mt_username",
    "mt_password",
    "imeis",
}


async def open_transport(
    name: str, options: Mapping[str, Any], ctx: TransportContext, *, clock: Clock | None = None
) -> Transport:
    """``[links.<name>] kind = "satellite"``: ``device`` for the modem role or ``webhook_listen`` for the
    webhook role (see docs/satellite.md for every option)."""
    table = Options(options, f"links.{name}", known=_COMMON | _MODEM | _WEBHOOK)
    if ("device" in options) == ("webhook_listen" in options):
        raise table.error(
            "",
            "sæt præcis én af 'device' (et lokalt 9603-modem) eller 'webhook_listen' (udbyderens webhook)",
        )
    clock = clock or SystemClock()
    daily = table.integer("daily_credit_budget", 100, low=0, high=1_000_000)
    min_priority = table.integer("min_priority", 2, low=0, high=3)
    ctx.data_dir.mkdir(parents=True, exist_ok=True)
    budget = CreditBudget(ctx.data_dir / f"satellite-{name}-credits.json", daily, clock, transport=name)
    if "device" in options:
        stray = set(options) & _WEBHOOK
        if stray:
            raise table.error("", f"webhook-nøglerne {', '.join(sorted(stray))} gælder ikke for modem-rollen")
        soon = table.number("retry_soon_seconds", 5.0, low=0.001, high=3600)
        later = table.number("retry_later_seconds", 180.0, low=0.001, high=86400)
        # Back-off doubles from the configured first delay up to 12x (soon) or 5x (later) of it.
        retry = RetryPolicy(
            soon_initial=soon,
            soon_cap=12 * soon,
            later_initial=later,
            later_cap=5 * later,
            give_up_after=60.0 * table.number("give_up_minutes", 30.0, low=0.001, high=1440),
        )
        transport = SatelliteModemTransport(
            name,
            device=table.required_text("device", "modemets serielle enhed, fx /dev/serial/by-id/..."),
            baud=table.integer("baud", 19200, low=300, high=460800),
            budget=budget,
            logger=ctx.logger,
            min_priority=min_priority,
            serial=table.optional_integer(
                "serial", low=0, high=9_999_999, what="modemets RockBLOCK-serienummer (op til 7 cifre)"
            ),
            mailbox_check_minutes=table.number("mailbox_check_minutes", 0, low=0, high=10080),
            retry=retry,
            session_deadline=table.number("session_timeout", 120.0, low=1, high=600),
            epoch=table.number("msstm_epoch", 0.0, low=0, high=4e9) if "msstm_epoch" in table else None,
            clock=clock,
        )
        transport.start()
        return transport
    stray = set(options) & _MODEM
    if stray:
        raise table.error("", f"modem-nøglerne {', '.join(sorted(stray))} gælder ikke for webhook-rollen")
    return await open_webhook_role(table, ctx, budget, min_priority)
