"""Whether our own Meshtastic radio still answers: a question its firmware answers itself, off the air.

A radio whose firmware hung (or that stopped working in a way its host cannot see) keeps its USB
serial port or TCP socket open and says nothing: no packet, no routing answer, no queue status. The
library notices only a closed port, so the link would learn it peer by peer, each send waiting out its
whole ``ack_timeout``. ``RadioWatch`` asks the radio every ``radio_check_interval`` seconds for its
device metadata: an ``AdminMessage`` to its own node number, which the firmware's AdminModule answers
locally (no airtime, no duty cycle, nothing on the air). When no answer comes within
``radio_check_timeout`` seconds, ``until_lost`` returns why, and the transport treats the radio as
lost: what waits on it fails with ``LinkDown`` (the router takes the next link at once), the whole link
reports itself down, and the supervisor reconnects with back-off, which a hung radio completes only once
it works again (reopening a USB serial port also resets most ESP32 boards). ``poke`` asks at once,
e.g. when a send got no ACK.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from hub.core.tasks import cancel_and_wait
from transports.blocking import run_blocking
from transports.lora_send import ResponseWaiter, drop_response_handlers

ADMIN_APP = 6
CONNECTION_LOST = "radio connection lost"


class RadioWatch:
    """Asks one radio, every ``interval`` seconds or when poked, whether it is still there."""

    def __init__(self, interval: float, timeout: float) -> None:
        self.interval = interval
        self.timeout = timeout
        self.checks = 0
        self._poked = asyncio.Event()

    def poke(self) -> None:
        """Ask at once rather than at the next interval."""
        self._poked.set()

    async def until_lost(self, iface: Any, node_num: int | None, lost: asyncio.Event) -> str:
        """Wait until the connection is lost (``lost`` set) or the radio stops answering; returns why."""
        mute = asyncio.create_task(self._until_mute(iface, node_num), name="lora-radio-watch")
        closed = asyncio.create_task(lost.wait(), name="lora-radio-lost")
        try:
            await asyncio.wait((mute, closed), return_when=asyncio.FIRST_COMPLETED)
        finally:
            await cancel_and_wait(mute)
            await cancel_and_wait(closed)
        if mute.done() and not mute.cancelled():
            return mute.result()
        return CONNECTION_LOST

    async def _until_mute(self, iface: Any, node_num: int | None) -> str:
        if node_num is None:  # no handshake answer to address it by: the connection's own loss must tell
            await asyncio.Event().wait()
        self._poked.clear()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._poked.wait()
            self._poked.clear()
            if (reason := await self._ask(iface, node_num)) is not None:
                return reason

    async def _ask(self, iface: Any, node_num: int | None) -> str | None:
        """None when the radio answered (any answer, a NAK too: its firmware runs), else why not."""
        # Imported here, as the library is: sites without a radio never import it.
        from meshtastic.protobuf import admin_pb2

        self.checks += 1
        request = admin_pb2.AdminMessage(get_device_metadata_request=True).SerializeToString()
        answer = ResponseWaiter(asyncio.get_running_loop())

        def call() -> Any:
            return iface.sendData(
                request,
                destinationId=node_num,
                portNum=ADMIN_APP,
                wantResponse=True,
                onResponse=answer.on_response,
            )

        try:
            async with asyncio.timeout(self.timeout):
                # A hung radio confirms no packet, and the library then stops taking more.
                await run_blocking(call, deadline=self.timeout, name="beredt-lora-check")
                await answer.future
        except TimeoutError:
            return f"radio not answering: no answer to a local request within {self.timeout:g} s"
        except Exception as exc:  # serial and socket errors: the connection's loss follows
            return f"radio not answering: {exc}"
        finally:
            drop_response_handlers(iface, answer)
        return None
