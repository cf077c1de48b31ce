"""Two real in-process hubs on a memory medium, each serving its API and console on a free loopback port."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from hub.console.options import ConsoleOptions
from hub.console.routes import CONSOLE_KEY, setup_console
from hub.console.service import Console
from hub.console.users import Role
from hub.core.identity import Identity
from hub.relay.hub import Hub
from hub.relay.roster import Role as NodeRole
from hub.relay.settings import LinkConfig, PeerConfig
from tests.inproc import hub_config, medium_name, running

PASSWORD = "korrekt-hest-batteri"


@dataclass
class Site:
    hub: Hub
    console: Console
    url: str


@contextlib.asynccontextmanager
async def serve(hub: Hub, options: ConsoleOptions) -> AsyncIterator[Site]:
    app = web.Application()
    setup_console(app, hub, options)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        yield Site(hub, app[CONSOLE_KEY], f"http://127.0.0.1:{port}")
    finally:
        await runner.cleanup()


@dataclass
class Pair:
    staff: Site
    care: Site


@pytest.fixture
def console_options() -> ConsoleOptions:
    # received messages' log-book entries written at once: these tests read the book right after the board
    # (holding them is tested in test_logbook_hold.py and test_hub_process.py)
    return ConsoleOptions(tick_interval=0.1, logbook_received_interval=0.0)


@pytest.fixture
def link_names() -> tuple[str, ...]:
    """Memory links between the two hubs, each on its own medium, in the order the hubs prefer them."""
    return ("memory",)


def _links(names: tuple[str, ...], media: dict[str, str], address: str) -> tuple[LinkConfig, ...]:
    return tuple(
        LinkConfig(n, "memory", {"kind": "memory", "medium": media[n], "address": address}) for n in names
    )


@pytest.fixture
async def pair(
    tmp_path: Path, console_options: ConsoleOptions, link_names: tuple[str, ...]
) -> AsyncIterator[Pair]:
    media = {name: medium_name() for name in link_names}
    staff_id = Identity.generate("Aarhus krisestab", "staff")
    care_id = Identity.generate("Plejecenter Lindely", "care-home")
    for name in ("staff", "care"):
        (tmp_path / name).mkdir()
    staff_config = hub_config(
        tmp_path / "staff", "staff", "", role=NodeRole.STAFF, links=_links(link_names, media, "staff"),
        peers=(PeerConfig(care_id.node_id, care_id.name, dict.fromkeys(link_names, "care")),),
        default_route=(care_id.node_id,),
    )  # fmt: skip
    care_config = hub_config(
        tmp_path / "care", "care", "", role=NodeRole.CARE_HOME, links=_links(link_names, media, "care"),
        peers=(PeerConfig(staff_id.node_id, staff_id.name, dict.fromkeys(link_names, "staff")),),
        default_route=(staff_id.node_id,),
    )  # fmt: skip
    async with running(staff_config, staff_id) as staff_hub, running(care_config, care_id) as care_hub:
        staff_hub.roster.add(care_id.card)
        care_hub.roster.add(staff_id.card)
        async with serve(staff_hub, console_options) as staff, serve(care_hub, console_options) as care:
            await staff.console.users.add(
                "hansen", PASSWORD, Role.COORDINATOR, display_name="Vagtleder Hansen"
            )
            await staff.console.users.add("laeser", PASSWORD, Role.VIEWER)
            await care.console.users.add(
                "lindely", PASSWORD, Role.INSTITUTION, display_name="Nattevagt Lindely",
                institution=care_id.node_id.hex(),
            )  # fmt: skip
            yield Pair(staff, care)
