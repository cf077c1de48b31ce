"""The command line builds only the command group it runs: the same commands, the same help, and a
``beredt init`` or ``beredt roster add`` that does not load the engine, the console or the exercise report
(every hub start and every such command is a new process)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from hub.cli.main import COMMAND_GROUPS, build_parser, command_word
from tests.cli.test_cli_danish import _parsers
from tests.hubproc import REPO


def _commands(parser: argparse.ArgumentParser) -> list[str]:
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return list(sub.choices)


def _helps(parser: argparse.ArgumentParser, command: str) -> dict[str, str]:
    """The help of ``command`` and of every sub-command under it, by program name."""
    prefix = f"{parser.prog} {command}"
    return {
        prog: each.format_help()
        for prog, each in _parsers(parser)
        if prog == prefix or prog.startswith(prefix + " ")
    }


BUILT_IN = _commands(build_parser("init"))
EVERY = _commands(build_parser())


def test_each_group_adds_exactly_the_commands_the_table_names() -> None:
    assert "init" in BUILT_IN and "run" in BUILT_IN and "send" in BUILT_IN
    for names, _ in COMMAND_GROUPS:
        assert _commands(build_parser(names[0])) == BUILT_IN + list(names)
    assert BUILT_IN + [name for names, _ in COMMAND_GROUPS for name in names] == EVERY


@pytest.mark.parametrize("command", EVERY)
def test_a_command_built_alone_has_the_same_help_as_in_the_full_parser(command: str) -> None:
    alone = _helps(build_parser(command), command)
    assert alone and alone == _helps(build_parser(), command)


def test_help_and_a_mistyped_command_list_every_command() -> None:
    assert _commands(build_parser(None)) == EVERY
    assert _commands(build_parser("rostr")) == EVERY


@pytest.mark.parametrize(
    ("argv", "word"),
    [
        (["roster", "add", "KORT"], "roster"),
        (["-c", "x.toml", "inbox"], "inbox"),
        (["--config", "roster", "run"], "run"),  # -c's value is not the command
        (["--config=x.toml", "enrol", "approve"], "enrol"),
        (["--version"], None),
        ([], None),
    ],
)
def test_the_command_word_skips_options_and_the_config_value(argv: list[str], word: str | None) -> None:
    assert command_word(argv) == word


HEAVY = ("hub.relay.hub", "hub.console.service", "hub.exercise.report", "hub.cli.demo", "aiohttp")
LOADED = """
import sys
from hub.cli.main import main
code = main(sys.argv[1:])
print(' '.join(m for m in sys.modules if m.startswith({heavy!r})), file=sys.stderr)
raise SystemExit(code)
"""


def test_init_and_roster_commands_leave_the_engine_console_and_report_unloaded(tmp_path: Path) -> None:
    config = str(tmp_path / "hub.toml")
    for argv in (["init", "--config", config], ["roster", "list", "--config", config]):
        result = subprocess.run(
            [sys.executable, "-c", LOADED.format(heavy=HEAVY), *argv],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
        )
        assert result.returncode == 0, result.stderr
        assert "node-id:" in result.stdout or argv[0] == "roster"
        assert result.stderr.splitlines()[-1].split() == [], (argv, result.stderr)
