"""Two real in-process hubs on a memory medium, each serving its API and console on a free loopback port."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from hub.api import build_app
from hub.app import Hub
from hub.console.routes import CONSOLE_KEY, setup_console
from hub.console.service import Console, ConsoleOptions
from hub.identity import Identity
from hub.roster import Role as NodeRole
from hub.users import Role
from tests.inproc import hub_config, medium_name, peer, running

PASSWORD = "korrekt-hest-batteri"


@dataclass
class Site:
    hub: Hub
    console: Console
    url: str


@contextlib.asynccontextmanager
async def serve(hub: Hub, options: ConsoleOptions) -> AsyncIterator[Site]:
    app = build_app(hub)
    setup_console(app, hub, options)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        yield Site(hub, app[CONSOLE_KEY], f"http://127.0.0.1:{port}")
    finally:
        await runner.cleanup()


@dataclass
class Pair:
    staff: Site
    care: Site


@pytest.fixture
def console_options() -> ConsoleOptions:
    return ConsoleOptions(tick_interval=0.1)


@pytest.fixture
async def pair(tmp_path: Path, console_options: ConsoleOptions) -> AsyncIterator[Pair]:
    medium = medium_name()
    staff_id = Identity.generate("Aarhus krisestab", "staff")
    care_id = Identity.generate("Plejecenter Lindely", "care-home")
    for name in ("staff", "care"):
        (tmp_path / name).mkdir()
    staff_config = hub_config(tmp_path / "staff", "staff", medium, role=NodeRole.STAFF,
                              peers=(peer(care_id, "care"),), default_route=(care_id.node_id,))  # fmt: skip
    care_config = hub_config(tmp_path / "care", "care", medium, role=NodeRole.CARE_HOME,
                             peers=(peer(staff_id, "staff"),), default_route=(staff_id.node_id,))  # fmt: skip
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
