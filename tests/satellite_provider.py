"""The satellite set-up the hub tests share: the simulated Iridium provider (gateway, webhook, MT API),
one 9603 modem on a real pty at ``folder / "iridium"``, and the link tables of the two ends (the modem's
and the webhook's), ready for a hub config."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulators.iridium import Iridium9603
from simulators.iridium_cloud import IridiumCloud
from simulators.pty_device import PtyDevice

SECRET = "shared webhook secret"


@dataclass(frozen=True, slots=True)
class Provider:
    cloud: IridiumCloud
    modem_link: dict[str, Any]
    """The link table of the hub with the modem (quick retries, for tests)."""
    webhook_link: dict[str, Any]
    """The link table of the hub the provider posts to (the cloud's ``webhook_url`` is set once it runs)."""


@contextlib.asynccontextmanager
async def provider(folder: Path, imei: str, serial: int, seed: int) -> AsyncIterator[Provider]:
    cloud = IridiumCloud(session_delay=0.02, webhook_secret=SECRET, seed=seed)
    await cloud.start()
    modem = Iridium9603(imei, cloud)
    cloud.attach(modem, serial)
    device = PtyDevice(modem, folder / "iridium", baud=19200)
    device.start()
    modem_link = {"kind": "satellite", "device": str(folder / "iridium"), "serial": serial,
                  "retry_soon_seconds": 0.02, "retry_later_seconds": 0.05}  # fmt: skip
    webhook_link = {"kind": "satellite", "webhook_listen": "127.0.0.1:0", "webhook_token": SECRET,
                    "mt_url": cloud.mt_url, "mt_username": "beredt", "mt_password": "secret"}  # fmt: skip
    try:
        yield Provider(cloud, modem_link, webhook_link)
    finally:
        await device.aclose()
        await cloud.aclose()
