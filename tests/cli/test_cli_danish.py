"""The ``beredt`` command speaks Danish to people: every sub-command's ``--help`` and the common error
paths, run as real processes, hold no English sentence.

The check is a word list, like the console's: words of the English console that the Danish one never
uses, plus English words argparse and help texts are made of. Command names, option names, metavars and
choices are the command's vocabulary (``beredt send status --priority urgent``) and are left out, as are
quoted examples.
"""

from __future__ import annotations

import argparse
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.cli.main import build_parser
from hub.core.kinds import SCHEMAS
from hub.core.kinds.fields import Schema
from tests.console.test_console_truth import _english_words
from tests.hubproc import BEREDT, REPO

ENGLISH = {
    "the", "with", "from", "this", "that", "which", "when", "what", "every", "only", "without", "must",
    "should", "will", "your", "into", "than", "then", "there", "their", "does", "default", "usage",
    "options", "positional", "arguments", "show", "exit", "error", "required", "invalid", "choose", "print",
    "messages", "node's", "hub's", "its", "are", "not", "how", "and", "run", "runs", "file", "folder",
    "write", "writes", "read", "reads", "each", "one", "two", "new", "old", "add", "remove", "list", "key",
    "keys", "card", "cards", "name", "names", "after", "before", "until", "where", "here", "also", "may",
    "can", "cannot", "instead", "example", "examples", "given", "give", "used", "using", "uses",
}  # fmt: skip
DANISH_TOO = {"have", "sent", "total"}  # English words that are Danish words too


def _parsers(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield parser.prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen: set[int] = set()
            for child in action.choices.values():
                if id(child) not in seen:
                    seen.add(id(child))
                    yield from _parsers(child)


def _vocabulary(parser: argparse.ArgumentParser) -> set[str]:
    """The words a person types: command names, options, metavars, choices, field names."""
    words: set[str] = set()
    for _, each in _parsers(parser):
        words.update(each.prog.split())
        for action in each._actions:
            words.update(action.option_strings)
            words.add(str(action.dest))
            if isinstance(action.metavar, str):
                words.add(action.metavar)
            if action.choices is not None:
                words.update(str(c) for c in action.choices)
    schemas = list(SCHEMAS.values())
    while schemas:  # the fields of 'beredt send KIND' (nested ones too) and the values they take
        for entry in schemas.pop().entries:
            words.add(entry.name)
            words.update(getattr(entry.type, "names", ()))
            if isinstance(entry.type, Schema):
                schemas.append(entry.type)
    return {w.lower().lstrip("-") for w in words} | {p.lower() for w in words for p in re.split(r"[-_]", w)}


def _leaks(text: str, vocabulary: set[str]) -> list[str]:
    text = re.sub(r"'[^'\n]*'|\"[^\"\n]*\"|\{[^}\n]*\}|\[[^\]\n]*\]", " ", text)  # examples, choices, usage
    text = re.sub(r"(?m)^\s+beredt .*$", " ", text)  # example command lines
    text = re.sub(r"\S*/\S*", " ", text)  # paths
    words = {w.lower() for w in re.findall(r"[A-Za-z][a-z']{2,}", text)}
    english = ENGLISH | {w for w in _english_words() if len(w) > 3} - DANISH_TOO
    return sorted((words & english) - vocabulary)


def test_every_help_is_danish() -> None:
    parser = build_parser()
    vocabulary = _vocabulary(parser)
    problems = [f"{prog}: {leaked}" for prog, each in _parsers(parser)
                if (leaked := _leaks(each.format_help(), vocabulary))]  # fmt: skip
    assert problems == [], "\n".join(problems)
    # -c comes from a shared parent: it sits in the same "tilvalg" section as the rest, not in a second one
    twice = [prog for prog, each in _parsers(parser) if each.format_help().count("\ntilvalg:") > 1]
    assert twice == [], twice


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["send", "status", "--help"],
        ["message"],
        ["rollcall", "bogus"],
        ["inbox", "--limit", "many"],
        ["nosuchcommand"],
        ["send", "status", "0123456789abcdef", "facility=Fine", "-c", "{config}"],
        ["inbox", "-c", "{config}"],
        ["inbox", "-c", "{missing}"],
    ],
)
def test_common_error_paths_answer_in_danish(args: list[str], tmp_path: Path) -> None:
    config = tmp_path / "beredt.toml"
    subprocess.run([*BEREDT, "init", "-c", str(config), "--name", "Test"], check=True, cwd=REPO,
                   capture_output=True, timeout=60)  # fmt: skip
    argv = [a.format(config=config, missing=tmp_path / "missing.toml") for a in args]
    done = subprocess.run([*BEREDT, *argv], capture_output=True, text=True, cwd=REPO, timeout=60)
    said = done.stdout + done.stderr
    assert said.strip(), argv
    leaked = _leaks(said, _vocabulary(build_parser()))
    assert leaked == [], f"{argv}: {leaked}\n{said}"


PEOPLE_WORDS = {"wrote", "created", "identity", "exists", "role", "user", "groups", "send", "expected", "got",
                "unknown", "mean", "valid", "line", "column", "table", "integer"}  # fmt: skip
"""Words of labels, table headers and config errors that the help texts never needed."""


def _said(*args: str, stdin: str | None = None) -> str:
    """What the command says to people: its log lines (English, timestamped) and the card, id and path
    tokens (made of random letters) left out."""
    done = subprocess.run([*BEREDT, *args], capture_output=True, text=True, cwd=REPO, timeout=60, input=stdin)
    lines = [
        line for line in (done.stdout + done.stderr).splitlines() if not re.match(r"\d{4}-\d\d-\d\d ", line)
    ]
    return "\n".join(
        " ".join(w for w in line.split(" ") if not re.search(r"[:/]\S|\d{3}", w)) for line in lines
    )


def test_labels_tables_and_config_errors_are_danish(tmp_path: Path) -> None:
    config, other = tmp_path / "beredt.toml", tmp_path / "anden" / "beredt.toml"
    made = _said("init", "-c", str(config), "--name", "Test")
    assert "node-id:" in made and "kort:" in made, made
    _said("init", "-c", str(other), "--name", "Anden")
    card = _said("id", "--card-only", "-c", str(other)).strip()
    _said("roster", "add", card, "-c", str(config))
    _said("user", "add", "hansen", "--role", "coordinator", "--password-stdin", "-c", str(config),
          stdin="korrekt-hest-batteri\n")  # fmt: skip
    broken = tmp_path / "broken.toml"
    said = [made, _said("roster", "list", "-c", str(config)), _said("user", "list", "-c", str(config))]
    assert "ROLLE" in said[1] and "MÅ SENDE" in said[1] and "BRUGER" in said[2], said
    for text in ("[node\nname = 1", '[node]\nname = "T"\nrol = "staff"\n', '[timing]\nretry_cap = "x"\n'):
        broken.write_text(text)
        said.append(_said("run", "-c", str(broken)))
        assert "fejl i opsætningen" in said[-1], said[-1]  # the file is named: tests/service/test_config.py
    vocabulary = _vocabulary(build_parser()) - PEOPLE_WORDS
    for text in (t.split("kendte nøgler:")[0] for t in said):  # the known keys are the file's vocabulary
        unquoted = re.sub(r"'[^'\n]*'|\"[^\"\n]*\"", " ", text).lower()  # examples and suggested keys
        english = set(re.findall(r"[a-z]{3,}", unquoted)) & (ENGLISH | PEOPLE_WORDS) - DANISH_TOO
        assert _leaks(text, vocabulary) == [] and english - vocabulary == set(), text


def test_the_exercise_commands_say_indspil_never_inject() -> None:
    """The scenario's key is ``injects``, but people read the Danish word: one word in every help text."""
    (exercise,) = [p for prog, p in _parsers(build_parser()) if prog.endswith(" exercise")]
    helps = {prog: each.format_help() for prog, each in _parsers(exercise)}
    helps[exercise.prog] += "".join(  # each sub-command's line in 'beredt exercise -h'
        str(a.help) for a in exercise._actions if isinstance(a, argparse._SubParsersAction)
        for a in a._choices_actions
    )  # fmt: skip
    assert not [prog for prog, text in helps.items() if re.search(r"\binjects?\b", text, re.IGNORECASE)]
    assert "indspillene tilbage" in helps[exercise.prog] and "kommende indspil" in helps[exercise.prog]
