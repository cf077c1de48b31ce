"""The LoRa mesh link: Beredt frames as Meshtastic direct messages, through the real ``meshtastic`` library.

A ``LoraTransport`` drives one Meshtastic radio, attached by USB serial (``device = "/dev/..."``) or over
the network (``host = "host:port"``). Each frame goes out as one mesh packet on a private port (256-511)
addressed to the peer's radio as ``!xxxxxxxx`` with ``want_ack``; ``send`` returns when the far radio's
routing ACK arrives, so the ACK doubles as Beredt's hop ack (``link_ack``). Routing NAKs are mapped to
our errors.

On a multi-hop mesh the firmware (``ReliableRouter``) first reports an *implicit ACK*: a routing answer
with no error whose ``from`` is our own radio, generated when it hears a neighbour rebroadcast the packet.
It then stops retransmitting, and the real ACK from the destination follows. An implicit ACK is neither
a delivery nor a failure: ``send`` keeps waiting for the destination's ACK until ``ack_timeout`` and
never resends on its account; only if the destination stays silent until then is the send a
``LinkDown`` (the relay may have lost it; the hub's store tries again and the far hub drops a repeat).

``probe`` proves the far radio is reachable, not only ours: per peer it keeps the last proof of life
(any packet or ACK from it) and, for a peer not heard from within ``peer_check_interval``, sends a
traceroute (``TRACEROUTE_APP``, answered by the far firmware itself) in the background, inside the
airtime budget at routine priority. A peer that does not answer, or a send that ends without its ACK,
marks that peer down (``LinkChanged(peer=...)``) until it is heard from again.

Before each send the rolling-hour airtime budget (``transports.lora_airtime``) is consulted so that
the radio's own EU 868 duty-cycle refusal is never provoked in normal operation and routine traffic
leaves room for life-safety traffic.

The library is thread-based and blocking: every call into it runs on a thread of its own with a deadline
(``transports.blocking``; the packets handed to it are in ``transports.lora_packets``), and its pubsub
callbacks (bound methods of the transport, which pubsub holds only weakly; filtered on the ``interface``
argument because pubsub is process-global) reach the event loop only through
``loop.call_soon_threadsafe``. A supervisor task owns the connection: when the radio is lost it closes
the interface, backs off (capped, jittered) and builds a new one, emitting ``LinkChanged``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from pubsub import pub

from hub.core.errors import (
    BudgetExhausted,
    DeliveryRefused,
    FrameTooLarge,
    LinkDown,
    TransportClosed,
)
from hub.core.frame import Priority
from hub.core.handhelds import FILE_NAME as HANDHELDS_FILE
from hub.core.handhelds import load_handhelds, node_label
from hub.core.metering import AIRTIME, charge
from hub.core.tasks import cancel_and_wait
from hub.core.transport import (
    BROADCAST_ADDRESS,
    Capabilities,
    Cost,
    LinkChanged,
    PersonalAlarm,
    Received,
    TimeHint,
    TransportContext,
    TransportEvent,
)
from transports.lora_airtime import AirtimeBudget, packet_airtime
from transports.lora_alarm import ALARM_PORTS, AlarmGate, clip
from transports.lora_duty import DUTY_CYCLE_BACKOFF, RadioDutyCycle
from transports.lora_interface import (
    backoff,
    close_interface,
    my_id,
    my_node_num,
    node_num,
    open_interface,
    plugged_in,
)
from transports.lora_packets import (
    POSITION_APP,
    ROUTING_APP,
    TRACE_BYTES,
    send_frame,
    send_text,
    traceroute,
)
from transports.lora_peers import PeerWatch, TraceOutcome
from transports.lora_send import AckWaiter, PriorityGate, drop_response_handlers
from transports.lora_settings import LoraSettings
from transports.lora_watch import CONNECTION_LOST, RadioWatch

MTU = 216
"""Bytes of Beredt frame per mesh packet. The firmware refuses (TOO_LARGE) a packet whose encoded ``Data``
plus the 16-byte header and, for a PKI direct message, 12 bytes of tag and nonce exceed 255 bytes;
``Data`` wraps our bytes in 8 (portnum 256: 3, payload length: 3, the bitfield the firmware adds: 2), so
219 fit; 216 leaves 3 spare, and a fully filled status sealed to one recipient (212) goes in one packet."""
ADDRESS = re.compile(r"^![0-9a-fA-F]{8}$")
START_WAIT = 5.0
"""Seconds ``open_transport`` waits for the radio before returning with the link still coming up."""
RETRANSMISSIONS = 3
"""What the firmware spends on a lost ``want_ack`` packet beyond the first transmission."""
LINK_DOWN_REASONS = {"NO_ROUTE", "MAX_RETRANSMIT", "TIMEOUT"}
BUDGET_REASONS = {"DUTY_CYCLE_LIMIT": DUTY_CYCLE_BACKOFF, "RATE_LIMIT_EXCEEDED": 60.0}


class LoraTransport:
    """One Meshtastic radio as a Beredt link. Open it with ``open_transport``; it is started already."""

    def __init__(self, name: str, settings: LoraSettings, ctx: TransportContext) -> None:
        self.name = name
        self.settings = settings
        preset = settings.preset
        self.capabilities = Capabilities(
            mtu=MTU,
            link_ack=True,
            cost=Cost.METERED,
            bytes_per_second=MTU / packet_airtime(MTU, preset),
            broadcast=True,
        )
        self._log = ctx.logger.getChild(f"lora.{name}")
        self._loop = asyncio.get_running_loop()
        self._budget = AirtimeBudget(settings.airtime_budget_seconds)
        self._duty = RadioDutyCycle()
        self._gate = PriorityGate()
        self._events: asyncio.Queue[TransportEvent | None] = asyncio.Queue(maxsize=1000)
        self._iface: Any = None
        self._up = asyncio.Event()
        self._lost = asyncio.Event()
        self._watch = RadioWatch(settings.radio_check_interval, settings.radio_check_timeout)
        self._waiters: set[AckWaiter] = set()
        self._closed = False
        self._reported_up: bool | None = None
        self._trace_airtime = packet_airtime(TRACE_BYTES, preset)
        self._peers = PeerWatch(
            settings.peer_check_interval,
            trace=self._trace,
            may_spend=self._may_trace,
            emit=self._put,
            log=self._log,
        )
        self.counters = {"implicit_acks": 0, "unconfirmed_after_relay": 0}
        self.alarms: AlarmGate | None = None
        if settings.personal_alarms:
            handhelds = load_handhelds(ctx.data_dir / HANDHELDS_FILE)
            if not handhelds:
                self._log.warning(
                    "personal alarms on, but %s lists no handhelds", ctx.data_dir / HANDHELDS_FILE
                )
            self.alarms = AlarmGate(
                handhelds, interval=settings.alarm_interval, log=self._log, answer=self._answer_handheld
            )
        # Pubsub keeps weak references: bound methods of this transport live as long as it does.
        pub.subscribe(self._on_receive_thread, "meshtastic.receive")
        pub.subscribe(self._on_lost_thread, "meshtastic.connection.lost")
        pub.subscribe(self._on_notice_thread, "meshtastic.clientNotification")
        self._supervisor: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start connecting; wait a little for the radio, then let the supervisor keep trying.

        The hub opens its links one after another: a missing or slow radio must not hold up the others
        for a whole ``connect_timeout``, and a serial radio that is not plugged in (no device node) is
        not waited for at all. Until the radio answers, sends fail with ``LinkDown``.
        """
        self._supervisor = asyncio.create_task(self._supervise(), name=f"lora-{self.name}-supervisor")
        device = self.settings.device
        if device is not None and not plugged_in(device):
            self._log.info("no radio at %s yet: the link comes up when one is plugged in", device)
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(START_WAIT, self.settings.connect_timeout)):
                await self._up.wait()

    # -- the Transport protocol ----------------------------------------------------------------------

    async def send(self, dest: str, data: bytes, *, priority: int = Priority.NORMAL) -> None:
        if self._closed:
            raise TransportClosed("send after close", transport=self.name, peer=dest)
        if len(data) > MTU:
            raise FrameTooLarge(f"{len(data)} bytes > MTU {MTU}", transport=self.name, peer=dest)
        if dest != BROADCAST_ADDRESS and not ADDRESS.match(dest):
            raise DeliveryRefused(
                f"not a mesh node id like !0badbeef: {dest!r}",
                transport=self.name,
                peer=dest,
                reason="bad-address",
            )
        async with self._gate.turn(priority):
            airtime = packet_airtime(len(data), self.settings.preset)
            self._check_budget(dest, airtime, priority)
            iface = self._iface
            if self._closed:
                raise TransportClosed("closed while waiting for the radio", transport=self.name, peer=dest)
            if iface is None or not self._up.is_set():
                raise LinkDown("radio not connected", transport=self.name, peer=dest)
            if dest == BROADCAST_ADDRESS:
                await send_frame(iface, self.settings, self.name, dest, data, None)
                self._spend(airtime)
                return
            waiter = AckWaiter(self._loop)
            self._waiters.add(waiter)
            try:
                sent = await send_frame(iface, self.settings, self.name, dest, data, waiter)
                if waiter.packet_id is None and isinstance(getattr(sent, "id", None), int):
                    waiter.packet_id = sent.id
                self._spend(airtime)  # the radio has it: it will go on the air
                answer = await self._final_answer(dest, waiter)
            finally:
                self._waiters.discard(waiter)
                drop_response_handlers(iface, waiter)
            if answer.get("decoded", {}).get("routing", {}).get("errorReason") == "DUTY_CYCLE_LIMIT":
                await self._duty.await_notice()
            self._settle_answer(dest, answer, airtime)

    async def _answer_handheld(self, node: int, text: str) -> None:
        """A short direct text to a team's handheld (the answer to its coded visit), inside the airtime
        budget at urgent priority; the firmware encrypts it with the handheld's public key. Returns once
        the radio has it: the answer is a courtesy, and the nurse sends again if none comes."""
        dest, data = node_label(node), clip(text).encode("utf-8")
        async with self._gate.turn(Priority.URGENT):
            airtime = packet_airtime(len(data), self.settings.preset)
            self._check_budget(dest, airtime, Priority.URGENT)
            iface = self._iface
            if iface is None or not self._up.is_set():
                raise LinkDown("radio not connected", transport=self.name, peer=dest)
            await send_text(iface, self.settings, self.name, dest, data)
            self._spend(airtime)

    async def events(self) -> AsyncIterator[TransportEvent]:
        while True:
            event = await self._events.get()
            if event is None:
                self._put(None)  # later callers also see the end
                return
            yield event

    async def probe(self, dest: str) -> None:
        """The radio is connected and ``dest`` has not been found unreachable; never waits for the air.

        A peer not heard from within ``peer_check_interval`` gets a traceroute in the background (if
        the airtime budget allows routine traffic); its outcome arrives as ``LinkChanged(peer=dest)``
        and decides what later probes say.
        """
        if self._closed:
            raise TransportClosed("probe after close", transport=self.name, peer=dest)
        if not self._up.is_set():
            raise LinkDown("radio not connected", transport=self.name, peer=dest)
        if dest == BROADCAST_ADDRESS:
            return
        if not ADDRESS.match(dest):
            raise LinkDown(f"not a mesh node id: {dest!r}", transport=self.name, peer=dest)
        key = self._peers.key(dest)
        self._peers.poke(key)
        if (doubt := self._peers.doubt(key)) is not None:
            raise LinkDown(doubt, transport=self.name, peer=dest)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        for listener, topic in (
            (self._on_receive_thread, "meshtastic.receive"),
            (self._on_lost_thread, "meshtastic.connection.lost"),
            (self._on_notice_thread, "meshtastic.clientNotification"),
        ):
            with contextlib.suppress(Exception):  # pubsub raises if the topic is already gone
                pub.unsubscribe(listener, topic)
        for waiter in list(self._waiters):
            waiter.fail(TransportClosed("closed while waiting for an ACK", transport=self.name))
        await self._peers.aclose()
        await cancel_and_wait(self._supervisor)
        await self._close_interface()
        self._put(None)

    def status(self) -> dict[str, Any]:
        """Airtime and queue figures for the links API."""
        now = time.monotonic()
        used = self._budget.used(now)
        per_packet = packet_airtime(MTU, self.settings.preset)
        depth = self._gate.depth
        wait = self._budget.decide(now, depth * per_packet, Priority.NORMAL).retry_after if depth else 0.0
        return {
            "connected": self._up.is_set(),
            "preset": self.settings.preset.name,
            "airtime_used_s": round(used, 3),
            "airtime_budget_s": self._budget.limit,
            "queue_depth": depth,
            "drain_seconds": round(max(wait, depth * per_packet), 1),
            "peers_down": self._peers.down_peers(),
            "peer_checks": self._peers.checks_started,
            "radio_checks": self._watch.checks,
            **self.counters,
            **({"personal_alarms": dict(self.alarms.counters)} if self.alarms is not None else {}),
        }

    # -- sending helpers -----------------------------------------------------------------------------

    def _spend(self, airtime: float) -> None:
        """Count airtime a send put on the air: against the hourly budget, and on the account of the
        exercise the hub sends for (``hub.core.metering``), if any."""
        self._budget.record(time.monotonic(), airtime)
        charge(AIRTIME, airtime)

    def _check_budget(self, dest: str, airtime: float, priority: int) -> None:
        now = time.monotonic()
        if (refusing := self._duty.refusing_for(now)) > 0:
            raise BudgetExhausted(
                "the radio refused for duty cycle", transport=self.name, peer=dest, retry_after=refusing
            )
        decision = self._budget.decide(now, airtime, priority)
        if not decision.allowed:
            raise BudgetExhausted(
                f"airtime budget {self._budget.limit:.0f} s/h spent ({self._budget.used(now):.0f} s used)",
                transport=self.name,
                peer=dest,
                retry_after=decision.retry_after,
            )

    async def _final_answer(self, dest: str, waiter: AckWaiter) -> dict[str, Any]:
        """The answer that settles a send: the destination's ACK, or a NAK; implicit ACKs only wait on."""
        relayed = False
        try:
            async with asyncio.timeout(self.settings.ack_timeout):
                while True:
                    answer = await waiter.next_answer()
                    routing = answer.get("decoded", {}).get("routing", {})
                    if routing.get("errorReason", "NONE") != "NONE" or answer.get("from") == node_num(dest):
                        return answer
                    # A relay repeated it: the radio stopped retransmitting, the real ACK is to follow.
                    relayed = True
                    self.counters["implicit_acks"] += 1
        except TimeoutError:
            self._peers.suspect(self._peers.key(dest))
            self._watch.poke()  # silence from far away, or from our own radio?
            if relayed:
                self.counters["unconfirmed_after_relay"] += 1
                raise LinkDown(
                    f"a relay repeated the frame but {dest} sent no ACK within "
                    f"{self.settings.ack_timeout:.0f} s",
                    transport=self.name,
                    peer=dest,
                ) from None
            raise LinkDown(
                f"no ACK within {self.settings.ack_timeout:.0f} s", transport=self.name, peer=dest
            ) from None

    def _settle_answer(self, dest: str, answer: dict[str, Any], airtime: float) -> None:
        decoded = answer.get("decoded", {})
        reason = str(decoded.get("routing", {}).get("errorReason", "NONE"))
        if reason == "NONE":
            self._peers.heard(self._peers.key(dest))  # the destination's own ACK (no other gets here)
            return
        if reason in LINK_DOWN_REASONS:
            if reason == "MAX_RETRANSMIT":
                self._spend(RETRANSMISSIONS * airtime)
            self._peers.suspect(self._peers.key(dest))
            raise LinkDown(f"radio reports {reason}", transport=self.name, peer=dest)
        if reason in BUDGET_REASONS:
            retry_after = self._duty.refused() if reason == "DUTY_CYCLE_LIMIT" else BUDGET_REASONS[reason]
            raise BudgetExhausted(
                f"radio reports {reason}", transport=self.name, peer=dest, retry_after=retry_after
            )
        if reason == "TOO_LARGE":
            raise FrameTooLarge("radio reports TOO_LARGE", transport=self.name, peer=dest)
        raise DeliveryRefused(f"radio reports {reason}", transport=self.name, peer=dest, reason=reason)

    # -- events from the library's threads ---------------------------------------------------------

    def _on_receive_thread(self, packet: dict[str, Any], interface: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: the transport is finished anyway
            self._loop.call_soon_threadsafe(self._on_packet, packet, interface)

    def _on_lost_thread(self, interface: Any) -> None:
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._on_lost, interface)

    def _on_notice_thread(self, notification: Any, interface: Any) -> None:
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._on_notice, notification, interface)

    def _on_notice(self, notification: Any, interface: Any) -> None:
        if interface is not self._iface or self._iface is None:
            return
        message = str(getattr(notification, "message", ""))
        self._log.warning("radio %s says: %s", my_id(interface), message)
        self._duty.heard(message)

    def _on_packet(self, packet: dict[str, Any], interface: Any) -> None:
        if interface is not self._iface or self._iface is None:
            return  # pubsub is process-global: another transport's radio, or one we already closed
        raw = packet.get("raw")
        portnum = getattr(getattr(raw, "decoded", None), "portnum", None)
        sender = packet.get("from")
        if not isinstance(sender, int):
            return
        if self._peers.knows(f"!{sender:08x}"):  # only peers we address: strangers cannot grow the book
            self._peers.heard(f"!{sender:08x}")
        if portnum == ROUTING_APP:
            request_id = packet.get("decoded", {}).get("requestId")
            for waiter in self._waiters:
                if waiter.packet_id is not None and waiter.packet_id == request_id:
                    waiter.offer(packet)
        elif portnum == self.settings.port:
            meta: dict[str, Any] = {
                k: packet[k] for k in ("rxSnr", "rxRssi", "hopStart", "hopLimit", "id") if k in packet
            }
            self._put(Received(source=f"!{sender:08x}", data=bytes(packet["decoded"]["payload"]), meta=meta))
        elif portnum in ALARM_PORTS and self.alarms is not None:
            if isinstance(heard := self.alarms.judge(packet, my_node_num(interface)), PersonalAlarm):
                self._log.warning("personal alarm from handheld !%08x (%s)", sender, heard.port)
            if heard is not None:
                self._put(heard)
        elif portnum == POSITION_APP and sender == my_node_num(interface):
            gps_time = packet.get("decoded", {}).get("position", {}).get("time")
            if isinstance(gps_time, int) and gps_time > 0:
                self._put(TimeHint(unix_time=float(gps_time), source="meshtastic-gps"))

    # -- peer reachability ----------------------------------------------------------------------------

    def _may_trace(self) -> bool:
        now = time.monotonic()
        return (
            self._iface is not None
            and self._budget.decide(now, self._trace_airtime, Priority.ROUTINE).allowed
        )

    async def _trace(self, dest: str) -> TraceOutcome:
        """Traceroute ``dest`` (``transports.lora_packets.traceroute``), its airtime counted once sent."""
        iface = self._iface
        if iface is None:
            return ""
        return await traceroute(
            iface, self.settings, dest, lambda: self._budget.record(time.monotonic(), self._trace_airtime)
        )

    def _on_lost(self, interface: Any) -> None:
        if interface is self._iface and interface is not None:
            self._lost.set()

    def _report(self, up: bool, reason: str) -> None:
        """Emit ``LinkChanged`` when the radio's state really changed, not for every failed attempt."""
        if self._reported_up != up:
            self._reported_up = up
            self._put(LinkChanged(up=up, reason=reason))

    def _put(self, event: TransportEvent | None) -> None:
        try:
            self._events.put_nowait(event)
        except asyncio.QueueFull:
            if event is None:  # the end marker must get in: make room by dropping the oldest event
                self._events.get_nowait()
                self._events.put_nowait(None)
            else:
                self._log.warning(
                    "event queue full: dropping %s (the hub is not reading)", type(event).__name__
                )

    # -- connection supervision ------------------------------------------------------------------

    async def _supervise(self) -> None:
        while True:
            iface = await self._connect_with_backoff()
            self._iface = iface
            self._lost.clear()
            self._up.set()
            self._report(True, f"radio {my_id(iface)} connected")
            reason = await self._watch.until_lost(iface, my_node_num(iface), self._lost)
            self._up.clear()
            for waiter in list(self._waiters):
                waiter.fail(LinkDown(reason, transport=self.name))
            if reason != CONNECTION_LOST:
                self._log.warning("radio %s: %s; connecting again", my_id(iface), reason)
            self._report(False, reason)
            await self._close_interface()

    async def _connect_with_backoff(self) -> Any:
        """A fresh back-off sequence for each loss: the first retry after a loss comes quickly."""
        for delay in backoff(self.settings.reconnect_max):
            try:
                return await open_interface(self.settings, self.name)
            except LinkDown as exc:
                self._report(False, str(exc))
                self._log.warning("cannot reach the radio: %s; retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable: the back-off sequence is endless")

    async def _close_interface(self) -> None:
        iface, self._iface = self._iface, None
        self._up.clear()
        if iface is not None:
            await close_interface(iface)


async def open_transport(name: str, options: Mapping[str, Any], ctx: TransportContext) -> LoraTransport:
    """``[links.<name>] kind = "lora"``: ``device`` or ``host``, ``port``, ``preset``, budget options."""
    transport = LoraTransport(name, LoraSettings.from_options(name, options), ctx)
    await transport.start()
    return transport
