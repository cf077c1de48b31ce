"""``beredt demo``: a small municipality on one machine, to see what Beredt does before any radio arrives.

Five real ``beredt run`` processes on loopback: the municipality's staff hub, a relay and three care homes
that reach the staff through the relay over two kinds of link: the internet link and, when Mosquitto is
installed, MQTT through a broker the demo starts. Every hub trusts the others, each has a console user,
and the staff console shows the live board. Typing ``i`` cuts the internet (every hub's internet link
goes through a switchable proxy, which the demo closes): the links view shows the internet down and
messages move to MQTT within seconds; ``i`` again restores it, and traffic returns to the internet.
Typing ``r`` cuts the relay (the process is stopped, as a power cut at the relay site would); ``r``
again brings it back: the care home's emergency stays "ikke bekræftet" and the board flags the homes out
of contact, then both turn confirmed. Without Mosquitto the demo has the internet link only and says
so. Everything lives in one folder (``beredt-demo`` by default); the hubs stop with ``q`` or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import tomli_w

from hub.console.service import CONSOLE_DB
from hub.console.users import Role as UserRole
from hub.console.users import Users
from hub.core.clock import SystemClock
from hub.core.errors import UsageError
from hub.relay.roster import Roster
from hub.service import config as config_module
from hub.service.node_identity import load_identity

if TYPE_CHECKING:
    from drill.proxy import SwitchableProxy

DESCRIPTION = """\
Fem rigtige 'beredt run'-processer på denne maskine: kommunens stabshub, et relæ og tre plejehjem, der når
staben gennem relæet over to slags forbindelser: internetforbindelsen og, når Mosquitto er installeret,
MQTT gennem en broker, demoen starter. Alle hubber stoler på hinanden, hver har en konsolbruger, og
stabens konsol viser den levende tavle. Tast i for at afbryde internettet (forbindelserne går gennem en
proxy, demoen lukker): forbindelsesvisningen viser internettet nede, og beskederne flytter til MQTT
inden for sekunder; i igen genopretter det. Tast r for at afbryde relæet (processen stoppes, som ved et
strømsvigt ved relæet); r igen bringer det tilbage: plejehjemmets nødsituation står som "ikke bekræftet",
og tavlen viser hjemmene uden kontakt, indtil begge bliver bekræftet. Uden Mosquitto har demoen kun
internetforbindelsen og siger det. Alt ligger i én mappe (standard: beredt-demo); hubberne stopper med q
eller Ctrl-C."""

PASSWORD = "beredt-demo"
HOMES = ("Plejecenter Lindely", "Plejehjemmet Solbakken", "Bofællesskabet Egely")
HOME_GROUP = "plejehjem"
"""The care homes' group in every roster: the sample exercise names it (``SAMPLE_EXERCISE``)."""
SAMPLE_EXERCISE = "config/exercises/power-outage.toml"


@dataclass
class DemoHub:
    key: str
    name: str
    role: str
    folder: Path
    api_port: int = 0
    link_port: int = 0
    proxy_port: int = 0  # peers reach the internet link here: the demo's switch in front of it
    node: str = ""
    card: str = ""
    user: str = ""
    process: subprocess.Popen[bytes] | None = None

    @property
    def config_path(self) -> Path:
        return self.folder / f"{self.key}.toml"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}"

    def document(
        self, peers: list[DemoHub], default_route: DemoHub | None, broker: str | None = None
    ) -> dict[str, object]:
        routes: dict[str, list[str]] = {"default": [default_route.node]} if default_route else {}
        links: dict[str, object] = {
            "internet": {"kind": "internet", "listen": f"127.0.0.1:{self.link_port}", "public_url": self.url}
        }
        if broker is not None:  # the second kind of link, tried after the internet
            links["mqtt"] = {"kind": "mqtt", "brokers": [broker], "keepalive": 5}

        def addresses(peer: DemoHub) -> dict[str, str]:
            return {"internet": peer.url, **({"mqtt": peer.node} if broker is not None else {})}

        return {
            "node": {"name": self.name, "role": self.role, "data_dir": f"{self.key}-data"},
            "api": {"listen": f"127.0.0.1:{self.api_port}"},
            "links": links,
            "peers": [{"node": p.node, "name": p.name, "links": addresses(p)} for p in peers],
            "routes": routes,
            # a demo should show failure and recovery within seconds, not minutes
            "timing": {"hop_ack_timeout": 3.0, "retry_initial": 0.5, "retry_cap": 5.0, "probe_interval": 2.0},
        }


def _municipality(folder: Path, port: int) -> tuple[DemoHub, DemoHub, list[DemoHub]]:
    """The five hubs; consoles on ``port``, ``port + 1``... and links 100 above (free ports if 0)."""
    from drill.topology import free_port  # the drill's harness loads only when a demo runs

    staff = DemoHub("kommune", "Kommunens krisestab", "staff", folder, user="hansen")
    relay = DemoHub("relay", "Relay Nord", "relay", folder)
    homes = [DemoHub(f"plejehjem{i}", name, "care-home", folder, user=f"plejehjem{i}")
             for i, name in enumerate(HOMES, 1)]  # fmt: skip
    for index, hub in enumerate([staff, relay, *homes]):
        hub.api_port = port + index if port else free_port()
        hub.link_port = port + 100 + index if port else free_port()
        hub.proxy_port = port + 200 + index if port else free_port()
    return staff, relay, homes


async def _add_user(hub: DemoHub, role: UserRole, display: str) -> None:
    config = config_module.load(hub.config_path)
    users = await Users.open(config.data_dir / CONSOLE_DB, SystemClock())
    try:
        institution = hub.node if role is UserRole.INSTITUTION else None
        await users.add(hub.user, PASSWORD, role, display_name=display, institution=institution)
    finally:
        await users.aclose()


def mosquitto() -> str | None:
    """The Mosquitto broker the MQTT link needs, if this machine has one."""
    found = os.environ.get("MOSQUITTO") or shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    return found if os.access(found, os.X_OK) else None


def build(folder: Path, port: int = 0, broker: str | None = None) -> tuple[DemoHub, DemoHub, list[DemoHub]]:
    """Write five configs, identities, rosters and console users into ``folder`` (with an MQTT link to
    ``broker`` too if given)."""
    folder.mkdir(parents=True, exist_ok=True)
    staff, relay, homes = _municipality(folder, port)
    everyone = [staff, relay, *homes]
    for hub in everyone:  # identities first: every config names the others by id
        hub.config_path.write_text(tomli_w.dumps(hub.document([], None)))
        identity = load_identity(config_module.load(hub.config_path), create=True)
        hub.node, hub.card = identity.node_id.hex(), identity.card.encode()
    relay_document = relay.document([staff, *homes], None, broker)
    relay_document["routes"] = {hub.node: [hub.node] for hub in (staff, *homes)}
    relay.config_path.write_text(tomli_w.dumps(relay_document))
    for hub in (staff, *homes):
        hub.config_path.write_text(tomli_w.dumps(hub.document([relay], relay, broker)))
    for hub in everyone:
        config = config_module.load(hub.config_path)
        identity = load_identity(config, create=False)
        roster = Roster.load(identity.card, config.roster_path)
        for other in everyone:
            if other is not hub:
                card = load_identity(config_module.load(other.config_path), create=False).card
                roster.add(card, None, (HOME_GROUP,) if other in homes else ())
        roster.save()
    asyncio.run(_add_user(staff, UserRole.COORDINATOR, "Vagtleder Hansen"))
    for hub in homes:
        asyncio.run(_add_user(hub, UserRole.INSTITUTION, f"Nattevagt, {hub.name}"))
    return staff, relay, homes


def _wait_listening(hub: DemoHub, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if hub.process is not None and hub.process.poll() is not None:
            raise UsageError(f"{hub.name} stoppede ved start; se {hub.folder / (hub.key + '.log')}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", hub.api_port)) == 0:
                return
        time.sleep(0.2)
    raise UsageError(
        f"{hub.name} startede ikke inden for {timeout:.0f} s; se {hub.folder / (hub.key + '.log')}"
    )


def cmd_demo(args: argparse.Namespace) -> int:
    folder = Path(args.dir).resolve()
    if folder.exists() and any(folder.iterdir()):
        raise UsageError(f"{folder} er ikke tom: giv 'beredt demo --dir' en ny mappe, eller fjern den")
    return asyncio.run(_demo(folder, args.port))


def _launch(hubs: list[DemoHub]) -> None:
    """Start every hub (``beredt run``) and wait until each console answers."""
    for hub in hubs:
        with open(hub.folder / f"{hub.key}.log", "ab") as log:
            hub.process = subprocess.Popen(
                [sys.executable, "-m", "hub.cli", "run", "-c", str(hub.config_path)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
    for hub in hubs:
        _wait_listening(hub)


async def _demo(folder: Path, port: int) -> int:
    # The drill's harness (simulators, brokers, proxies) loads only when a demo runs: every other
    # command starts without it.
    from drill.proxy import SwitchableProxy
    from drill.sims import Broker

    loop = asyncio.get_running_loop()
    broker = Broker(folder / "mosquitto") if mosquitto() else None
    if broker is not None:
        await broker.start()
    staff, relay, homes = await loop.run_in_executor(
        None, build, folder, port, broker.url if broker else None
    )
    everyone = [staff, relay, *homes]
    proxies = [SwitchableProxy(("127.0.0.1", hub.link_port)) for hub in everyone]
    for proxy, hub in zip(proxies, everyone, strict=True):
        proxy.port = hub.proxy_port
        await proxy.switch_on()
    demo = asyncio.current_task()
    if demo is not None:  # 'kill' stops the demo as Ctrl-C does: its hubs and broker go with it
        loop.add_signal_handler(signal.SIGTERM, demo.cancel)
    try:
        await loop.run_in_executor(None, _launch, everyone)
        print(f"Beredt-demo kører i {folder} (adgangskode for alle: {PASSWORD})")
        for hub in (staff, *homes):
            print(f"  {hub.name:<26} http://127.0.0.1:{hub.api_port}/console/  bruger {hub.user}")
        if broker is not None:
            print(f"Forbindelser: internet, og MQTT gennem Mosquitto på port {broker.port} som reserve.")
        else:
            print("Forbindelser: kun internet (Mosquitto findes ikke på maskinen, så der er ingen"
                  " MQTT-reserve; installér mosquitto for at se skiftet).")  # fmt: skip
        print(f"Øvelse: beredt exercise start {SAMPLE_EXERCISE} -c {staff.config_path}"
              " (efter 5 minutter falder Plejehjemmet Solbakkens internet ud i øvelsen).")  # fmt: skip
        print("Skriv i + Enter for at afbryde eller genoprette internettet, r + Enter for relæet,"
              " q + Enter for at stoppe.", flush=True)  # fmt: skip
        await _commands(relay, proxies, broker is not None)
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    finally:
        for hub in everyone:
            if hub.process is not None and hub.process.poll() is None:
                hub.process.send_signal(signal.SIGCONT)  # a stopped process cannot act on SIGTERM
                hub.process.terminate()
        for hub in everyone:
            if hub.process is not None:
                try:
                    await loop.run_in_executor(None, hub.process.wait, 20)
                except subprocess.TimeoutExpired:
                    hub.process.kill()
        for proxy in proxies:
            await proxy.aclose()
        if broker is not None:
            await broker.kill()
    print("demoen er stoppet; filerne ligger i", folder)
    return 0


async def _commands(relay: DemoHub, proxies: list[SwitchableProxy], mqtt: bool) -> None:
    """Read i, r and q from standard input until q or its end."""
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str] = asyncio.Queue()

    def read() -> None:  # a daemon thread: a demo stopped by SIGTERM must not wait for the next line
        while line := sys.stdin.readline():
            loop.call_soon_threadsafe(lines.put_nowait, line)
        loop.call_soon_threadsafe(lines.put_nowait, "")

    threading.Thread(target=read, name="demo-stdin", daemon=True).start()
    relay_cut = internet_cut = False
    while line := await lines.get():
        command = line.strip().lower()
        if command == "q":
            return
        if command == "r" and relay.process is not None:
            relay_cut = not relay_cut
            relay.process.send_signal(signal.SIGSTOP if relay_cut else signal.SIGCONT)
            print("relæet er afbrudt" if relay_cut else "relæet kører igen", flush=True)
        if command == "i":
            internet_cut = not internet_cut
            for proxy in proxies:
                await (proxy.switch_off() if internet_cut else proxy.switch_on())
            if internet_cut:
                moved = "beskederne går nu over MQTT" if mqtt else "der er ingen anden forbindelse"
                print(f"internettet er afbrudt: {moved}", flush=True)
            else:
                print("internettet er tilbage", flush=True)


def add_demo_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = subparsers.add_parser(
        "demo",
        help="en kommune på denne maskine: stabens hub, relæ, tre plejehjem, med konsoller",
        description=DESCRIPTION,
    )
    command.add_argument(
        "--dir", default="beredt-demo", help="en ny mappe til demoen (standard: beredt-demo)"
    )
    command.add_argument(
        "--port",
        type=int,
        default=8480,
        help="stabskonsollens port; de andre følger efter (0: vilkårlige ledige porte)",
    )
    command.set_defaults(func=cmd_demo)


__all__ = ["add_demo_command", "build"]
