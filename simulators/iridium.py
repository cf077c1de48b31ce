"""A simulated Iridium 9603 and its provider in one process: ``python -m simulators.iridium --link PATH``.

The modem (``simulators.iridium_modem.Iridium9603``) is served on a pty at ``--link``; the provider
(``simulators.iridium_cloud.IridiumCloud``) runs its sessions, POSTs MO messages to ``--webhook`` and
serves the MT API. ``Iridium9603`` and ``SessionOutcome`` are importable from here as well, as the
simulated modem of this package. See ``docs/satellite.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from simulators.iridium_cloud import IridiumCloud
from simulators.iridium_modem import Iridium9603 as Iridium9603
from simulators.iridium_modem import SessionOutcome as SessionOutcome
from simulators.pty_device import PtyDevice


async def _serve(args: argparse.Namespace) -> None:
    cloud = IridiumCloud(
        webhook_url=args.webhook, webhook_secret=args.webhook_secret, session_delay=args.session_delay
    )
    modem = Iridium9603(args.imei, cloud, epoch=args.epoch)
    cloud.attach(modem, args.serial)
    device = PtyDevice(modem, args.link, baud=args.baud)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await cloud.start(args.mt_host, args.mt_port)
    device.start()
    print(
        f"Iridium 9603 IMEI {args.imei} (RB{args.serial:07d}) on {args.link}; MT API {cloud.mt_url}",
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        await device.aclose()
        await cloud.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve a simulated Iridium 9603 and its provider cloud.")
    parser.add_argument("--link", required=True, help="path of the tty symlink to create, e.g. /tmp/iridium0")
    parser.add_argument("--imei", default="300234010753370")
    parser.add_argument("--serial", type=int, default=12345, help="RockBLOCK serial (RB + 7 digits)")
    parser.add_argument("--baud", type=int, default=19200)
    parser.add_argument("--webhook", help="URL the cloud POSTs MO messages to")
    parser.add_argument("--webhook-secret", help="shared secret for the HS256 token in each POST")
    parser.add_argument("--session-delay", type=float, default=5.0, help="seconds each session takes")
    parser.add_argument("--mt-host", default="127.0.0.1")
    parser.add_argument("--mt-port", type=int, default=0, help="port of the MT API (0: any free port)")
    parser.add_argument(
        "--epoch",
        type=float,
        default=None,
        help="Unix time of the -MSSTM epoch to pin (default: the Iridium era broadcast at the time)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
