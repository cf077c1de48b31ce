"""A care home's log book rewritten on disk while its hub is stopped: ``beredt log verify`` on the care
home, holding the book against the heads the staff hub witnessed (fetched from the staff hub's API),
names the first entry that differs for each of the four rewrites. Real ``beredt run`` processes; one
setup, then each rewrite is made on a fresh copy of the stopped hub's database."""

from __future__ import annotations

import hmac
import re
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hub.console.logbook import GENESIS, canonical_bytes, chain_hash
from hub.console.logbook_chain import KEY_FILE, PLAIN_UNTIL_FILE, SENT_FILE
from hub.core.at_rest import KEY_FOLDER
from tests.hubproc import HubError, HubProcess, staff_and_care_home

pytestmark = pytest.mark.timeout(300)  # the first test carries the two hubs' start and the witnessing

TEXTS = ("Beboer A flyttet til stuen", "Vi evakuerer IKKE", "Generator startet", "Diesel bestilt")


@dataclass
class Witnessed:
    staff: HubProcess
    home: HubProcess
    token_file: Path
    pristine: Path  # the care home's console.db as it was when the hub stopped
    heads: list[tuple[int, str]]  # what the staff hub witnessed of it

    @property
    def db(self) -> Path:
        return self.home.config_path.parent / "data" / "console.db"

    def verify(self) -> str:
        """``beredt log verify`` on the stopped care home, against the staff hub as witness."""
        return self.home.cli(
            "log", "verify", "--witness", self.staff.api_url, "--token-file", str(self.token_file)
        )


@pytest.fixture(scope="module")
def witnessed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Witnessed]:
    folder = tmp_path_factory.mktemp("forgery")
    staff, home = staff_and_care_home(folder)
    home.config["logbook"] = {"witness_interval_minutes": 0.02, "witnesses": [staff.name]}
    home.write_config()
    token = staff.cli("token", "add", "revisor", "--scope", "read").splitlines()[0].strip()
    token_file = folder / "revisor.token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    staff.start()
    home.start()
    try:
        for text in TEXTS:
            staff.send(home.node_id, "text", text)

        def heads() -> list[tuple[int, str]]:
            found = staff.get(f"/v1/logbook/witnessed/{home.node_id}")["heads"]
            assert {h["witness"] for h in found} <= {staff.node_id}
            return [(h["seq"], h["hash"]) for h in found]

        # the care home logs each text it receives; its head then goes to the staff hub on its own tick
        staff.wait_for(
            "a witnessed head past the texts", lambda: any(s >= len(TEXTS) for s, _ in heads()), timeout=180
        )
        home.stop()
        db = home.config_path.parent / "data" / "console.db"
        pristine = folder / "pristine.db"
        with sqlite3.connect(db) as source, sqlite3.connect(pristine) as copy:
            source.backup(copy)
        yield Witnessed(staff, home, token_file, pristine, heads())
    finally:
        home.kill()
        staff.kill()


def forge(w: Witnessed, *statements: str, rehash: Callable[[bytes, bytes], bytes] | None = None) -> None:
    """What someone with the stopped hub's database file and the sqlite3 tool does, on a fresh copy of it:
    drop the append-only triggers, run ``statements``, and with ``rehash`` recompute every entry's hash
    from entry 2 (the one changed) on."""
    for stale in (w.db, w.db.with_name("console.db-wal"), w.db.with_name("console.db-shm")):
        stale.unlink(missing_ok=True)
    shutil.copyfile(w.pristine, w.db)
    with sqlite3.connect(w.db) as db:
        db.execute("DROP TRIGGER logbook_000000001_no_update")
        db.execute("DROP TRIGGER logbook_000000001_no_delete")
        for statement in statements:
            db.execute(statement)
        if rehash is not None:
            (previous,) = db.execute("SELECT hash FROM logbook WHERE seq = 1").fetchone()
            rows = db.execute(
                "SELECT seq, time, author, node, type, text FROM logbook WHERE seq >= 2 ORDER BY seq"
            ).fetchall()
            for row in rows:
                previous = rehash(bytes(previous), canonical_bytes(*row))
                db.execute("UPDATE logbook_000000001 SET hash = ? WHERE seq = ?", (previous, row[0]))


def broken_at(w: Witnessed) -> tuple[int, str]:
    """The entry ``beredt log verify`` names (exit code 3), and how it describes it."""
    with pytest.raises(HubError, match=r"failed \(3\)") as caught:
        w.verify()
    found = re.search(r"BRUDT ved indførsel (\d+)(, skrevet [-\d: ]+|, som mangler)", str(caught.value))
    assert found is not None, str(caught.value)
    return int(found[1]), found[2]


EDIT = "UPDATE logbook_000000001 SET text = 'Vi evakuerer alle beboere nu' WHERE seq = 2"


def test_the_true_book_matches_every_witnessed_head(witnessed: Witnessed) -> None:
    forge(witnessed)  # a fresh copy, nothing changed
    out = witnessed.verify()
    assert out.startswith("intakt:"), out
    # each head names the witness whose book holds it: the staff hub's node id
    assert re.search(
        rf"holdt op mod \d+ hoveder: [1-9]\d* fra vidner \([1-9]\d* hos {witnessed.staff.node_id}\)", out
    ), out


@pytest.mark.parametrize(
    ("statements", "rehash", "named"),
    [
        pytest.param([EDIT], None, (2, ", skrevet"), id="edit"),
        pytest.param(["DELETE FROM logbook_000000001 WHERE seq = 2",
                      "UPDATE logbook_000000001 SET seq = seq - 1 WHERE seq > 2"],
                     None, (2, ", skrevet"), id="delete-and-renumber"),
        # a shorter chain is still a chain: only the heads held elsewhere tell
        pytest.param(["DELETE FROM logbook_000000001 WHERE seq >= 3"], None, (3, ", som mangler"),
                     id="cut-the-tail"),
        # the plain SHA-256 links a forger without the key can compute
        pytest.param([EDIT], chain_hash, (2, ", skrevet"), id="drop-triggers-and-recompute"),
    ],
)  # fmt: skip
def test_each_rewrite_is_named_at_its_first_differing_entry(
    witnessed: Witnessed,
    statements: list[str],
    rehash: Callable[[bytes, bytes], bytes] | None,
    named: tuple[int, str],
) -> None:
    assert max(seq for seq, _ in witnessed.heads) >= 3  # the witnessed heads cover every entry changed
    forge(witnessed, *statements, rehash=rehash)
    seq, how = broken_at(witnessed)
    assert (seq, how[: len(named[1])]) == named


def test_a_forger_with_the_key_is_caught_at_the_first_witnessed_head_after_the_change(
    witnessed: Witnessed,
) -> None:
    """The whole SD card, chain key included: the book is consistent on its own, the witness's heads tell."""
    key = (witnessed.db.parent / KEY_FOLDER / KEY_FILE).read_bytes()
    forge(
        witnessed, EDIT, rehash=lambda previous, canonical: hmac.digest(key, previous + canonical, "sha256")
    )
    seq, _ = broken_at(witnessed)
    assert 2 <= seq <= min(s for s, _ in witnessed.heads if s >= 2)


def test_a_book_restored_without_its_chain_key_is_not_given_a_new_one(witnessed: Witnessed) -> None:
    """console.db back from a backup, the key folder not: neither ``beredt log verify`` nor the hub makes a
    new key (every keyed entry would then look forged); both name the key file to restore, and once it is
    back the book verifies against its witness again."""
    forge(witnessed)  # the true book
    keys = witnessed.db.parent / KEY_FOLDER
    key, boundary = keys / KEY_FILE, keys / PLAIN_UNTIL_FILE
    recorded = boundary.read_text()
    aside = witnessed.db.parent.parent / "chain-key-backup"
    shutil.move(key, aside)
    try:
        with pytest.raises(HubError, match=r"kædenøgle .*logbook-chain\.key mangler.*sikkerhedskopien"):
            witnessed.verify()
        witnessed.home.start()
        try:
            # the hub runs and relays; only its console, which needs the book, is off and says why
            witnessed.home.wait_for(
                "the console's reason on /healthz",
                lambda: "kædenøgle" in str(witnessed.home.get("/healthz")["console"]),
                timeout=60,
            )
        finally:
            witnessed.home.stop()
        assert not key.exists()
        assert boundary.read_text() == recorded  # where the keyed entries start is still on record
    finally:
        shutil.move(aside, key)
    assert witnessed.verify().startswith("intakt:")


def test_a_forger_who_deletes_the_key_and_its_boundary_is_caught_by_the_witness(witnessed: Witnessed) -> None:
    """With the key folder writable but the key unknown, a forger can delete the key, the record of where
    the keyed entries start and the heads sent, and recompute plain SHA-256 links: the book alone then
    looks like one begun before the key existed. The heads the witness holds do not match it."""
    keys = witnessed.db.parent / KEY_FOLDER
    aside = witnessed.db.parent.parent / "key-folder-backup"
    shutil.copytree(keys, aside)
    try:
        for name in (KEY_FILE, PLAIN_UNTIL_FILE, SENT_FILE):
            (keys / name).unlink(missing_ok=True)
        forge(witnessed, EDIT)
        with sqlite3.connect(witnessed.db) as db:  # every link plain, from the first entry on
            previous = GENESIS
            rows = db.execute(
                "SELECT seq, time, author, node, type, text FROM logbook ORDER BY seq"
            ).fetchall()
            for row in rows:
                previous = chain_hash(previous, canonical_bytes(*row))
                db.execute("UPDATE logbook_000000001 SET hash = ? WHERE seq = ?", (previous, row[0]))
        alone = witnessed.home.cli("log", "verify")
        # the book alone cannot tell: it verifies as one chained without a key from its first entry
        assert alone.startswith(f"poster 1-{len(rows)} er skrevet før kædenøglen") and "\nintakt:" in alone
        seq, _ = broken_at(witnessed)
        assert seq <= min(s for s, _ in witnessed.heads)
    finally:
        shutil.rmtree(keys)
        shutil.copytree(aside, keys)
        shutil.rmtree(aside)
    forge(witnessed)
    assert witnessed.verify().startswith("intakt:")
