"""The ``meshtastic`` library's interface to one radio: opening it (USB serial or TCP) within a deadline,
closing it without blocking the loop, reconnect back-off, and the radio's own node number.

Opening and closing are blocking library calls, so each runs on a thread of its own with a deadline
(``transports.blocking``); an interface built after its deadline passed is closed as an orphan.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
from collections.abc import Iterator
from typing import Any

from hub.core.errors import LinkDown
from transports.blocking import run_blocking
from transports.lora_settings import LoraSettings


def plugged_in(device: str) -> bool:
    """Whether the radio's device node exists (a stat of /dev: it does not block the loop)."""
    return os.path.exists(device)


async def open_interface(settings: LoraSettings, link: str) -> Any:
    """A connected interface to the radio ``settings`` names, or ``LinkDown`` saying why not."""
    timeout = settings.connect_timeout

    def build() -> Any:
        # Imported here so that sites without a radio never import the library.
        if settings.device is not None:
            from meshtastic.serial_interface import SerialInterface

            return SerialInterface(devPath=settings.device, timeout=int(timeout))
        from meshtastic.tcp_interface import TCPInterface

        return TCPInterface(settings.host, portNumber=settings.tcp_port, timeout=int(timeout))

    try:
        return await run_blocking(build, deadline=timeout, orphan=close_quietly, name="beredt-lora-connect")
    except TimeoutError:
        raise LinkDown(f"radio handshake took over {timeout:.0f} s", transport=link) from None
    except Exception as exc:  # serial, socket and library errors while opening
        raise LinkDown(f"cannot open the radio: {exc}", transport=link) from exc


async def close_interface(iface: Any) -> None:
    """Close ``iface`` on a thread; a close that hangs is left behind after 10 s, never awaited forever."""
    with contextlib.suppress(TimeoutError, Exception):
        await asyncio.shield(
            run_blocking(lambda: close_quietly(iface), deadline=10.0, name="beredt-lora-close")
        )


def close_quietly(iface: Any) -> None:
    with contextlib.suppress(Exception):  # a dead port may fail its final flush; it is closed regardless
        iface.close()


def backoff(cap: float) -> Iterator[float]:
    """Exponential back-off from 0.5 s up to ``cap``, each delay jittered down by up to half."""
    for attempt in itertools.count():
        yield min(cap, 0.5 * 2**attempt) * random.uniform(0.5, 1.0)


def node_num(address: str) -> int:
    """The node number of a ``!xxxxxxxx`` address."""
    return int(address[1:], 16)


def my_node_num(iface: Any) -> int | None:
    info = getattr(iface, "myInfo", None)
    return getattr(info, "my_node_num", None)


def my_id(iface: Any) -> str:
    num = my_node_num(iface)
    return f"!{num:08x}" if isinstance(num, int) else "?"
