"""The drill's simulated infrastructure, run inside the runner's event loop: a real Mosquitto, the LoRa
mesh of fake Meshtastic radios, the SINE network of simulated TETRA radios and the Iridium provider.

Each piece offers the faults the script needs and nothing more: the broker is killed (SIGKILL) and
started again on the same port, or goes silent (it keeps every session, accepts and acknowledges every
publication and delivers none: its ACL is swapped for a write-only one and reloaded with SIGHUP); the
mesh is partitioned by "who hears whom"; a SINE terminal can go mute (plugged in, answering nothing);
radios and modems stay on line throughout. Mosquitto is a
separate process started from a generated config on a free port (never the system's broker); its
absence is a ``DrillError`` that says how to install it.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import shutil
import signal
from collections.abc import Iterable, Mapping
from pathlib import Path

from drill import DrillError
from drill.topology import MSSTM_EPOCH, SATELLITE_SECRET, SINE_PER_MINUTE, Site, free_port
from simulators.iridium import Iridium9603
from simulators.iridium_cloud import IridiumCloud
from simulators.meshtastic_radio import FakeMeshtasticRadio
from simulators.pty_device import PtyDevice
from simulators.rf_medium import RFMedium
from simulators.tetra import TetraNetwork, TetraRadio
from transports.lora_airtime import preset_from_name

START_DEADLINE = 10.0
ACL_OPEN = "topic readwrite #\n"
ACL_DEAF = "topic write #\n"  # publications accepted and acknowledged, delivered to nobody


def broker_config(folder: Path, port: int, log: Path, extra: str = "") -> str:
    """A Mosquitto config for a broker of our own on loopback, keeping its state in ``folder``."""
    return (
        f"listener {port} 127.0.0.1\n"
        # Run as ourselves: started as root, mosquitto would switch to user "mosquitto" and could then
        # neither write its log and persistence nor read certificates in our private folders.
        f"user {getpass.getuser()}\n"
        "allow_anonymous true\n"
        "persistence true\n"
        f"persistence_location {folder}/\n"
        f"log_dest file {log}\n"
        # Hubs keep persistent sessions; a care home offline for hours needs more than 1000 queued frames.
        "max_queued_messages 100000\n" + extra
    )


def mosquitto_binary() -> str:
    found = os.environ.get("MOSQUITTO") or shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not os.access(found, os.X_OK):
        raise DrillError(
            "mosquitto is not installed, and the drill's MQTT link needs a real broker:"
            " apt-get install -y mosquitto (or set MOSQUITTO=/path/to/mosquitto)"
        )
    return found


class Broker:
    """One Mosquitto on 127.0.0.1 at a free port, with its config, persistence and log in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.binary = mosquitto_binary()
        self.folder = folder
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.log = folder / "mosquitto.log"
        self.config = folder / "mosquitto.conf"
        self.acl = folder / "acl"
        folder.mkdir(parents=True, exist_ok=True)
        self.acl.write_text(ACL_OPEN)
        self.config.write_text(broker_config(folder, self.port, self.log, f"acl_file {self.acl}\n"))
        self.process: asyncio.subprocess.Process | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            self.binary, "-c", str(self.config), stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_DEADLINE
        while loop.time() < deadline:
            if self.process.returncode is not None:
                raise DrillError(f"mosquitto exited at start ({self.process.returncode}): {self._tail()}")
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            await asyncio.sleep(0.05)
        await self.kill()
        raise DrillError(f"mosquitto did not listen on {self.port} within {START_DEADLINE} s: {self._tail()}")

    def go_silent(self) -> None:
        """Deliver nothing from now on, while accepting and acknowledging everything (see the module)."""
        self._reload(ACL_DEAF)

    def speak(self) -> None:
        """Deliver again after ``go_silent`` (a broker started later reads the open ACL anyway)."""
        self._reload(ACL_OPEN)

    def _reload(self, acl: str) -> None:
        self.acl.write_text(acl)
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGHUP)  # mosquitto rereads its ACL file

    async def kill(self) -> None:
        """SIGKILL: the broker machine dies; the kernel resets the hubs' connections."""
        process, self.process = self.process, None
        if process is not None and process.returncode is None:
            process.kill()
            await asyncio.wait_for(process.wait(), START_DEADLINE)

    def _tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else "(no log)"


class Mesh:
    """Fake Meshtastic radios, one per site, on one simulated LoRa channel, served over TCP."""

    def __init__(self, sites: Iterable[Site], preset: str) -> None:
        self.medium = RFMedium(seed=6, preset=preset_from_name(preset).name)
        # Single-hop radios (lora.hop_limit = 0 in their config): multi-hop is Beredt's relay hub's job.
        self.radios = {
            site.key: FakeMeshtasticRadio(site.radio, self.medium, long_name=site.name, hop_limit=0)
            for site in sites
        }
        self.ports: dict[str, int] = {}

    async def start(self) -> None:
        for key, radio in self.radios.items():
            self.ports[key] = await radio.start_tcp()

    def partition(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Only these pairs of sites hear each other from now on."""
        self.medium.connect((self.radios[a].node_num, self.radios[b].node_num) for a, b in pairs)

    def heal(self) -> None:
        self.medium.heal()

    async def aclose(self) -> None:
        for radio in self.radios.values():
            await radio.aclose()


class Sine:
    """The SINE network with one simulated radio (on a pty) per SINE-equipped site."""

    def __init__(self, sites: Iterable[Site], folder: Path) -> None:
        self.network = TetraNetwork(max_per_window=SINE_PER_MINUTE, window=60.0)
        folder.mkdir(parents=True, exist_ok=True)
        self.radios: dict[str, TetraRadio] = {
            site.key: self.network.add_radio(site.issi) for site in sites if site.issi is not None
        }
        self.devices: dict[str, PtyDevice] = {
            key: PtyDevice(radio, folder / f"tty{radio.issi}", baud=38400)
            for key, radio in self.radios.items()
        }

    def mute(self, key: str, mute: bool) -> None:
        """The site's terminal hangs (still plugged in, reads everything, answers nothing) or recovers."""
        self.radios[key].mute = mute

    @property
    def paths(self) -> dict[str, Path]:
        return {key: device.link_path for key, device in self.devices.items()}

    def start(self) -> None:
        for device in self.devices.values():
            device.start()

    async def aclose(self) -> None:
        for device in self.devices.values():
            await device.aclose()


class Satellite:
    """The Iridium provider (gateway, webhook sender, MT API) and one 9603 per modem-equipped site."""

    def __init__(self, sites: Iterable[Site], folder: Path, *, session_delay: float = 0.5) -> None:
        self.cloud = IridiumCloud(webhook_secret=SATELLITE_SECRET, session_delay=session_delay, seed=7)
        folder.mkdir(parents=True, exist_ok=True)
        self.devices: dict[str, PtyDevice] = {}
        self.imeis: dict[str, str] = {}
        for serial, site in enumerate((s for s in sites if s.imei is not None), start=1):
            assert site.imei is not None
            modem = Iridium9603(site.imei, self.cloud, epoch=MSSTM_EPOCH)
            self.cloud.attach(modem, serial)
            self.devices[site.key] = PtyDevice(modem, folder / f"iridium-{site.key}", baud=19200)
            self.imeis[site.key] = site.imei

    @property
    def paths(self) -> dict[str, Path]:
        return {key: device.link_path for key, device in self.devices.items()}

    async def start(self) -> None:
        """Serve the MT API and the modems; the webhook URL is set once the staff hub's port is known."""
        await self.cloud.start()
        for device in self.devices.values():
            device.start()

    def credits(self) -> Mapping[str, int]:
        """Credits each modem's account was charged so far."""
        return {key: self.cloud.account(imei).credits for key, imei in self.imeis.items()}

    async def aclose(self) -> None:
        for device in self.devices.values():
            await device.aclose()
        await self.cloud.aclose()
