"""Coded visits typed on a team's SINE terminal: the staff hub and the team's hub on the TETRA simulator
(the real SINE transport on ptys), and the nurse's terminal, a simulated radio driven here with the PEI's
own AT commands and a text message built by hand from EN 300 392-2 §29.5.4. The team's hub records the
visit, sends it on, and answers with a text SDS; an unregistered terminal is refused and not answered."""

from __future__ import annotations

from pathlib import Path

from hub.citizens.records import to_csv
from hub.citizens.sample import sample_citizens
from hub.citizens.settings import CitizensConfig
from hub.core.handhelds import FILE_NAME
from simulators.tetra import TetraNetwork, TetraRadio
from tests.citizens.test_followup import _until
from tests.citizens.test_sine_visits import COORDINATOR, ISSI, NURSE, STAFF, TEAM, _sine_hub

NURSE_TERMINAL, STRANGER = "2001", "2002"
TEXT_PID, LATIN_1, WANTS_RECEIVED_REPORT = 0x82, 0x01, 0x04


def type_text(radio: TetraRadio, to: str, text: str, ref: int) -> None:
    """What a terminal's keypad sends: an SDS-TL TRANSFER under the text PID asking for a "received"
    report, then timestamp-used 0 and coding scheme 1 (Latin 1), then the text."""
    pdu = bytes([TEXT_PID, WANTS_RECEIVED_REPORT, ref, LATIN_1]) + text.encode("latin-1")
    radio.receive_data(b"AT+CTSDS=12,0\r")
    radio.receive_data(f"AT+CMGS={to},{len(pdu) * 8}\r{pdu.hex().upper()}\x1a".encode())
    radio.data_to_send()  # +CMGS and OK: taken


def shown(radio: TetraRadio) -> list[str]:
    """The text messages on the terminal's screen (TRANSFERs under the text PID, without timestamp)."""
    return [
        pdu[4:].decode("latin-1")
        for _, pdu in radio.consumed
        if pdu[0] == TEXT_PID and pdu[1] >> 4 == 0 and pdu[3] == LATIN_1
    ]


async def test_a_nurse_reports_a_visit_by_text_sds_and_gets_an_answer(tmp_path: Path) -> None:
    network = TetraNetwork(max_per_window=10_000, window=60.0)
    nurse, stranger = network.add_radio(NURSE_TERMINAL), network.add_radio(STRANGER)
    people = [p for p in sample_citizens(8, ["Nord", "Syd"]) if p.district == "Nord"]
    teams = {"Nord": (TEAM.node_id.hex(),)}
    (tmp_path / TEAM.name).mkdir()
    (tmp_path / TEAM.name / FILE_NAME).write_text(f'[[terminal]]\nissi = "{NURSE_TERMINAL}"\nteam = "Nord"\n')
    async with (
        _sine_hub(tmp_path, network, STAFF, TEAM, CitizensConfig(teams=teams)) as staff,
        _sine_hub(tmp_path, network, TEAM, STAFF, CitizensConfig(), team_texts=True) as team,
    ):
        await staff.register.import_csv(to_csv(people), COORDINATOR)
        await team.register.import_csv(to_csv(people), NURSE)
        await staff.mark_outage(COORDINATOR, districts=["Nord"])

        async def listed() -> bool:
            return len(await team.followup_view(NURSE)) == len(people)

        await _until(listed, timeout=120)
        citizen = people[0].id
        hub_issi = ISSI[TEAM.name]

        async def answered(count: int) -> None:
            async def arrived() -> bool:
                return len(shown(nurse)) >= count

            await _until(arrived, timeout=60)

        type_text(nurse, hub_issi, f"B {citizen} STRØM", ref=1)
        await answered(1)
        assert shown(nurse) == [f"OK B {citizen} registreret: mangler strøm"]
        type_text(nurse, hub_issi, f"b {citizen.lstrip('0')} stroem", ref=2)  # sent again: the same visit
        type_text(nurse, hub_issi, f"B {citizen} KAFFE", ref=3)
        await answered(3)
        assert shown(nurse)[1:] == [
            f"OK B {citizen} registreret: mangler strøm",
            "Ukendt kode KAFFE. Koder: OK, STROEM, ILT, TRANSPORT, PLEJEHJEM, HOSPITAL, IKKE HJEMME",
        ]
        # the hub sent the "received" reports the terminal asked for
        reports = [pdu for _, pdu in nurse.consumed if pdu[0] == TEXT_PID and pdu[1] == 0x10]
        assert sorted(pdu[3] for pdu in reports) == [1, 2, 3]

        async def on_the_board() -> bool:
            rows = await staff.followup_view(COORDINATOR)
            return [(r["id"], r["outcome"]) for r in rows if r["outcome"]] == [(citizen, "needs_power")]

        await _until(on_the_board, timeout=120)
        assert len(await staff.incidents.visits()) == 1 == len(await team.incidents.visits())

        # A terminal not registered to a team: refused, counted, not answered (not even a report).
        type_text(stranger, hub_issi, f"B {people[1].id} OK", ref=7)
        link = team.hub.links.transports["sine"]

        async def refused() -> bool:
            return bool(link.status()["team_texts"]["unknown_terminal"] == 1)  # type: ignore[attr-defined]

        await _until(refused, timeout=60)
        assert link.status()["team_texts"]["team_texts"] == 3  # type: ignore[attr-defined]
        assert list(stranger.consumed) == []
        assert team.field_visits.counters == {"recorded": 1, "repeated": 1, "refused": 1}
