"""The CLI as a new user meets it: one place for -c, help that lists what a kind needs, errors that say
what is wrong in the user's terms, no tracebacks for a closed pipe or a missing terminal, a peer added
from its card alone, and private files."""

from __future__ import annotations

import stat
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.hubproc import BEREDT, REPO


def beredt(*args: str, stdin: str | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BEREDT, *args], input=stdin, capture_output=True, text=True, cwd=cwd, timeout=60)


@pytest.fixture
def two_configs(tmp_path: Path) -> tuple[Path, Path]:
    kommune, relay = tmp_path / "kommune.toml", tmp_path / "relay.toml"
    assert beredt("init", "-c", str(kommune), "--name", "Aarhus krisestab").returncode == 0
    made = beredt("init", "-c", str(relay), "--name", "Relay Nord", "--role", "relay", "--api-port", "0",
                  "--link-port", "0")  # fmt: skip
    assert made.returncode == 0, made.stderr
    return kommune, relay


def test_version_and_help_per_kind() -> None:
    version = beredt("--version")
    assert version.returncode == 0 and version.stdout.startswith("beredt ")
    for name in ("resource-request", "resource_request"):  # a dash or an underscore, both work
        help_text = beredt("send", name, "--help")
        assert help_text.returncode == 0, help_text.stderr
        assert "* resource       en af other, diesel, oxygen, water, staff, transport" in help_text.stdout
        assert "* quantity" in help_text.stdout and "  unit" in help_text.stdout
    assert "en af Initial, Update, Final" in beredt("send", "sitrep", "--help").stdout


def test_config_in_the_same_place_for_every_command(two_configs: tuple[Path, Path]) -> None:
    kommune, _ = two_configs
    before = beredt("-c", str(kommune), "roster", "list")
    after = beredt("roster", "list", "-c", str(kommune))
    middle = beredt("roster", "-c", str(kommune), "list")
    assert before.returncode == after.returncode == middle.returncode == 0, before.stderr + after.stderr
    assert before.stdout == after.stdout == middle.stdout and "Aarhus krisestab" in before.stdout
    added = beredt("user", "add", "hansen", "--role", "viewer", "--password-stdin", "-c", str(kommune),
                   stdin="korrekt-hest-batteri\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "hansen" in beredt("user", "list", "-c", str(kommune)).stdout


def test_config_between_the_fields_of_a_message(two_configs: tuple[Path, Path]) -> None:
    """'-c FILE' between a message's fields: the fields after it are still fields, not 'unknown'."""
    kommune, _ = two_configs
    after = beredt("send", "status", "0123456789abcdef", "facility", "-c", str(kommune))
    between = beredt("send", "status", "0123456789abcdef", "-c", str(kommune), "facility")
    assert after.returncode == between.returncode == 2
    assert "forventede felt=værdi" in between.stderr and "ukendte argumenter" not in between.stderr
    unknown = beredt("send", "text", "0123456789abcdef", "-c", str(kommune), "hej", "--bogus")
    assert unknown.returncode == 2 and "ukendte argumenter: --bogus" in unknown.stderr


def test_usage_mistakes_are_not_configuration_errors(two_configs: tuple[Path, Path]) -> None:
    kommune, relay = two_configs
    wrong = beredt("send", "status", "0123456789abcdef", "facility", "-c", str(kommune))
    assert wrong.returncode == 2
    assert "fejl i opsætningen" not in wrong.stderr and "forventede felt=værdi" in wrong.stderr
    card = beredt("roster", "add", "not-a-card", "-c", str(kommune))
    assert card.returncode == 2 and "fejl i opsætningen" not in card.stderr and "KORT" in card.stderr
    # 'beredt id' prints the node id, then the card (whose name may hold spaces)
    relay_card = beredt("id", "-c", str(relay)).stdout.split(maxsplit=1)[1].strip()
    kinds = beredt("roster", "add", relay_card, "--kinds", "status,Vejr-Melding", "-c", str(kommune))
    assert kinds.returncode == 2 and "--kinds: ukendt slags 'Vejr-Melding'; kendte: text" in kinds.stderr
    broken = kommune.with_name("broken.toml")
    broken.write_text("[node]\nname = 3\n")
    assert "fejl i opsætningen" in beredt("roster", "list", "-c", str(broken)).stderr


def test_no_traceback_for_a_closed_pipe_or_a_missing_terminal(two_configs: tuple[Path, Path]) -> None:
    kommune, _ = two_configs
    reader = subprocess.Popen([*BEREDT, "roster", "export", "-c", str(kommune)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, cwd=REPO)  # fmt: skip
    assert reader.stdout is not None and reader.stderr is not None
    reader.stdout.close()  # like '| head' that has read enough
    assert reader.wait(60) == 0
    assert b"Traceback" not in reader.stderr.read()
    reader.stderr.close()
    no_tty = beredt("user", "add", "ole", "--role", "viewer", "-c", str(kommune), stdin="")
    assert no_tty.returncode == 2 and "Traceback" not in no_tty.stderr
    assert "ingen terminal at spørge på; brug --password-stdin" in no_tty.stderr


def test_peer_added_from_its_card_writes_roster_and_peer(two_configs: tuple[Path, Path]) -> None:
    kommune, relay = two_configs
    card = beredt("id", "--card-only", "-c", str(relay)).stdout.strip()
    node = card and beredt("id", "-c", str(relay)).stdout.split()[0]
    added = beredt("peer", "add", card, "--via", "internet=http://127.0.0.1:9", "--default-route",
                   "-c", str(kommune))  # fmt: skip
    assert added.returncode == 0, added.stderr
    written = tomllib.loads(kommune.read_text())
    assert written["peers"] == [
        {"node": node, "name": "Relay Nord", "links": {"internet": "http://127.0.0.1:9"}}
    ]
    assert written["routes"] == {"default": [node]}
    assert "Relay Nord" in beredt("roster", "list", "-c", str(kommune)).stdout
    again = beredt("peer", "add", card, "--via", "internet=http://127.0.0.1:9", "-c", str(kommune))
    assert again.returncode == 2 and "allerede nabo" in again.stderr
    unknown = beredt("peer", "add", card, "--via", "lora=!1234", "-c", str(relay))
    assert unknown.returncode == 2 and "ingen forbindelse ved navn 'lora'" in unknown.stderr


def test_institution_user_on_its_own_care_home_hub_needs_no_node_id(tmp_path: Path) -> None:
    home = tmp_path / "home.toml"
    made = beredt("init", "-c", str(home), "--name", "Plejehjemmet Solgaarden", "--role", "care-home")
    node = next(line.split()[-1] for line in made.stdout.splitlines() if line.startswith("node-id:"))
    added = beredt("user", "add", "nattevagt", "--role", "institution", "--password-stdin", "-c", str(home),
                   stdin="korrekt-hest-batteri\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert node in beredt("user", "list", "-c", str(home)).stdout
    data = tmp_path / "home-data"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for name in ("identity.key", "console.db"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
