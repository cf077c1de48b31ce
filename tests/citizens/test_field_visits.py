"""Coded visits from a team's Meshtastic handheld: a staff hub and a team's hub on fake radios driven by the
real meshtastic library, and a nurse's handheld (another fake radio, the library sending for it as the
phone app or the handheld's keyboard would). The team's hub records the visit, sends it on as a signed
VISIT, and answers the handheld with a PKI direct message; a resend counts once; bad codes, unknown
citizens and other teams' citizens are answered in Danish; unregistered, forged and channel-encrypted
senders are refused, counted and never answered; a packet played back after the hub restarted is not a
new visit."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from pathlib import Path
from typing import Any

from meshtastic.tcp_interface import TCPInterface
from pubsub import pub

from hub.citizens.field_visits import FieldVisits
from hub.citizens.records import to_csv
from hub.citizens.sample import sample_citizens
from hub.citizens.settings import CitizensConfig
from hub.core.clock import ManualClock
from hub.core.handhelds import FILE_NAME
from hub.core.transport import TeamText
from simulators.meshtastic_radio import FakeMeshtasticRadio
from simulators.rf_medium import RFMedium
from tests.citizens.conftest import follow_up
from tests.citizens.test_followup import _until
from tests.citizens.test_lora_lists import COORDINATOR, NORD, NURSE, RADIO, STAFF, SYD, _mesh_hub
from tests.inproc import hub_config, medium_name
from transports.lora_airtime import ModemPreset, packet_airtime
from transports.lora_alarm import TEXT_MESSAGE_APP

NURSE_HANDHELD, STRANGER, OLD_FIRMWARE = 0xD1, 0xD2, 0xD3
DEADLINE = 30.0
LONG_FAST = ModemPreset.LONG_FAST


class Handheld:
    """A nurse's handheld: sends texts as its keyboard does and keeps the texts it is sent."""

    def __init__(self, radio: FakeMeshtasticRadio, iface: Any) -> None:
        self.radio = radio
        self.iface = iface
        self.answers: list[tuple[str, bool]] = []
        """Texts received: (text, whether the firmware decrypted them with the sender's public key)."""
        self._arrived = threading.Condition()
        pub.subscribe(self._on_receive, "meshtastic.receive")

    @classmethod
    async def open(cls, medium: RFMedium, num: int, *, pki: bool = True) -> Handheld:
        radio = FakeMeshtasticRadio(num, medium, pki=pki)
        port = await radio.start_tcp()
        iface = await asyncio.to_thread(TCPInterface, "127.0.0.1", portNumber=port, timeout=15)
        return cls(radio, iface)

    def _on_receive(self, packet: dict[str, Any], interface: Any) -> None:
        if interface is self.iface and packet.get("decoded", {}).get("portnum") == "TEXT_MESSAGE_APP":
            with self._arrived:
                self.answers.append((packet["decoded"]["text"], packet.get("pkiEncrypted") is True))
                self._arrived.notify_all()

    async def send(self, text: str, to: int) -> None:
        """Send ``text`` to the radio ``to`` and wait until the air is quiet."""
        sent = len(self.radio.from_host)
        await asyncio.to_thread(
            self.iface.sendData,
            text.encode(),
            destinationId=f"!{to:08x}",
            portNum=TEXT_MESSAGE_APP,
            wantAck=True,
        )
        await asyncio.wait_for(self.radio.packets_from_host(sent + 1), DEADLINE)
        await asyncio.wait_for(self.radio.medium.quiet(), DEADLINE)

    async def ask(self, text: str, to: int) -> str:
        """Send ``text`` and return the answer the handheld gets."""
        before = len(self.answers)
        await self.send(text, to)

        def wait() -> bool:
            with self._arrived:
                return self._arrived.wait_for(lambda: len(self.answers) > before, DEADLINE)

        assert await asyncio.to_thread(wait), f"no answer to {text!r}"
        (answer, pki), *later = self.answers[before:]
        assert pki and not later  # one answer, encrypted to this handheld's key
        return answer

    async def aclose(self) -> None:
        pub.unsubscribe(self._on_receive, "meshtastic.receive")
        await asyncio.to_thread(self.iface.close)
        await self.radio.aclose()


def register(data_dir: Path, *handhelds: tuple[int, bytes | None, str]) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for node, key, team in handhelds:
        assert key is not None
        encoded = base64.b64encode(key).decode()
        entries.append(f'[[handheld]]\nnode = "!{node:08x}"\npublic_key = "{encoded}"\nteam = "{team}"\n')
    (data_dir / FILE_NAME).write_text("".join(entries))


async def test_a_nurse_reports_visits_from_a_handheld_and_gets_an_answer(tmp_path: Path) -> None:
    medium = RFMedium(seed=3)
    people = sample_citizens(6, ["Nord", "Syd"])  # three per district
    north = [p.id for p in people if p.district == "Nord"]
    south = [p.id for p in people if p.district == "Syd"]
    teams = {"Nord": (NORD.node_id.hex(),), "Syd": (SYD.node_id.hex(),)}
    nurse = await Handheld.open(medium, NURSE_HANDHELD)
    stranger = await Handheld.open(medium, STRANGER)
    old = await Handheld.open(medium, OLD_FIRMWARE, pki=False)
    listed = (NURSE_HANDHELD, nurse.radio.public_key, "Nord"), (OLD_FIRMWARE, b"\x07" * 32, "Nord")
    register(tmp_path / NORD.name, *listed)
    register(tmp_path / STAFF.name, *listed)
    try:
        async with (
            _mesh_hub(
                tmp_path, STAFF, medium, [NORD, SYD], CitizensConfig(teams=teams), personal_alarms=True
            ) as staff,
            _mesh_hub(tmp_path, NORD, medium, [STAFF], CitizensConfig(), personal_alarms=True) as nord,
        ):
            await staff.register.import_csv(to_csv(people), COORDINATOR)
            await nord.register.import_csv(to_csv(p for p in people if p.district == "Nord"), NURSE)
            await staff.mark_outage(COORDINATOR, districts=["Nord", "Syd"])

            async def listed_on_team_hub() -> bool:
                return len(await nord.followup_view(NURSE)) == 3

            await _until(listed_on_team_hub, timeout=120)
            team_radio, staff_radio = RADIO[NORD.name], RADIO[STAFF.name]

            # The team's hub records the visit and sends it on; the staff hub's board counts it once.
            began = time.monotonic()
            answer = await nurse.ask(f"B {north[0]} ILT", team_radio)
            answered = time.monotonic() - began
            assert answer == f"OK B {north[0]} registreret: mangler ilt"
            assert await nurse.ask(f"b {north[0]} ilt", team_radio) == answer  # sent again: same visit
            number = north[1].lstrip("0")  # leading zeros left out
            assert await nurse.ask(f"B {number} ok", team_radio) == f"OK B {north[1]} registreret: set, OK"

            async def on_the_board() -> bool:
                rows = await staff.followup_view(COORDINATOR)
                return {r["id"]: r["outcome"] for r in rows if r["outcome"]} == {
                    north[0]: "needs_oxygen",
                    north[1]: "seen_ok",
                }

            await _until(on_the_board, timeout=120)
            airtime = packet_airtime(len(answer.encode()), LONG_FAST)
            print(f"\ncoded visit over LoRa (simulated mesh: airtime counted, not waited for): answer"
                  f" on the handheld {answered:.1f} s after sending ({len(answer.encode())} bytes of text,"
                  f" {airtime:.2f} s on the air at LONG_FAST); both visits on the staff hub's board"
                  f" {time.monotonic() - began:.1f} s after the first was sent")  # fmt: skip
            assert len(await nord.incidents.visits()) == 2 == len(await staff.incidents.visits())
            nord_board = {s["district"]: s for s in await staff.district_summary(COORDINATOR)}["Nord"]
            assert (nord_board["seen"], nord_board["needs_help"], nord_board["not_seen"]) == (2, 1, 1)

            # What is not a visit here is answered in Danish and recorded nowhere.
            assert (await nurse.ask(f"B {north[2]} FOO", team_radio)).startswith(
                "Ukendt kode FOO. Koder: OK,"
            )
            assert (await nurse.ask("Hej", team_radio)).startswith("Ukendt besked. Skriv: B <borger-id>")
            unknown = await nurse.ask("B ffffffff OK", team_radio)
            assert unknown == "B ffffffff er ikke på nogen aktuel opfølgningsliste; tjek id'et"
            # The staff hub's radio hears the handheld too: it records its own lists' visits, but only
            # for the handheld's team.
            other = await nurse.ask(f"B {south[0]} OK", staff_radio)
            assert other == f"B {south[0]} er ikke på hold Nords liste; ikke registreret"
            direct = await nurse.ask(f"B {north[2]} HOSPITAL", staff_radio)
            assert direct == f"OK B {north[2]} registreret: flyttet til hospital"
            assert nord.field_visits.counters == {"recorded": 2, "repeated": 1, "refused": 3}
            assert staff.field_visits.counters == {"recorded": 1, "repeated": 0, "refused": 1}

            # Not from a registered team handheld with its key: refused, counted, never answered.
            await stranger.send(f"B {north[2]} OK", team_radio)
            await old.send(f"B {north[2]} OK", team_radio)  # no PKI: a channel-encrypted direct message
            stranger.radio.send_forged(
                NURSE_HANDHELD, team_radio, TEXT_MESSAGE_APP, f"B {north[2]} OK".encode()
            )
            await asyncio.wait_for(medium.quiet(), DEADLINE)
            gate = nord.hub.links.transports["lora"].alarms  # type: ignore[attr-defined]

            async def refused() -> bool:
                return bool(gate.counters["unknown_node"] == 1 and gate.counters["not_pki"] == 1)

            await _until(refused, timeout=DEADLINE)
            # the forgery never reaches the host: the firmware could not decrypt it with the nurse's key
            assert gate.counters["team_texts"] == 6 and gate.counters["key_mismatch"] == 0
            assert stranger.answers == [] and old.answers == []
            assert len(await nord.incidents.visits()) == 2
            rows = {r["id"]: r for r in await staff.followup_view(COORDINATOR)}
            assert rows[north[2]]["outcome"] == "moved_hospital"
    finally:
        for handheld in (nurse, stranger, old):
            await handheld.aclose()


async def test_a_text_played_back_after_a_restart_is_not_a_new_visit(tmp_path: Path) -> None:
    """Someone records the nurse's "needs oxygen" on the air and plays it back hours later, after the
    hub restarted and after the nurse reported the citizen OK: the answer repeats, nothing is recorded,
    and the board still shows OK. The file that remembers the texts holds only their digests."""
    people = sample_citizens(4, ["Nord"])
    clock = ManualClock()
    config = hub_config(tmp_path / "staff", STAFF.name, medium_name())
    async with follow_up(config, STAFF, CitizensConfig(), clock, run=False) as staff:
        await staff.register.import_csv(to_csv(people), COORDINATOR)
        await staff.mark_outage(COORDINATOR, districts=["Nord"])
        citizen = people[0].id
        answers: list[str] = []

        async def reply(answer: str) -> None:
            answers.append(answer)

        def heard(packet: int, code: str) -> TeamText:
            text = f"B {citizen} {code}"
            return TeamText("!000000d1", "Nord", text, f"!000000d1/{packet}/{text}", reply)

        state = tmp_path / "team-texts.json"
        await FieldVisits(staff, state).read("lora", heard(77, "ILT"))
        clock.advance(600)
        await FieldVisits(staff, state).read("lora", heard(78, "OK"))  # the hub restarted in between
        clock.advance(3 * 3600)
        await FieldVisits(staff, state).read("lora", heard(77, "ILT"))  # and again: the playback

        assert answers == [f"OK B {citizen} registreret: mangler ilt", f"OK B {citizen} registreret: set, OK",
                           "Beskeden er modtaget før; intet nyt registreret"]  # fmt: skip
        assert len(await staff.incidents.visits()) == 2
        (row,) = [r for r in await staff.followup_view(COORDINATOR) if r["id"] == citizen]
        assert row["outcome"] == "seen_ok"
        kept = state.read_text()
        assert citizen not in kept and "!000000d1" not in kept and "ILT" not in kept
