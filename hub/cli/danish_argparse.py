"""argparse in Danish: the usage line, the section titles, ``-h`` and the errors argparse words itself.

argparse has no Danish translation of its own (Python ships none), so the parser class sets its titles
and help option in Danish, and ``error`` words the messages argparse raises (a missing argument, an
unknown choice, a value that is not a number) before exiting with status 2 like argparse does.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any, NoReturn

_ERRORS = [
    (re.compile(r"the following arguments are required: (.*)"), "disse argumenter mangler: {0}"),
    (re.compile(r"unrecognized arguments: (.*)"), "ukendte argumenter: {0}"),
    (
        re.compile(r"argument (.*?): invalid choice: (.*?) \(choose from (.*)\)"),
        "{0}: ugyldigt valg {1} (vælg blandt {2})",
    ),
    (re.compile(r"argument (.*?): invalid (\w+) value: (.*)"), "{0}: ugyldig værdi {2} (forventede {1})"),
    (re.compile(r"argument (.*?): expected one argument"), "{0}: forventede én værdi"),
    (re.compile(r"argument (.*?): expected at least one argument"), "{0}: forventede mindst én værdi"),
    (re.compile(r"argument (.*?): not allowed with argument (.*)"), "{0}: kan ikke bruges sammen med {1}"),
    (re.compile(r"argument (.*?): ignored explicit argument (.*)"), "{0}: tager ingen værdi, fik {1}"),
    (re.compile(r"ambiguous option: (.*?) could match (.*)"), "tvetydigt tilvalg {0}: kan være {1}"),
    (re.compile(r"one of the arguments (.*) is required"), "et af argumenterne {0} skal gives"),
    (re.compile(r"argument (.*?): (.*)"), "{0}: {1}"),
]


def danish_error(message: str) -> str:
    """argparse's own English error in Danish (a message it does not know is passed on as it is)."""
    for pattern, words in _ERRORS:
        if found := pattern.fullmatch(message):
            return words.format(*found.groups())
    return message


class DanishFormatter(argparse.RawDescriptionHelpFormatter):
    def add_usage(self, usage: Any, actions: Any, groups: Any, prefix: str | None = None) -> None:
        super().add_usage(usage, actions, groups, "brug: " if prefix is None else prefix)


class DanishParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose own words are Danish; its sub-parsers are of the same class."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", DanishFormatter)
        add_help = kwargs.pop("add_help", True)
        kwargs["add_help"] = False  # argparse's own -h is English
        parents = kwargs.pop("parents", [])  # added once the titles are Danish: one "tilvalg", not two
        super().__init__(*args, **kwargs)
        self._positionals.title = "argumenter"
        self._optionals.title = "tilvalg"
        for parent in parents:
            self._add_container_actions(parent)
            self._defaults.update(parent._defaults)
        if add_help:
            self.add_argument("-h", "--help", action="help", help="vis denne hjælp og afslut")

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: fejl: {danish_error(message)}\n")
