"""A care home's SINE status SDS reaches the staff's board through real radios: the SINE transport of each
hub on a simulated TETRA radio (its own pty), both on one simulated network."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.console import state
from hub.console.options import ConsoleOptions
from hub.console.routes import running_console
from hub.core.identity import Identity
from hub.relay.roster import Role as NodeRole
from hub.relay.settings import LinkConfig, PeerConfig
from simulators.pty_device import PtyDevice
from simulators.tetra import TetraNetwork
from tests.inproc import eventually, hub_config, running

PLAN = {"ok": 0x8001, "needs-power": 0x8002, "needs-medical": 0x8003}


@pytest.fixture
async def radios(tmp_path: Path) -> AsyncIterator[dict[str, PtyDevice]]:
    network = TetraNetwork(max_per_window=10_000, window=60.0)
    ptys = {}
    for issi in ("1001", "1002"):
        ptys[issi] = PtyDevice(network.add_radio(issi), tmp_path / f"tty{issi}", baud=38400)
        ptys[issi].start()
    yield ptys
    for pty in ptys.values():
        await pty.aclose()


def _sine(pty: PtyDevice) -> tuple[LinkConfig, ...]:
    options = {"kind": "sine", "device": str(pty.link_path), "baud": 38400, "status_plan": PLAN,
               "max_per_minute": 6000, "timeout": 10}  # fmt: skip
    return (LinkConfig("sine", "sine", options),)


async def test_status_sds_from_the_care_home_lands_on_the_staff_board(
    tmp_path: Path, radios: dict[str, PtyDevice]
) -> None:
    staff_id = Identity.generate("Aarhus krisestab", "staff")
    care_id = Identity.generate("Plejecenter Lindely", "care-home")
    for name in ("staff", "care"):
        (tmp_path / name).mkdir()
    staff_config = hub_config(
        tmp_path / "staff", "staff", "", role=NodeRole.STAFF, links=_sine(radios["1001"]),
        peers=(PeerConfig(care_id.node_id, care_id.name, {"sine": "1002"}),),
        default_route=(care_id.node_id,),
    )  # fmt: skip
    care_config = hub_config(
        tmp_path / "care", "care", "", role=NodeRole.CARE_HOME, links=_sine(radios["1002"]),
        peers=(PeerConfig(staff_id.node_id, staff_id.name, {"sine": "1001"}),),
        default_route=(staff_id.node_id,),
    )  # fmt: skip
    async with running(staff_config, staff_id) as staff, running(care_config, care_id) as care:
        staff.roster.add(care_id.card)
        # the board's own save is an hour away: a radio status, which the store does not hold, is saved sooner
        options = ConsoleOptions(tick_interval=0.1, board_save_interval=3600.0, radio_save_interval=0.5)
        async with running_console(staff, options) as console:
            sine = care.links.transports["sine"]
            await sine.send_status("1001", "needs-power")  # type: ignore[attr-defined]

            def heard() -> bool:
                rows = console.board_rows()
                return bool(rows) and rows[0]["radio"] is not None

            await eventually(heard, timeout=30)
            (row,) = console.board_rows()
            assert row["name"] == "Plejecenter Lindely" and row["concern"] == "help"
            assert row["radio"]["status"] == "needs-power" and row["last_link_kind"] == "SINE"
            texts = [e.text for e in await console.logbook.entries() if e.type == "received"]
            assert texts == ["SINE-status fra Plejecenter Lindely: needs-power (0x8002)"]
            deadline = asyncio.get_running_loop().time() + 30
            while True:  # polled: the save is the tick's, with no event to wait on
                saved = await state.load_board(console.db, console.sealer)
                if saved.get(care_id.node_id.hex(), {}).get("radio_status") == "needs-power":
                    break
                assert asyncio.get_running_loop().time() < deadline, "the radio row was not saved"
                await asyncio.sleep(0.1)
