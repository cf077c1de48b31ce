"""The drill's world on paper: five hubs, the links each has in the field, and their config files.

A municipality's crisis staff (``staff``), a relay Pi on a mast (``relay``) and three care homes. Every
hub has internet and MQTT; every hub has a LoRa radio on the shared mesh; the staff, the relay and the
first care home carry SINE radios; the first care home has an Iridium modem and the staff hub receives
the provider's webhook. The radios are configured single-hop (``lora.hop_limit = 0`` in the radios'
own config, see ``drill.sims``) so that when the mesh
partitions, a care home out of the staff's radio range is reached through the relay *hub*, which stores
and forwards the signed frame, not by the radios' own flooding.

Keys and rosters are written here directly (the same files ``beredt init`` and ``beredt roster add``
write), which saves five interpreter starts per hub. Every hub's internet link listens on a private port
and is known to its peers only by its proxy's URL (see ``drill.proxy``).
"""

from __future__ import annotations

import random
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from hub.core.errors import DrillError
from hub.core.identity import Identity
from hub.relay.roster import Roster

MESH_PRESET = "LONG_FAST"
SINE_PID = 0xC8
SINE_PER_MINUTE = 120
"""SDS per minute in the drill: the real control channel takes a few, which would stretch a CI run."""
SINE_COMMAND_TIMEOUT = 2.0
SINE_HEALTH_INTERVAL = 1.0
"""A mute SINE terminal is noticed by the first command it leaves unanswered: a frame's ``AT+CMGS`` after
``SINE_COMMAND_TIMEOUT``, or, with no traffic, the next ``AT+CREG?`` health check, so at most
``SINE_HEALTH_INTERVAL + SINE_COMMAND_TIMEOUT`` = 3 s after it hangs (the failover budget). Both ask
only the terminal, not the air; production keeps 10 s and 30 s (see docs/sine.md)."""
SATELLITE_SECRET = "drill webhook secret"
MSSTM_EPOCH = 1786365291.64
"""The Iridium time epoch after the 2026-08-10 rollover (see docs/satellite.md)."""

TIMING = {
    "hop_ack_timeout": 2.0,
    "retry_initial": 0.2,
    "retry_cap": 5.0,
    "e2e_ack_delay": 0.2,
    "probe_interval": 1.0,
}
"""Hub timing for the drill: the defaults, except a shorter hop-ack wait and retry cap so a short run
does not sit out two-minute back-offs after the links come back."""


@dataclass(frozen=True, slots=True)
class Site:
    key: str
    name: str
    role: str
    radio: int
    """Node number of its Meshtastic radio."""
    issi: str | None = None
    imei: str | None = None
    webhook: bool = False


SITES: tuple[Site, ...] = (
    Site("staff", "Aarhus Kommune krisestab", "staff", 0xA1, issi="1001", webhook=True),
    Site("relay", "Relay Nord", "relay", 0xA2, issi="1002"),
    Site("home1", "Plejecenter Solgaarden", "care-home", 0xB1, issi="1011", imei="300234010753370"),
    Site("home2", "Plejehjemmet Egebakken", "care-home", 0xB2),
    Site("home3", "Bofællesskabet Lyngtoften", "care-home", 0xB3),
)
CARE_HOMES = ("home1", "home2", "home3")


_GIVEN: set[int] = set()
_LOWEST_PORT = 20000
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_pick = random.Random()  # seeded from the OS: concurrent test processes pick different ports


def _first_ephemeral_port() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # the Linux default


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on now and never handed out before by this process, for a server that
    binds it a moment later.

    It comes from below the kernel's ephemeral range. A port the kernel picks (bind to port 0) is an
    ephemeral one, which the next outgoing connection of any process may take as its local port before
    our server binds it: with several drills and test runs at once that happened ("Address already in
    use" at a hub's start). Below the range only another listener can take it, and each process picks
    at random."""
    top = _first_ephemeral_port()
    for _ in range(1000):
        wanted = _pick.randrange(_LOWEST_PORT, top) if top - _LOWEST_PORT >= 1000 else 0
        with socket.socket() as sock:
            try:
                sock.bind((host, wanted))
            except OSError:
                continue  # in use: pick another
            port: int = sock.getsockname()[1]
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port
    raise DrillError(f"no free port to listen on at {host}")


def radio_address(site: Site) -> str:
    return f"!{site.radio:08x}"


@dataclass(frozen=True, slots=True)
class SimAddresses:
    """Where the simulated infrastructure answers, known once it runs."""

    mqtt_url: str
    radio_ports: Mapping[str, int]
    sine_devices: Mapping[str, Path]
    modem_devices: Mapping[str, Path]
    mt_url: str


@dataclass(slots=True)
class HubPlan:
    """One hub: its folder, identity and ports."""

    site: Site
    dir: Path
    identity: Identity
    api_port: int = field(default_factory=free_port)
    internet_port: int = field(default_factory=free_port)
    webhook_port: int = field(default_factory=free_port)
    public_url: str = ""

    @property
    def node_id(self) -> str:
        return self.identity.node_id.hex()

    @property
    def config_path(self) -> Path:
        return self.dir / "beredt.toml"

    @property
    def api_url(self) -> str:
        """The console (and the token API) on the network port."""
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def socket_path(self) -> Path:
        """The API socket the CLI and the drill use."""
        return self.dir / "data" / "api.sock"


def create_hubs(root: Path) -> dict[str, HubPlan]:
    """Identities and rosters for the five hubs under ``root`` (every hub trusts every other)."""
    plans = {}
    for site in SITES:
        directory = root / site.key
        identity = Identity.generate(site.name, site.role)
        identity.save(directory / "data" / "identity.key")
        plans[site.key] = HubPlan(site, directory, identity)
    for plan in plans.values():
        roster = Roster(plan.identity.card, plan.dir / "data" / "roster.toml")
        for other in plans.values():
            if other is not plan:
                roster.add(other.identity.card)
        roster.save()
    return plans


def hub_config(plan: HubPlan, plans: Mapping[str, HubPlan], sims: SimAddresses) -> dict[str, Any]:
    """The TOML tables of one hub's config."""
    site = plan.site
    links: dict[str, dict[str, Any]] = {
        "internet": {
            "kind": "internet",
            "listen": f"127.0.0.1:{plan.internet_port}",
            "public_url": plan.public_url,
            "timeout": 2,
        },
        "mqtt": {
            "kind": "mqtt",
            "brokers": [sims.mqtt_url],
            "peers": [p.node_id for p in plans.values() if p is not plan],
            "keepalive": 2,
            "reconnect_max": 2.0,
            "publish_timeout": 3.0,
        },
        "lora": {
            "kind": "lora",
            "host": f"127.0.0.1:{sims.radio_ports[site.key]}",
            "preset": MESH_PRESET,
            "ack_timeout": 10,
            "connect_timeout": 15,
            "reconnect_max": 2,
        },
    }
    if site.issi is not None:
        links["sine"] = {
            "kind": "sine",
            "device": str(sims.sine_devices[site.key]),
            "baud": 38400,
            "pid": SINE_PID,
            "max_per_minute": SINE_PER_MINUTE,
            "timeout": 15,
            "command_timeout": SINE_COMMAND_TIMEOUT,
            "health_interval": SINE_HEALTH_INTERVAL,
        }
    if site.webhook:
        links["satellite"] = {
            "kind": "satellite",
            "webhook_listen": f"127.0.0.1:{plan.webhook_port}",
            "webhook_token": SATELLITE_SECRET,
            "mt_url": sims.mt_url,
            "mt_username": "beredt",
            "mt_password": "secret",
        }
    elif site.imei is not None:
        links["satellite"] = {
            "kind": "satellite",
            "device": str(sims.modem_devices[site.key]),
            "msstm_epoch": MSSTM_EPOCH,
            "retry_soon_seconds": 0.5,
            "retry_later_seconds": 1.0,
            "give_up_minutes": 0.5,
        }
    peers = []
    for other in plans.values():
        if other is plan:
            continue
        addresses = {"internet": other.public_url, "mqtt": other.node_id, "lora": radio_address(other.site)}
        if "sine" in links and other.site.issi is not None:
            addresses["sine"] = other.site.issi
        if site.webhook and other.site.imei is not None:
            addresses["satellite"] = other.site.imei
        if site.imei is not None and other.site.webhook:
            addresses["satellite"] = "cloud"
        peers.append({"node": other.node_id, "name": other.site.name, "links": addresses})
    routes: dict[str, list[str]] = {}
    if site.role != "relay":
        # Direct first; the relay is the alternative next hop for everybody else.
        routes["default"] = [plans["relay"].node_id]
    return {
        "node": {"name": site.name, "role": site.role, "data_dir": "data"},
        "api": {"listen": f"127.0.0.1:{plan.api_port}"},
        "links": links,
        "peers": peers,
        "routes": routes,
        "timing": dict(TIMING),
    }


def write_configs(plans: Mapping[str, HubPlan], sims: SimAddresses) -> None:
    for plan in plans.values():
        plan.config_path.write_text(tomli_w.dumps(hub_config(plan, plans, sims)))
