"""Run AT commands on a serial modem, one at a time, each with a deadline, with URCs on the side.

``AtModem`` joins a ``SerialLink`` and an ``AtParser``: a reader task owned by the modem feeds every byte to
the parser and routes events, ``Response`` to the command waiting for it, ``Urc`` into a bounded queue,
``Prompt`` to the command that asked to wait for one. API:

* ``await AtModem.open(link, urc_prefixes=..., urc_with_data=..., deadline=...)`` - open the link (or
  take it already open) and start reading.
* ``await modem.command("AT+CNUMF?", deadline=5)`` -> ``Response`` on ``OK`` (or an extra final word given
  in ``finals``, e.g. Iridium's ``READY``). ``text`` is written after the command line (hex SDS data,
  ended by Ctrl-Z) - at once, or after the ``>`` prompt when ``wait_prompt`` is set. ``binary`` asks for a
  length-framed block before the final result (``AT+SBDRB``). ``data`` writes raw bytes instead of a
  command line and collects the answer the same way (the payload after ``AT+SBDWB``'s ``READY``).
* Raises ``CmeError`` (``code`` from ``+CME ERROR: <n>``/``+CMS ERROR: <n>``, None for ``ERROR``),
  ``CommandTimeout`` past the deadline, ``DeviceGone`` when the device vanished (before or during the
  command). Commands are serialised by a lock; a cancelled command leaves the modem usable.
* ``solicited`` names URC prefixes that belong to this command's answer until its final result (see
  ``hardware.at``). ``claim_urc``, given to the constructor, sees every URC first, in the reader task, and
  returns True for the ones it handled itself (a driver matching late results to earlier commands);
  the rest are queued.
* ``await modem.next_urc(deadline)`` -> ``Urc`` (``DeviceGone`` once the device vanished and the URCs
  read before are taken); ``modem.gone`` is set once the device vanished;
  ``await modem.reopen(deadline=...)`` reopens the link with back-off and restarts reading.
* ``await modem.aclose()`` - idempotent; stops the reader and releases the port.

A response that arrives while no command waits is logged and dropped. A device that answers a command
only after its deadline and after the next command was written can still have that late answer taken
for the next command's, so after a ``CommandTimeout`` callers doubt the device's state and may call
``resync()`` before going on (or ask for it with ``resync_on_timeout``, which does it before any command
queued meanwhile).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable, Iterable

from hardware.at import AtParser, BinaryRead, Prompt, Response, Urc, encode_command, encode_text
from hardware.serial_link import SerialLink
from hub.core.errors import CmeError, CommandTimeout, DeviceGone, ProtocolError
from hub.core.tasks import cancel_and_wait

log = logging.getLogger(__name__)

RESYNC_SEQUENCE = b"\x1b\r"
RESYNC_SETTLE = 0.3


class AtModem:
    def __init__(
        self,
        link: SerialLink,
        *,
        urc_prefixes: Iterable[str] = (),
        urc_with_data: Iterable[str] = (),
        default_deadline: float = 5.0,
        urc_queue_size: int = 256,
        claim_urc: Callable[[Urc], bool] | None = None,
    ) -> None:
        self.link = link
        self._claim_urc = claim_urc
        self.default_deadline = default_deadline
        self.gone = asyncio.Event()
        self._parser = AtParser(urc_prefixes=urc_prefixes, urc_with_data=urc_with_data)
        self._urcs: collections.deque[Urc] = collections.deque()
        self._urc_limit = urc_queue_size
        self._urc_signal = asyncio.Event()
        self._lock = asyncio.Lock()
        self._waiter: asyncio.Future[Response] | None = None
        self._prompt: asyncio.Event | None = None
        self._reader: asyncio.Task[None] | None = None
        self._closed = False
        self.urcs_dropped = 0

    @classmethod
    async def open(
        cls,
        link: SerialLink,
        *,
        urc_prefixes: Iterable[str] = (),
        urc_with_data: Iterable[str] = (),
        default_deadline: float = 5.0,
        deadline: float = 5.0,
        claim_urc: Callable[[Urc], bool] | None = None,
    ) -> AtModem:
        modem = cls(
            link,
            urc_prefixes=urc_prefixes,
            urc_with_data=urc_with_data,
            default_deadline=default_deadline,
            claim_urc=claim_urc,
        )
        if not link.is_open:
            await link.open(deadline=deadline)
        modem._start_reader()
        return modem

    def _start_reader(self) -> None:
        self._parser.reset()
        self.gone.clear()
        self._reader = asyncio.create_task(self._read_loop(), name=f"at-reader {self.link.name}")

    async def reopen(self, *, deadline: float = 60.0) -> None:
        """Wait (backing off) for the device to return and resume; ``DeviceGone`` after ``deadline`` s."""
        if self._closed:
            raise DeviceGone("modem closed", device=self.link.device)
        await self._stop_reader()
        await self.link.reopen(deadline=deadline)
        self._start_reader()

    async def command(
        self,
        command: str,
        *,
        deadline: float | None = None,
        text: str | None = None,
        wait_prompt: bool = False,
        finals: Iterable[str] = (),
        binary: BinaryRead | None = None,
        data: bytes | None = None,
        solicited: Iterable[str] = (),
        resync_on_timeout: bool = False,
    ) -> Response:
        """Send ``command`` (or raw ``data``) and return its ``Response``; see the module docstring.
        ``resync_on_timeout``: on a ``CommandTimeout``, ``resync`` before the lock is let go, so that no
        other command (queued behind this one, with a deadline of its own) waits out the silence first."""
        seconds = self.default_deadline if deadline is None else deadline
        async with self._lock:
            if self._closed or self.gone.is_set():
                raise DeviceGone("device is not available", device=self.link.device, command=command)
            loop = asyncio.get_running_loop()
            waiter: asyncio.Future[Response] = loop.create_future()
            self._waiter = waiter
            self._prompt = asyncio.Event() if wait_prompt else None
            self._parser.begin_command(finals=finals, binary=binary, solicited=solicited)
            try:
                async with asyncio.timeout(seconds):
                    await self.link.write(data if data is not None else encode_command(command))
                    if text is not None:
                        if self._prompt is not None:
                            await self._prompt.wait()
                        await self.link.write(encode_text(text))
                    response = await waiter
            except TimeoutError as exc:
                if resync_on_timeout:
                    await self._resync_locked(RESYNC_SEQUENCE, RESYNC_SETTLE)
                raise CommandTimeout(
                    f"no final result within {seconds} s", device=self.link.device, command=command
                ) from exc
            except DeviceGone as exc:
                exc.command = exc.command or command
                raise
            finally:
                self._waiter = None
                self._prompt = None
                if waiter.done() and not waiter.cancelled():
                    waiter.exception()  # mark a failure as seen when the write raised first
                else:
                    waiter.cancel()
        if not response.ok:
            code = f": {response.code}" if response.code is not None else ""
            raise CmeError(
                f"{response.result}{code} {response.detail}".strip(),
                device=self.link.device,
                command=command,
                code=response.code,
            )
        return response

    async def resync(self, *, sequence: bytes = RESYNC_SEQUENCE, settle: float = RESYNC_SETTLE) -> None:
        """Bring a device of unknown state back to its command prompt after a ``CommandTimeout``: write
        ``sequence`` (ESC leaves a text prompt, CR ends a half-written line) and, holding the command lock,
        let ``settle`` seconds of late answers arrive and be dropped before the next command."""
        async with self._lock:
            if self._closed or self.gone.is_set():
                raise DeviceGone("device is not available", device=self.link.device, command="resync")
            await self._resync_locked(sequence, settle)

    async def _resync_locked(self, sequence: bytes, settle: float) -> None:
        self._parser.begin_command()
        await self.link.write(sequence)
        await asyncio.sleep(settle)

    async def next_urc(self, deadline: float | None = None) -> Urc:
        """The next unsolicited result. ``CommandTimeout`` after ``deadline`` seconds without one,
        ``DeviceGone`` once the device vanished and every URC read before has been taken."""
        try:
            async with asyncio.timeout(deadline):
                while True:
                    if self._urcs:
                        return self._urcs.popleft()
                    if self.gone.is_set() or self._closed:
                        raise DeviceGone("device vanished", device=self.link.device)
                    self._urc_signal.clear()
                    await self._urc_signal.wait()
        except TimeoutError as exc:
            raise CommandTimeout(f"no URC within {deadline} s", device=self.link.device) from exc

    async def aclose(self) -> None:
        self._closed = True
        self._urc_signal.set()
        await self._stop_reader()
        await self.link.aclose()

    async def _stop_reader(self) -> None:
        reader, self._reader = self._reader, None
        await cancel_and_wait(reader)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(DeviceGone("modem closed mid-command", device=self.link.device))

    async def _read_loop(self) -> None:
        try:
            while True:
                chunk = await self.link.read()
                self._parser.receive_data(chunk)
                self._dispatch()
        except DeviceGone as exc:
            log.warning("%s: %s", self.link.name, exc)
            self.gone.set()
            self._urc_signal.set()
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                waiter.set_exception(DeviceGone("device vanished mid-command", device=self.link.device))
            if self._prompt is not None:
                self._prompt.set()

    def _dispatch(self) -> None:
        while True:
            try:
                event = self._parser.next_event()
            except ProtocolError as exc:
                log.warning("%s: dropped undecodable input: %s", self.link.name, exc)
                continue
            match event:
                case None:
                    return
                case Urc():
                    self._put_urc(event)
                case Prompt():
                    if self._prompt is not None:
                        self._prompt.set()
                case Response():
                    waiter = self._waiter
                    if waiter is not None and not waiter.done():
                        waiter.set_result(event)
                    else:
                        log.info("%s: dropped a response nobody waits for: %s", self.link.name, event)

    def _put_urc(self, urc: Urc) -> None:
        if self._claim_urc is not None and self._claim_urc(urc):
            return
        if len(self._urcs) >= self._urc_limit:
            # A consumer that stopped reading must not stall command answers: drop, count and say so.
            self.urcs_dropped += 1
            log.warning("%s: URC queue full, dropped %s", self.link.name, urc.line)
            return
        self._urcs.append(urc)
        self._urc_signal.set()
