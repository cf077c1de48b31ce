"""``beredt data search|export|erase`` on real ``beredt run`` processes: the staff hub finds every message
about a made-up person, sealed or public, by name or CPR number with or without its dash, exports them,
erases them (the rest stays), and its log book still verifies afterwards."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hubproc import HubError, HubProcess, staff_and_care_home

NAME, CPR = "Vinterberg", "170345-1234"


@pytest.fixture
def hubs(tmp_path: Path) -> Iterator[tuple[HubProcess, HubProcess]]:
    staff, home = staff_and_care_home(tmp_path, "Plejecenter Lindely")
    staff.start(timeout=120)
    home.start()
    try:
        yield staff, home
    finally:
        staff.kill()
        home.kill()


def found(hub: HubProcess, term: str) -> dict[str, dict[str, object]]:
    return {f["id"]: f for f in json.loads(hub.cli("data", "search", term, "--json"))}


@pytest.mark.timeout(400)  # two hubs and a dozen CLI runs on a loaded 2-core machine
def test_search_export_and_erase_one_person(hubs: tuple[HubProcess, HubProcess], tmp_path: Path) -> None:
    staff, home = hubs
    about = [
        home.send(staff.node_id, "text", f"Karen {NAME} ({CPR}) mangler ilt"),
        home.send(staff.node_id, "text", f"CPR {CPR.replace('-', '')} er hentet", public=True),
        home.send(staff.node_id, "status", {"facility": "Compromised", "text": f"fru {NAME.upper()} på ilt"}),
    ]
    other = home.send(staff.node_id, "text", "Generatoren kører, 8 timers diesel")
    staff.wait_for("the care home's messages", lambda: {*about, other} <= {m["id"] for m in staff.inbox()})

    by_name, by_cpr = found(staff, NAME.lower()), found(staff, CPR.replace("-", " "))
    assert {about[0], about[2]} <= set(by_name) and other not in by_name
    assert {about[0], about[1]} <= set(by_cpr) and other not in by_cpr
    assert NAME in str(by_name[about[0]]["content"]) and by_name[about[0]]["place"] == "message"
    assert "board" in {f["place"] for f in by_name.values()}, "the board's status names her too"
    with pytest.raises(HubError, match="mindst 3 tegn"):
        staff.cli("data", "search", "ab")

    export = tmp_path / "indsigt.csv"
    assert "fund skrevet" in staff.cli("data", "export", CPR, "--format", "csv", "--out", str(export))
    assert export.stat().st_mode & 0o077 == 0
    lines = export.read_text().splitlines()
    assert lines[0] == "place,id,time,kind,sender,recipient,content"
    assert {about[0], about[1]} <= {line.split(",")[1] for line in lines[1:]}

    assert "sletning skal bekræftes" in staff.cli("data", "erase", NAME, check=False), "no terminal, no --yes"
    assert found(staff, NAME), "nothing erased without confirmation"
    out = staff.cli("data", "erase", NAME, "--yes", "--by", "hansen")
    assert "slettet: 2 beskeder" in out and "1 statusser" in out, out
    out = staff.cli("data", "erase", CPR, "--yes", "--by", "hansen")
    assert "slettet: 1 beskeder" in out, out
    assert found(staff, NAME) == {} and found(staff, CPR) == {}
    for message_id in about:
        assert staff.request("GET", f"/v1/messages/{message_id}")[0] == 404
    assert "Generatoren" in str(staff.message(other)["body"])
    assert {m["id"] for m in staff.inbox()} & set(about) == set()

    staff.cli("log", "verify")  # exits non-zero if the chain were broken
    book = staff.cli("log", "export")
    assert "Personoplysninger slettet efter anmodning: 2 beskeder" in book and "hansen" in book
    assert NAME not in book and NAME.upper() not in book and "170345" not in book
    assert staff.stop() == 0
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in (staff.dir / "data").glob("*.db*"):
        shutil.copy2(path, copy / path.name)
    for path in copy.iterdir():
        raw = path.read_bytes()
        assert NAME.encode() not in raw and b"170345" not in raw and NAME.upper().encode() not in raw
    staff.start(timeout=120)
    assert found(staff, NAME) == {} and "Generatoren" in str(staff.message(other)["body"])
    staff.cli("log", "verify")
