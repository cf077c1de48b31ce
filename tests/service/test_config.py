"""A broken config gives a message naming the file, the key and the fix, and exit code 2."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from hub.core.errors import ConfigError
from hub.service import config
from tests.cli.test_cli_danish import DANISH_TOO, ENGLISH, PEOPLE_WORDS
from tests.hubproc import REPO


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", *args], capture_output=True, text=True, cwd=REPO, timeout=60
    )


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "beredt.toml"
    path.write_text(text)
    return path


GOOD = '[node]\nname = "Aarhus"\nrole = "staff"\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[node\nname = 1", "ikke gyldig TOML i linje 1, kolonne 6; ret syntaksen dér"),
        (GOOD + "colour = 'red'\n", "node.colour: ukendt nøgle; fjern den eller brug en af de kendte nøgler"),
        (GOOD + "[api]\nlisten = 8470\n", "api.listen: forventede 'vært:port' (port 0..65535), fx"),
        (
            GOOD + "[api]\nlisten = 'localhost'\n",
            "forventede 'vært:port' (port 0..65535), fx '127.0.0.1:8470', ikke",
        ),
        (GOOD + "[api]\ntls_cert = 'c.pem'\n", "tls_cert og tls_key hører sammen"),
        (GOOD + "[api]\nhosts = ['http://x/']\n", "api.hosts: forventede en liste af værtsnavne"),
        ('[node]\nrole = "staff"\n', 'node.name: mangler; hubbens navn, fx name = "Plejecenter Solbakken"'),
        (GOOD.replace("staff", "mayor"), "node.role: forventede en af 'staff', "),
        (GOOD + "[routes]\ndefault = ['xyz']\n", "routes.default: forventede et node-id på 16 hex-cifre"),
        (GOOD + "[routes]\ndefault = ['0011223344556677']\n", "står ikke i [[peers]]; tilføj det"),
        (
            GOOD + "[[peers]]\nnode = '0011223344556677'\nlinks = { lora = '!1' }\n",
            "ingen forbindelse hedder 'lora'",
        ),
        (GOOD + "[timing]\nhop_ack_timeout = 0\n", "timing.hop_ack_timeout: forventede et tal > 0, ikke 0"),
        (
            GOOD + "[policy]\npaid_min_priority = 'vip'\n",
            "paid_min_priority: forventede en af 'routine', 'normal', 'urgent', 'life-safety', ikke 'vip'",
        ),
        (GOOD + "[links.x]\nlisten = '1:2'\n", "links.x.kind: mangler; forbindelsens slags"),
        (
            GOOD + "[links.net]\nkind = 'internet'\nlisten = '127.0.0.1:8471'\n"
            "[[peers]]\nnode = '0011223344556677'\nname = 'Relay Nord'\n"
            "links = { net = 'http://192.0.2.7:8471' }\n",
            "links.net.listen: lytter på 127.0.0.1, som kun denne maskine når, men naboen 'Relay Nord'"
            ' er på 192.0.2.7: lyt på "0.0.0.0:PORT"',
        ),
        (GOOD + "[surprise]\n", "surprise: ukendt nøgle"),
        (GOOD + "[console]\nrollcall_retention_days = 0\n", "console.rollcall_retention_days: forventede"),
        (GOOD + "[console]\nlogbook_live_days = -1\n", "console.logbook_live_days: forventede"),
        (GOOD + "[logbook]\nwitness_interval_minutes = 0\n", "logbook.witness_interval_minutes: forventede"),
        (GOOD + "[logbook]\nwitnesses = 'Aarhus'\n", "logbook.witnesses: forventede"),
        (GOOD + "[logbook]\nwitnesses = ['']\n", "logbook.witnesses: forventede"),
        (GOOD + "[logbook]\nwitness = ['Aarhus']\n", "logbook.witness: ukendt nøgle"),
        (GOOD + "[retention]\ndays = 0\n", "retention.days: forventede et heltal fra 1 til"),
        (GOOD + "[retention]\nstatsu = 30\n", "retention.statsu: ukendt nøgle; mente du 'status'?"),
        (GOOD + "[store]\nmax_messages = true\n", "store.max_messages: forventede et heltal >= 1, ikke True"),
        (
            GOOD + "[links.sat]\nkind = 'satellite'\ndevice = '/dev/null'\nannounce = 'always'\n",
            "links.sat.announce: forventede en af 'never', 'changes'",
        ),
        (
            GOOD + "[links.sat]\nkind = 'satellite'\ndevice = '/dev/null'\n"
            "announce = 'changes'\nannounce_hours = 0.5\n",
            "links.sat.announce_hours: forventede et tal fra 1 til 168",
        ),
        (
            GOOD + "[links.sat]\nkind = 'satellite'\ndevice = '/dev/null'\nannounce_hours = 6\n",
            'links.sat.announce_hours: bruges kun sammen med announce = "changes"',
        ),
        (
            GOOD + "[links.net]\nkind = 'internet'\nannounce = 'changes'\n",
            "links.net.announce: gælder kun en betalt forbindelse (satellite)",
        ),
    ],
)
def test_config_errors_name_file_key_and_fix(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    assert expected in str(caught.value)
    assert str(path) in str(caught.value)


def test_cli_exits_2_on_missing_file(tmp_path: Path) -> None:
    result = run_cli("run", "--config", str(tmp_path / "nope.toml"))
    assert result.returncode == 2
    assert "filen findes ikke" in result.stderr and "beredt init" in result.stderr


def test_cli_exits_2_on_bad_toml_unknown_key_and_wrong_type(tmp_path: Path) -> None:
    for text, expected in (
        ("[node", "ikke gyldig TOML ved filens slutning; ret syntaksen dér"),
        (GOOD + "x = 1\n", "node.x: ukendt nøgle"),
        (GOOD + "[store]\nmax_messages = 'many'\n", "forventede et heltal >= 1, ikke 'many'"),
    ):
        result = run_cli("run", "--config", str(write(tmp_path, text)))
        assert result.returncode == 2, result.stderr
        assert "fejl i opsætningen" in result.stderr and expected in result.stderr


def test_unknown_link_kind_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "data_dir = 'd'\n[links.radio]\nkind = 'pigeon'\n")
    result = run_cli("run", "--config", str(path))
    assert result.returncode == 2
    assert "links.radio.kind" in result.stderr and "ukendt forbindelsestype 'pigeon'" in result.stderr


def test_a_link_option_error_names_the_config_file(tmp_path: Path) -> None:
    path = write(
        tmp_path, GOOD + "data_dir = 'd'\n[links.net]\nkind = 'internet'\nlisten = '127.0.0.1:0'\nmtu = 9\n"
    )
    result = run_cli("run", "--config", str(path))
    assert result.returncode == 2
    assert f"{path}: links.net.mtu: forventede et heltal fra 64 til 65535, ikke 9" in result.stderr


def test_embedded_default_parses() -> None:
    loaded = config.load(None)
    assert loaded.api_port == 8470 and loaded.api_host == "127.0.0.1", "the default never faces a network"
    assert loaded.socket_path == loaded.data_dir / "api.sock"
    assert [link.kind for link in loaded.links] == ["internet"]


def test_help_on_every_command() -> None:
    for command in ("", "init", "run", "send", "inbox", "message", "links", "peers", "roster", "id", "token"):
        result = run_cli(*([command] if command else []), "--help")
        assert result.returncode == 0, command
        assert "brug: beredt" in result.stdout


def test_example_configs_are_valid() -> None:
    for path in sorted((REPO / "config").glob("*.toml")):
        loaded = config.load(path)
        assert loaded.links, path
        peers = {p.node_id for p in loaded.peers}
        for hops in (*loaded.routes.values(), loaded.default_route):
            assert set(hops) <= peers, f"{path}: a route names a node that is not a peer"


def test_loopback_internet_link_is_fine_with_peers_on_this_machine_or_a_public_url(tmp_path: Path) -> None:
    peer = "[[peers]]\nnode = '0011223344556677'\nlinks = { net = '%s' }\n"
    for link, address in (
        ("listen = '127.0.0.1:8471'", "http://127.0.0.1:8472"),  # hubs side by side, as in the tests
        ("listen = '127.0.0.1:8471'\npublic_url = 'https://hub.example.dk'", "https://relay.example.dk"),
        ("listen = '0.0.0.0:8471'", "https://relay.example.dk"),
    ):
        text = GOOD + f"[links.net]\nkind = 'internet'\n{link}\n" + peer % address
        assert config.load(write(tmp_path, text)).peers[0].links == {"net": address}


def test_console_rollcall_retention_is_read_in_days(tmp_path: Path) -> None:
    assert config.load(write(tmp_path, GOOD)).rollcall_retention_days == 90
    week = config.load(write(tmp_path, GOOD + "[console]\nrollcall_retention_days = 7\n"))
    assert week.rollcall_retention_days == 7


def test_console_log_book_age_is_read_in_days(tmp_path: Path) -> None:
    assert config.load(write(tmp_path, GOOD)).logbook_live_days == 7
    month = config.load(write(tmp_path, GOOD + "[console]\nlogbook_live_days = 30\n"))
    assert month.logbook_live_days == 30


def test_board_saves_and_log_book_syncs_are_read_in_minutes_within_bounds(tmp_path: Path) -> None:
    default = config.load(write(tmp_path, GOOD))
    assert (default.board_save_minutes, default.logbook_sync_minutes) == (30, 5)
    text = "[console]\nboard_save_minutes = 60\n[logbook]\nsync_minutes = 10\n"
    chosen = config.load(write(tmp_path, GOOD + text))
    assert (chosen.board_save_minutes, chosen.logbook_sync_minutes) == (60, 10)
    for bad, expected in (
        ("[console]\nboard_save_minutes = 0.5\n", "board_save_minutes"),
        ("[logbook]\nsync_minutes = 90\n", "sync_minutes"),
    ):
        with pytest.raises(ConfigError, match=expected):
            config.load(write(tmp_path, GOOD + bad))


def test_log_book_witnesses_and_their_interval(tmp_path: Path) -> None:
    default = config.load(write(tmp_path, GOOD))
    assert (default.witness_interval_minutes, default.witnesses) == (60, None)  # staff hubs + one more peer
    text = "[logbook]\nwitness_interval_minutes = 15\nwitnesses = ['Aarhus krisestab', 'Relay Nord']\n"
    chosen = config.load(write(tmp_path, GOOD + text))
    assert (chosen.witness_interval_minutes, chosen.witnesses) == (15, ("Aarhus krisestab", "Relay Nord"))


def test_peers_carry_groups_and_an_expected_contact_interval(tmp_path: Path) -> None:
    peer = "[[peers]]\nnode = '0011223344556677'\nlinks = { net = 'http://127.0.0.1:8472' }\n"
    base = GOOD + "[links.net]\nkind = 'internet'\nlisten = '127.0.0.1:8471'\n" + peer
    loaded = config.load(
        write(tmp_path, base + "groups = ['distrikt-syd', 'botilbud']\ncontact_minutes = 30\n")
    )
    assert loaded.peers[0].groups == ("distrikt-syd", "botilbud") and loaded.peers[0].contact_minutes == 30
    for bad, expected in (("groups = ['a:b']", "gruppenavne"), ("contact_minutes = 0.5", "contact_minutes")):
        with pytest.raises(ConfigError, match=expected):
            config.load(write(tmp_path, base + bad + "\n"))


def test_retention_per_kind_falls_back_to_days(tmp_path: Path) -> None:
    parsed = config.load(write(tmp_path, GOOD + "[retention]\ndays = 30\nstatus = 7\ncitizen_alarm = 365\n"))
    days = [parsed.retention.days_for(kind) for kind in ("status", "citizen_alarm", "text")]
    assert days == [7, 365, 30]
    assert config.load(write(tmp_path, GOOD)).retention.days_for("text") == 60


def test_the_hubs_name_is_its_own_not_its_last_peers(tmp_path: Path) -> None:
    peers = "[[peers]]\nnode = '0011223344556677'\nname = 'Relay Nord'\n"
    path = write(tmp_path, GOOD + f"data_dir = '{tmp_path / 'data'}'\n" + peers)
    assert config.load(path).name == "Aarhus"
    made = run_cli("init", "--config", str(path))  # the identity, and so the card, carries the name
    assert made.returncode == 0, made.stderr
    assert ":Aarhus:staff:" in made.stdout and "Relay Nord" not in made.stdout


def _english_in(said: str) -> set[str]:
    """English words in what ``beredt`` said to a person: its log lines (English, timestamped), the
    known keys it lists (the file's own vocabulary) and quoted examples left out."""
    lines = [line for line in said.splitlines() if not re.match(r"\d{4}-\d\d-\d\d ", line)]
    text = re.sub(r"'[^'\n]*'|\"[^\"\n]*\"|\S*/\S*", " ", "\n".join(lines).split("kendte nøgler:")[0])
    return set(re.findall(r"[a-z]{3,}", text.lower())) & (ENGLISH | PEOPLE_WORDS) - DANISH_TOO


@pytest.mark.parametrize(
    ("section", "key", "expected"),
    [
        ("[links.net]\nkind = 'internet'\nlisten = '127.0.0.1:0'\ntimeout = 'lang'\n", "links.net.timeout",
         "forventede sekunder > 0, ikke 'lang'"),
        ("[links.net]\nkind = 'internet'\nlisten = '127.0.0.1:0'\nlisne = 1\n", "links.net.lisne",
         "ukendt nøgle; mente du 'listen'?"),
        ("[links.radio]\nkind = 'lora'\n", "links.radio.device", 'sæt præcis én af device = "/dev/ttyUSB0"'),
        ("[links.radio]\nkind = 'lora'\ndevice = '/dev/null'\npreset = 'FAST'\n", "links.radio.preset",
         "ukendt modem-preset 'FAST'; forventede en af"),
        ("[links.mq]\nkind = 'mqtt'\nbrokers = ['http://x:1']\n", "links.mq.brokers",
         "forventede 'mqtt://vært:port' eller 'mqtts://vært:port', ikke 'http://x:1'"),
        ("[links.tetra]\nkind = 'sine'\ndevice = '/dev/null'\nbaud = 7\n", "links.tetra.baud",
         'forventede "auto" eller en af'),
        ("[links.tetra]\nkind = 'sine'\n", "links.tetra.device", "mangler; radioens serielle enhed"),
        ("[links.sat]\nkind = 'satellite'\n", "links.sat", "sæt præcis én af 'device'"),
        ("[links.radio]\nkind = 'pigeon'\n", "links.radio.kind", "ukendt forbindelsestype 'pigeon'"),
        ("[power]\nmains_pin = true\n", "power.mains_pin", "forventede et BCM-bennummer"),
        ("[power]\nbuttons = { panic = 5 }\n", "power.buttons.panic", "ukendt knap; forventede en af"),
        ("[power]\nups = 'apc'\n", "power.ups", "UPS'en 'apc' understøttes ikke"),
        ("[power]\nups_cells = 'to'\n", "power.ups_cells", "forventede et heltal >= 1, ikke 'to'"),
        ("[citizens]\nalarm_hours = 100\n", "citizens.alarm_hours",
         "forventede et tal fra 0 til 72, ikke 100"),
        ("[citizens]\nteams = { syd = ['xyz'] }\n", "citizens.teams.syd",
         "forventede en liste af node-id'er på 16 hex-cifre"),
        ("[citizens]\nteams = 5\n", "citizens.teams", "forventede en tabel med distrikt"),
        ("[citizens]\ncolour = 'red'\n", "citizens.colour", "ukendt nøgle"),
    ],
)  # fmt: skip
def test_links_power_and_citizens_errors_are_danish(
    tmp_path: Path, section: str, key: str, expected: str
) -> None:
    path = write(tmp_path, GOOD + "data_dir = 'd'\n" + section)
    result = run_cli("run", "--config", str(path))
    assert result.returncode == 2, result.stderr
    assert f"fejl i opsætningen: {path}: {key}: " in result.stderr, result.stderr
    assert expected in result.stderr, result.stderr
    assert _english_in(result.stderr) == set(), result.stderr


def test_a_key_file_others_may_read_or_of_the_wrong_size_is_refused_in_danish(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "data_dir = 'd'\n")
    key = tmp_path / "d" / "citizens.key"  # the citizen register's key, checked as every key file is
    key.parent.mkdir(mode=0o700)
    key.write_bytes(bytes(32))
    key.chmod(0o644)
    said = run_cli("citizens", "list", "-c", str(path))
    assert said.returncode == 2, said.stderr
    assert (
        f"{key}: registrets nøgle kan læses af andre (rettigheder 644); kør 'chmod 600 {key}'" in said.stderr
    )
    key.chmod(0o600)
    key.write_bytes(bytes(5))
    said = run_cli("citizens", "list", "-c", str(path))
    assert said.returncode == 2, said.stderr
    assert f"{key}: registrets nøgle fylder 5 bytes, ikke 32; hent den fra sikkerhedskopien" in said.stderr
    assert _english_in(said.stderr) == set(), said.stderr


def test_the_nodes_own_key_file_missing_exposed_or_damaged_is_refused_in_danish(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "data_dir = 'd'\n")
    key = tmp_path / "d" / "identity.key"
    said = run_cli("id", "-c", str(path))
    assert said.returncode == 2, said.stderr
    assert f"{key}: noden har ingen nøgler endnu; kør 'beredt init' først" in said.stderr
    assert run_cli("init", "-c", str(path)).returncode == 0
    key.chmod(0o644)
    said = run_cli("id", "-c", str(path))
    assert said.returncode == 2, said.stderr
    assert (
        f"{key}: nodens nøglefil kan læses af andre (rettigheder 644); kør 'chmod 600 {key}'" in said.stderr
    )
    assert _english_in(said.stderr) == set(), said.stderr
    key.chmod(0o600)
    key.write_text('ed25519 = "kort"\n')
    said = run_cli("id", "-c", str(path))
    assert said.returncode == 2, said.stderr
    assert f"{key}: nodens nøglefil er beskadiget; hent den fra sikkerhedskopien" in said.stderr
    assert _english_in(said.stderr) == set(), said.stderr
