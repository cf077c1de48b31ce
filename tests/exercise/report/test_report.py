"""The after-action report of an exercise played between real in-process hubs (see conftest): its numbers
equal what the stores recorded, computed here straight from the SQLite files (opened with the day keys
beside them: both are sealed at rest); the PDF renders page by page
with pdftoppm; the page loads in Chromium with no errors and every chart image loads."""

from __future__ import annotations

import csv
import fcntl
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from hub.cli.main import main
from hub.core.at_rest import KEY_FOLDER, DataKeys, DocumentSealer, Retention
from hub.core.frame import Status, decode_frame
from hub.relay.exercise_usage import USAGE_FILE
from hub.relay.link_reasons import link_reason
from hub.relay.store_at_rest import FrameVault
from tests.exercise.report.conftest import ROLLCALL_REQUEST, Played
from tests.relay.test_store_file import HOLD

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.timeout(400)  # the first test plays the exercise (the package's fixture)


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as file:
        return list(csv.DictReader(file))


def test_numbers_equal_what_the_stores_recorded(played: Played) -> None:
    store = sqlite3.connect(played.staff_dir / "store.db")
    console = sqlite3.connect(played.staff_dir / "console.db")
    keys = DataKeys(played.staff_dir / KEY_FOLDER)
    frames, documents = FrameVault(keys, Retention()), DocumentSealer(keys, 60, lambda: 0.0)

    def wire(message_id: bytes, stored: bytes, key_id: str | None) -> bytes:
        opened = frames.open(bytes(message_id), key_id, bytes(stored))
        assert opened is not None
        return opened

    exercise_rows = [
        (bytes(i).hex(), accepted, acked)
        for i, stored, accepted, acked, key_id in store.execute(
            "SELECT id, wire, accepted_at, e2e_acked_at, key_id FROM messages WHERE local = 1 AND kind = 1"
        )
        if decode_frame(wire(i, stored, key_id)).status is Status.EXERCISE
    ]
    assert sorted(i for i, _, _ in exercise_rows) == sorted(played.sent)  # the real message is left out
    by_id = {m["id"]: m for m in rows(played.files.html.parent / "csv" / "beskeder.csv")}
    assert {i for i, row in by_id.items() if row["art"] == "text"} == set(played.sent)
    # the console's exercise roll-call and inject 2; the real roll-call run meanwhile is left out
    assert [row["art"] for row in by_id.values() if row["art"] != "text"] == ["rollcall", "rollcall"]
    (outbox,) = console.execute("SELECT value FROM console_state WHERE key='outbox'").fetchone()
    receipts = documents.open(outbox, "console_state:outbox")
    for message_id, accepted, acked in exercise_rows:
        row = by_id[message_id]  # the text messages: each one's numbers as the store has them
        assert row["leveringstid_s"] == ("" if acked is None else str(round(acked - accepted)))
        read = receipts["receipts"].get(message_id)
        # a receipt has whole seconds: read within the second of sending counts as read then
        assert row["laesetid_s"] == ("" if read is None else str(round(max(read[1], accepted) - accepted)))
        (link,) = store.execute(
            "SELECT link FROM deliveries WHERE message_row = (SELECT row FROM messages WHERE id = ?)"
            " AND state = 'hop-acked'",
            (bytes.fromhex(message_id),),
        ).fetchone() or (None,)
        if acked is not None:
            assert row["forbindelse"] == link
    first, second, third = played.sent
    assert by_id[first]["forbindelse"] == "memory" and by_id[second]["forbindelse"] == "backup"
    assert by_id[third]["leveret"] == "" and by_id[first]["laest_af"] == "Nattevagt Birgit"

    ((request, started, institution, document),) = console.execute(
        "SELECT r.request, r.started, t.institution, t.document FROM rollcalls r"
        " JOIN rollcall_targets t USING (request) WHERE r.exercise = 1"
    ).fetchall()
    (real,) = console.execute("SELECT request FROM rollcalls WHERE exercise = 0").fetchone()
    answer = documents.open(document, f"rollcall:{request}:{institution}")["answer"]
    by_call = {r["statusrunde"]: r for r in rows(played.files.html.parent / "csv" / "statusrunder.csv")}
    assert set(by_call) == {request, ROLLCALL_REQUEST} and real not in by_call
    assert by_call[request]["svartid_s"] == str(round(answer["at"] - started))
    assert by_call[request]["svar_via"] == answer["link"]
    # the roll-call sent as an inject (the exercise's last): its answer is the care home's next status
    # (nothing else came between)
    asked_at = max(
        at
        for i, stored, at, key_id in store.execute(
            "SELECT id, wire, accepted_at, key_id FROM messages WHERE kind = 4 AND local = 1"
        )
        if decode_frame(wire(i, stored, key_id)).status is Status.EXERCISE
    )
    answered_at, via = store.execute(
        "SELECT accepted_at, via FROM messages WHERE kind = 3 AND local = 0 AND accepted_at > ?"
        " ORDER BY accepted_at LIMIT 1",
        (asked_at,),
    ).fetchone()
    assert by_call[ROLLCALL_REQUEST]["svartid_s"] == str(round(answered_at - asked_at))
    assert by_call[ROLLCALL_REQUEST]["svar_via"] == via

    assert played.report.ended is not None
    heard = [
        (at, via)
        for i, stored, key_id, at, via in store.execute(
            "SELECT id, wire, key_id, accepted_at, via FROM messages WHERE kind = 3 AND local = 0"
            " AND sender = ? AND accepted_at BETWEEN ? AND ? ORDER BY accepted_at",
            (bytes.fromhex(played.care_id), played.report.started, played.report.ended + 1),
        )
        if decode_frame(wire(i, stored, key_id)).status is Status.EXERCISE
    ]
    # the status after the first inject and the two exercise roll-calls' answers; the answer to the real
    # roll-call is not the exercise's
    assert len(heard) == 3
    assert [(h.institution, h.at, h.link) for h in played.report.heard] == [
        (played.care_name, at, via) for at, via in heard
    ]
    inject = played.report.injects[0]
    (first_status,) = store.execute(
        "SELECT min(accepted_at) FROM messages WHERE kind = 3 AND local = 0 AND accepted_at >= ?",
        (inject.sent_at,),
    ).fetchone()
    inject_row, _ = rows(played.files.html.parent / "csv" / "indspil.csv")  # the message, the roll-call
    assert inject_row["tid_til_status_s"] == str(round(first_status - inject.sent_at))

    assert played.report.ended is not None
    recorded = console.execute(
        "SELECT time, link, peer, new, reason_code, reason_params FROM link_changes"
        " WHERE time BETWEEN ? AND ? ORDER BY time",
        (played.report.started, played.report.ended + 1),  # the journal's last second counts whole
    ).fetchall()
    assert [link for _, link, peer, new, *_ in recorded if peer is None and new == "down"] == [
        "memory",
        "backup",
    ]
    events = [e for e in rows(played.files.html.parent / "csv" / "forbindelser.csv") if e["simuleret"] == "0"]
    names = {None: "", played.care_id: played.care_name}
    shown = [(e["forbindelse"], e["modpart"], e["tilstand"], e["aarsag"]) for e in events]
    expected = [  # the reason worded in Danish from its code, not the transport's English text
        (link, names.get(peer, peer), new, link_reason(code, json.loads(params)))
        for _, link, peer, new, code, params in recorded
    ]
    # rows are only added: a peer's change still being written as the report was collected (its probe
    # failing after the unplug) may be missing from the report, never out of order or different
    assert shown == expected[: len(shown)]
    assert [link for link, peer, new, _ in shown if peer == "" and new == "down"] == ["memory", "backup"]
    assert all(code for *_, code, _ in recorded) and "detaljer i hubbens log" not in {e[3] for e in shown}
    (usage,) = [
        u for u in rows(played.files.html.parent / "csv" / "forbrug.csv") if u["forbindelse"] == "backup"
    ]
    marks = ",".join("?" * len(played.sent))
    attempts = store.execute(
        "SELECT sum(attempts) FROM deliveries JOIN messages ON row = message_row"
        f" WHERE link = 'backup' AND id IN ({marks})",
        [bytes.fromhex(i) for i in played.sent],
    ).fetchone()[0]
    assert int(usage["afsendelser"]) == attempts
    # airtime is metered: what the slow link put on air for the exercise's frames, as the hub kept it
    metered = json.loads((played.staff_dir / USAGE_FILE).read_text())[played.exercise_id]
    assert float(usage["sendetid_s"]) == pytest.approx(metered["backup"]["airtime_s"], abs=0.001)
    assert metered["backup"]["airtime_s"] > 0
    text = played.files.html.read_text(encoding="utf-8")
    assert "LoRa-sendetid brugt (målt)" in text and "beregnet" not in text

    findings = [r["fund"] for r in rows(played.files.html.parent / "csv" / "fund.csv")]
    assert "1 besked blev ikke bekræftet modtaget." in findings


def test_pdf_renders_every_page(played: Played, tmp_path: Path) -> None:
    info = subprocess.run(["pdfinfo", played.files.pdf], capture_output=True, text=True, check=True).stdout
    pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
    assert pages >= 3
    subprocess.run(["pdftoppm", "-r", "40", "-png", played.files.pdf, tmp_path / "side"], check=True)
    images = sorted(tmp_path.glob("side-*.png"))
    assert len(images) == pages and all(image.stat().st_size > 2000 for image in images)
    text = " ".join(
        subprocess.run(
            ["pdftotext", played.files.pdf, "-"], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    assert "Evaluering af øvelsen «Strømsvigt i distrikt Syd»" in text and played.care_name in text


def test_page_loads_in_chromium_with_its_charts(played: Played) -> None:
    errors: list[str] = []
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: errors.append(f"failed: {r.url}"))
            page.goto(played.files.html.as_uri())
            images = page.eval_on_selector_all(
                "img", "imgs => imgs.map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])"
            )
            title = page.locator("h1").inner_text()
        finally:
            browser.close()
    assert errors == []
    assert {src for src, _ in images} == {
        f"figurer/{n}.png" for n in ("rollcall", "status", "timeline", "receipts")
    }
    assert all(loaded for _, loaded in images)
    assert title == "Evaluering af øvelsen «Strømsvigt i distrikt Syd»"


def test_cli_writes_the_same_report_from_the_hub_folder(
    played: Played, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = tmp_path / "beredt.toml"
    config.write_text(f'[node]\nname = "Beredskabsstaben"\nrole = "staff"\ndata_dir = "{played.staff_dir}"\n')
    out = tmp_path / "evaluering"
    assert main(["exercise", "report", played.exercise_id, "--out", str(out), "-c", str(config)]) == 0
    assert (out / "rapport.pdf").stat().st_size > 10_000 and (out / "figurer" / "timeline.png").is_file()
    # printing skips the page's phone rule without a warning that would puzzle the coordinator
    assert not [r.getMessage() for r in caplog.records if r.name.startswith("weasyprint")]
    for table in ("beskeder.csv", "statusrunder.csv", "indspil.csv", "noter.csv"):
        assert rows(out / "csv" / table) == rows(played.files.html.parent / "csv" / table)
    assert main(["exercise", "report", "nosuchid", "--out", str(out), "-c", str(config)]) == 2


def test_cli_beside_a_held_store_says_whether_the_hub_or_another_program_holds_it(
    played: Played, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ``sqlite3`` shell on the store of a stopped hub: the command says that another program has it open,
    not to stop a hub that does not run; with ``beredt run``'s hold on the data folder, that the hub does."""
    config = tmp_path / "beredt.toml"
    config.write_text(f'[node]\nname = "Beredskabsstaben"\nrole = "staff"\ndata_dir = "{played.staff_dir}"\n')
    out = tmp_path / "evaluering"
    command = ["exercise", "report", played.exercise_id, "--out", str(out), "-c", str(config)]
    lock = played.staff_dir / ".lock"
    lock.touch()  # left behind by a hub that ran here and stopped
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(played.staff_dir / "store.db")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"open\n"
        assert main(command) == 1
        err = capsys.readouterr().err
        assert "åbent i et andet program" in err and "hubben kører ikke" in err, err
        assert "stop hubben" not in err and "Traceback" not in err
        with lock.open("rb") as held:
            fcntl.flock(held, fcntl.LOCK_EX)  # as 'beredt run' holds it while it runs
            assert main(command) == 1
        err = capsys.readouterr().err
        assert "låst af den kørende hub" in err and "stop hubben først" in err, err
        assert "/console/api/exercise-report/" in err
    finally:
        holder.communicate(b"", timeout=60)
        lock.unlink()
    assert not out.exists()


def test_cli_says_how_to_install_the_report_libraries(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # as if WeasyPrint were not installed
    assert main(["exercise", "report", "x", "--out", str(tmp_path)]) == 2
    assert "pip install 'beredt[report]'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_a_participant_whose_summary_never_came_is_named_not_invented(played: Played) -> None:
    """The care home was never told of the exercise, so it sent no account of its own links: the report
    says so and shows no figures for it."""
    assert played.report.reported == () and played.report.unreported == (played.care_name,)
    page = played.files.html.read_text(encoding="utf-8")
    assert f"{played.care_name}: ingen opgørelse modtaget" in page
    assert rows(played.files.html.parent / "csv" / "meldt_forbrug.csv") == []
