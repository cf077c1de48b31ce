"""``beredt demo``: a small municipality on one machine, to see what Beredt does before any radio arrives.

Five real ``beredt run`` processes on loopback: the municipality's staff hub, a relay and three care homes
that reach the staff through the relay over the internet link. Every hub trusts the others, each has a
console user, and the staff console shows the live board. Typing ``r`` cuts the relay (the process is
stopped, as a power cut at the relay site would); ``r`` again brings it back. Watch the care home's
emergency stay "ikke bekræftet" and the board flag the homes out of contact, then both turn confirmed.
Everything lives in one folder (``beredt-demo`` by default); the hubs stop with ``q`` or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from drill.topology import free_port
from hub.console.service import CONSOLE_DB
from hub.console.users import Role as UserRole
from hub.console.users import Users
from hub.core.clock import SystemClock
from hub.core.errors import UsageError
from hub.relay.roster import Roster
from hub.service import config as config_module
from hub.service.assembly import load_identity

PASSWORD = "beredt-demo"
HOMES = ("Plejecenter Lindely", "Plejehjemmet Solbakken", "Bofællesskabet Egely")


@dataclass
class DemoHub:
    key: str
    name: str
    role: str
    folder: Path
    api_port: int = 0
    link_port: int = 0
    node: str = ""
    card: str = ""
    user: str = ""
    process: subprocess.Popen[bytes] | None = None

    @property
    def config_path(self) -> Path:
        return self.folder / f"{self.key}.toml"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.link_port}"

    def document(self, peers: list[DemoHub], default_route: DemoHub | None) -> dict[str, object]:
        routes: dict[str, list[str]] = {"default": [default_route.node]} if default_route else {}
        return {
            "node": {"name": self.name, "role": self.role, "data_dir": f"{self.key}-data"},
            "api": {"listen": f"127.0.0.1:{self.api_port}"},
            "links": {"internet": {"kind": "internet", "listen": f"127.0.0.1:{self.link_port}"}},
            "peers": [{"node": p.node, "name": p.name, "links": {"internet": p.url}} for p in peers],
            "routes": routes,
            # a demo should show failure and recovery within seconds, not minutes
            "timing": {"hop_ack_timeout": 3.0, "retry_initial": 0.5, "retry_cap": 5.0, "probe_interval": 2.0},
        }


def _municipality(folder: Path, port: int) -> tuple[DemoHub, DemoHub, list[DemoHub]]:
    """The five hubs; consoles on ``port``, ``port + 1``... and links 100 above (free ports if 0)."""
    staff = DemoHub("kommune", "Kommunens krisestab", "staff", folder, user="hansen")
    relay = DemoHub("relay", "Relay Nord", "relay", folder)
    homes = [DemoHub(f"plejehjem{i}", name, "care-home", folder, user=f"plejehjem{i}")
             for i, name in enumerate(HOMES, 1)]  # fmt: skip
    for index, hub in enumerate([staff, relay, *homes]):
        hub.api_port = port + index if port else free_port()
        hub.link_port = port + 100 + index if port else free_port()
    return staff, relay, homes


async def _add_user(hub: DemoHub, role: UserRole, display: str) -> None:
    config = config_module.load(hub.config_path)
    users = await Users.open(config.data_dir / CONSOLE_DB, SystemClock())
    try:
        institution = hub.node if role is UserRole.INSTITUTION else None
        await users.add(hub.user, PASSWORD, role, display_name=display, institution=institution)
    finally:
        await users.aclose()


def build(folder: Path, port: int = 0) -> tuple[DemoHub, DemoHub, list[DemoHub]]:
    """Write five configs, identities, rosters and console users into ``folder``."""
    if folder.exists() and any(folder.iterdir()):
        raise UsageError(f"{folder} is not empty: give 'beredt demo --dir' a new folder, or remove it")
    folder.mkdir(parents=True, exist_ok=True)
    staff, relay, homes = _municipality(folder, port)
    everyone = [staff, relay, *homes]
    for hub in everyone:  # identities first: every config names the others by id
        hub.config_path.write_text(tomli_w.dumps(hub.document([], None)))
        identity = load_identity(config_module.load(hub.config_path), create=True)
        hub.node, hub.card = identity.node_id.hex(), identity.card.encode()
    relay_document = relay.document([staff, *homes], None)
    relay_document["routes"] = {hub.node: [hub.node] for hub in (staff, *homes)}
    relay.config_path.write_text(tomli_w.dumps(relay_document))
    for hub in (staff, *homes):
        hub.config_path.write_text(tomli_w.dumps(hub.document([relay], relay)))
    for hub in everyone:
        config = config_module.load(hub.config_path)
        identity = load_identity(config, create=False)
        roster = Roster.load(identity.card, config.roster_path)
        for other in everyone:
            if other is not hub:
                roster.add(load_identity(config_module.load(other.config_path), create=False).card, None)
        roster.save()
    asyncio.run(_add_user(staff, UserRole.COORDINATOR, "Vagtleder Hansen"))
    for hub in homes:
        asyncio.run(_add_user(hub, UserRole.INSTITUTION, f"Nattevagt, {hub.name}"))
    return staff, relay, homes


def _wait_listening(hub: DemoHub, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if hub.process is not None and hub.process.poll() is not None:
            raise UsageError(f"{hub.name} stopped at start; see {hub.folder / (hub.key + '.log')}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", hub.api_port)) == 0:
                return
        time.sleep(0.2)
    raise UsageError(
        f"{hub.name} did not start within {timeout:.0f} s; see {hub.folder / (hub.key + '.log')}"
    )


def cmd_demo(args: argparse.Namespace) -> int:
    folder = Path(args.dir).resolve()
    staff, relay, homes = build(folder, args.port)
    everyone = [staff, relay, *homes]
    try:
        for hub in everyone:
            with open(folder / f"{hub.key}.log", "ab") as log:
                hub.process = subprocess.Popen(
                    [sys.executable, "-m", "hub.cli", "run", "-c", str(hub.config_path)],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                )  # fmt: skip
        for hub in everyone:
            _wait_listening(hub)
        print(f"Beredt-demo kører i {folder} (adgangskode for alle: {PASSWORD})")
        for hub in (staff, *homes):
            print(f"  {hub.name:<26} http://127.0.0.1:{hub.api_port}/console/  bruger {hub.user}")
        print("Skriv r + Enter for at afbryde eller genoprette relæet, q + Enter for at stoppe.", flush=True)
        cut = False
        for line in sys.stdin:
            command = line.strip().lower()
            if command == "q":
                break
            if command == "r" and relay.process is not None:
                cut = not cut
                relay.process.send_signal(signal.SIGSTOP if cut else signal.SIGCONT)
                print("relæet er afbrudt" if cut else "relæet kører igen", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        for hub in everyone:
            if hub.process is not None and hub.process.poll() is None:
                hub.process.send_signal(signal.SIGCONT)  # a stopped process cannot act on SIGTERM
                hub.process.terminate()
        for hub in everyone:
            if hub.process is not None:
                try:
                    hub.process.wait(20)
                except subprocess.TimeoutExpired:
                    hub.process.kill()
    print("demoen er stoppet; filerne ligger i", folder)
    return 0


def add_demo_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = subparsers.add_parser(
        "demo",
        help="a municipality on this machine: staff hub, relay, three care homes, with consoles",
        description=(__doc__ or "").split("\n\n")[1],
    )
    command.add_argument(
        "--dir", default="beredt-demo", help="a new folder for the demo (default: beredt-demo)"
    )
    command.add_argument(
        "--port",
        type=int,
        default=8480,
        help="the staff console's port; the others follow (0: any free ports)",
    )
    command.set_defaults(func=cmd_demo)


__all__ = ["add_demo_command", "build"]
