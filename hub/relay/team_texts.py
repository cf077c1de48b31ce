"""Texts from home-care teams' registered handhelds and terminals, handed to the one who reads them.

A link reports a ``TeamText`` only for a device its register lists for a team (``transports.lora_alarm``
for the mesh). The relay does not know what a visit is: the citizens' follow-up registers itself as the
reader (``read_with``). Texts wait in a bounded queue read by one task of the hub (``run``), so a slow
answer on the radio never holds up the link's frames. A hub without a reader tells the device so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from hub.core.errors import BeredtError
from hub.core.transport import TeamText

log = logging.getLogger("beredt.hub")

TextReader = Callable[[str, TeamText], Awaitable[None]]
NO_READER = "Beredt: denne hub fører ikke opfølgning af borgere; besøget er ikke registreret"
QUEUE = 100
"""Texts waiting to be read; only registered devices send them, a few a minute at most."""


class TeamTexts:
    def __init__(self) -> None:
        self._reader: TextReader | None = None
        self._queue: asyncio.Queue[tuple[str, TeamText]] = asyncio.Queue(maxsize=QUEUE)
        self.counters = {"read": 0, "no_reader": 0, "dropped": 0}

    def read_with(self, reader: TextReader) -> None:
        self._reader = reader

    def take(self, link: str, text: TeamText) -> None:
        """Queue ``text`` (heard on ``link``) for reading; a full queue drops it (the device sends again)."""
        try:
            self._queue.put_nowait((link, text))
        except asyncio.QueueFull:
            self.counters["dropped"] += 1
            log.warning("text from team device %s on %s dropped: %d waiting", text.sender, link, QUEUE)

    async def run(self) -> None:
        while True:
            link, text = await self._queue.get()
            try:
                await self._read(link, text)
            except BeredtError:
                log.exception("text from team device %s on %s could not be handled", text.sender, link)

    async def _read(self, link: str, text: TeamText) -> None:
        if self._reader is not None:
            self.counters["read"] += 1
            await self._reader(link, text)
            return
        self.counters["no_reader"] += 1
        log.warning("text from team device %s on %s: this hub runs no follow-up", text.sender, link)
        await text.reply(NO_READER)
