"""Each institution's expected contact interval: the roster's, or one a coordinator sets in the console,
and the board's silence alarm follows it (two in-process hubs with their consoles)."""

from __future__ import annotations

from collections.abc import Callable

from hub.console import state, views
from hub.core.identity import Identity
from tests.console.conftest import Pair
from tests.console.test_routes import Client, clients  # noqa: F401 - the fixture


async def test_interval_from_roster_and_console_drives_the_silence_alarm(
    pair: Pair,
    clients: Callable[[str], Client],  # noqa: F811
) -> None:
    console, hub = pair.staff.console, pair.staff.hub
    # a home behind the running one: no link of ours probes it, so only what it sent counts as contact
    care = Identity.generate("Plejecenter Bøgely", "care-home")
    hub.roster.add(care.card)
    node = care.node_id.hex()
    now = hub.clock.time()

    def contact(silent_for: float) -> dict[str, object]:
        row: dict[str, object] = {"node": node, "last_heard": now - silent_for, "last_link": "memory"}
        within = console.options.confirm_within
        [checked] = views.with_contact(hub, [row], now, console.contact_intervals, console.outbox, within)
        return checked["contact"]  # type: ignore[no-any-return]

    assert contact(0)["expected_interval"] == 3600 and contact(0)["interval_source"] == "default"
    assert "silent" not in contact(1000)["alarms"]  # type: ignore[operator]

    hub.roster.add(care.card, contact_minutes=15)  # as roster.toml's contact_minutes = 15 gives it
    assert (contact(0)["expected_interval"], contact(0)["interval_source"]) == (900, "roster")
    assert "silent" in contact(1000)["alarms"]  # type: ignore[operator]

    staff = clients(pair.staff.url)
    await staff.login("hansen")
    answer = await staff.ok("POST", "contact-interval", {"node": node, "minutes": 30})
    assert (answer["expected_interval"], answer["interval_source"]) == (1800, "console")
    assert "silent" not in contact(1000)["alarms"]  # type: ignore[operator]
    board = await staff.ok("GET", "board")
    row = next(r for r in board["institutions"] if r["node"] == node)
    assert row["contact"]["expected_interval"] == 1800
    assert (await state.load(console.db, console.sealer))["contact_intervals"] == {node: 30}, (
        "kept across a restart"
    )
    entries = await console.logbook.page(limit=5)
    assert any("Forventet kontakt med Plejecenter Bøgely: hvert 30. minut" in e.text for e in entries)

    status, refused = await staff.call("POST", "contact-interval", {"node": node, "minutes": 0})
    assert status == 400 and "minutes" in refused["error"]
    status, refused = await staff.call("POST", "contact-interval", {"node": "00" * 8, "minutes": 30})
    assert status == 400
    viewer = clients(pair.staff.url)
    await viewer.login("laeser")
    status, _ = await viewer.call("POST", "contact-interval", {"node": node, "minutes": 30})
    assert status == 403

    await staff.ok("POST", "contact-interval", {"node": node, "minutes": None})  # back to the roster's
    assert (contact(0)["expected_interval"], contact(0)["interval_source"]) == (900, "roster")
