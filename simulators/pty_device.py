"""Serve a simulated serial device on a pseudo-terminal, with unplug and replug.

A driver under test opens a real tty (``os.openpty()``'s slave side, reached through a stable symlink), so
pyserial, termios and the event loop's reader are all exercised as with a USB radio. The device itself is
a sans-IO ``DeviceModel``: bytes the driver wrote go in through ``receive_data``; bytes for the driver
come out of ``data_to_send``, and a model with unsolicited output (a call arriving, a network message)
calls the ``wakeup`` callback it was given so the server flushes it (or drops it while unplugged).

``PtyDevice(model, link_path, baud=...)`` API:

* ``start()`` - create the pty and point ``link_path`` at its slave; ``aclose()`` tears everything down.
* ``unplug()`` - close the master: the driver's next read fails (EIO) as on a pulled USB cable, and
  ``link_path`` disappears. ``unplug_on(pattern)`` does so the moment written bytes contain ``pattern``
  (mid-command). ``replug()`` - a new pty behind the same ``link_path`` so the driver can reopen it.
* ``baud`` - the rate the device "runs" at. The pty shares its termios with the slave, so the server sees
  the rate the driver configured; when they differ the model is fed nothing and the driver reads line
  noise, as from a real UART at the wrong rate.
* ``received`` - every byte the driver wrote since start, for assertions.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import termios
import tty
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

_NOISE = b"\xf0\x00\xfe\x80\x0f\xe0"


class DeviceModel(Protocol):
    """A device simulation without I/O."""

    wakeup: Callable[[], None] | None
    """Set by the server; the model calls it when it has unsolicited output."""

    def receive_data(self, data: bytes) -> None: ...

    def data_to_send(self) -> bytes: ...


def _termios_rate(baud: int) -> int:
    rate = getattr(termios, f"B{baud}", None)
    if not isinstance(rate, int):
        raise ValueError(f"unsupported baud rate {baud}")
    return rate


class PtyDevice:
    """Serves ``model`` on a pty whose slave is reachable at ``link_path``."""

    def __init__(self, model: DeviceModel, link_path: str | Path, *, baud: int = 115200) -> None:
        self.model = model
        self.link_path = Path(link_path)
        self.baud = baud
        self.received = bytearray()
        self._rate = _termios_rate(baud)
        self._master: int | None = None
        self._slave: int | None = None
        self._pending = bytearray()
        self._unplug_pattern: bytes | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        model.wakeup = self._flush

    @property
    def plugged(self) -> bool:
        return self._master is not None

    def start(self) -> None:
        """Create the pty and the symlink (``replug`` does the same after an ``unplug``)."""
        if self._master is not None:
            return
        self._loop = asyncio.get_running_loop()
        master, slave = os.openpty()
        # Raw mode: no echo, no CR/LF translation; pyserial sets the same when it opens the slave. The
        # server keeps its own slave descriptor open so the master never sees EIO between driver opens.
        tty.setraw(slave)
        attrs = termios.tcgetattr(slave)
        attrs[4] = attrs[5] = self._rate
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self._pending.clear()
        tmp = self.link_path.with_name(self.link_path.name + ".new")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(os.ttyname(slave))
        tmp.replace(self.link_path)
        self._loop.add_reader(master, self._on_readable)

    def replug(self) -> None:
        self.start()

    def unplug(self) -> None:
        """Pull the cable: the master closes, the driver's reads fail, the path disappears."""
        master, slave = self._master, self._slave
        self._master = self._slave = None
        if master is None:
            return
        if self._loop is not None:
            self._loop.remove_reader(master)
            self._loop.remove_writer(master)
        os.close(master)
        if slave is not None:
            os.close(slave)
        with contextlib.suppress(FileNotFoundError):
            self.link_path.unlink()

    def unplug_on(self, pattern: bytes) -> None:
        """Unplug as soon as the driver writes bytes containing ``pattern`` (once)."""
        self._unplug_pattern = pattern

    async def aclose(self) -> None:
        self.unplug()

    def _line_rate_matches(self) -> bool:
        assert self._master is not None
        # On Linux a pty master reports the termios of its slave, i.e. what the driver configured.
        attrs = termios.tcgetattr(self._master)
        return bool(attrs[4] == self._rate)

    def _on_readable(self) -> None:
        master = self._master
        if master is None:
            return
        try:
            data = os.read(master, 4096)
        except BlockingIOError:
            return
        except OSError:
            # EIO: the driver closed its side and our own slave fd is gone; treat as unplugged.
            self.unplug()
            return
        self.received += data
        pattern = self._unplug_pattern
        if pattern is not None and pattern in self.received[-(len(data) + len(pattern)) :]:
            self._unplug_pattern = None
            self.unplug()
            return
        if not self._line_rate_matches():
            self._write(_NOISE[: max(1, len(data) // 2)])
            return
        self.model.receive_data(data)
        self._flush()

    def _flush(self) -> None:
        out = self.model.data_to_send()
        # Output while unplugged is lost, as bytes sent to a serial port with no cable are.
        if out and self._master is not None:
            self._write(out)

    def _write(self, data: bytes) -> None:
        self._pending += data
        self._drain()

    def _drain(self) -> None:
        master, loop = self._master, self._loop
        if master is None or loop is None:
            return
        while self._pending:
            try:
                written = os.write(master, self._pending)
            except BlockingIOError:
                loop.add_writer(master, self._drain)
                return
            except OSError:
                self.unplug()
                return
            del self._pending[:written]
        loop.remove_writer(master)
