"""Typed reading of one TOML table of options, with errors that name the file, the key and the fix.

Every options table Beredt reads goes through ``Options``: the sections of the hub's config, each
``[links.<name>]`` table (read by its transport module) and ``[power]``. There is one method per kind of
value (text, integer, number, flag, choice, list of names, ``host:port`` address, sub-table); each checks
the type and the range and raises ``ConfigError`` with the dotted key (``links.lora.port``) and what is
expected instead. Unknown keys are refused with the list of known ones, and the nearest known key when it
looks like a typo, so a misspelt option stops the hub at start instead of being silently ignored.

Two ways to declare the known keys: pass ``known`` (checked at once, before any value: right for a
transport whose keys depend on its role), or read every key and call ``finish()``, which refuses the keys
that nothing read. The errors are Danish: these are files people in the municipality write.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, overload

from hub.core.errors import ConfigError

# The words of the errors ``Options`` raises: every table it reads is one a person in the municipality
# writes (the hub's config with its links, power and citizens sections; an exercise scenario), so Danish.
REQUIRED = "mangler; {hint}"
EXPECTED = "forventede {what}, ikke {value!r}"
UNKNOWN = "ukendt nøgle; {hint}fjern den eller brug en af de kendte nøgler: {known}"
NEAR = "mente du {name!r}? "
TEXT = "en tekst, der ikke er tom"
INTEGER = "et heltal"
NUMBER = "et tal"
FLAG = "true eller false"
ONE_OF = "en af "
LIST_OF = "en liste af "
ADDRESS = "forventede 'vært:port' (port 0..65535), fx {example!r}"
GOT = "{expected}, ikke {value!r}"


def _range(kind: str, low: float | None, high: float | None, above: float | None) -> str:
    if above is not None:
        return f"{kind} > {above:g}" + (f" og <= {high:g}" if high is not None else "")
    if low is not None and high is not None:
        return f"{kind} fra {low:g} til {high:g}"
    if low is not None:
        return f"{kind} >= {low:g}"
    if high is not None:
        return f"{kind} <= {high:g}"
    return kind


class Options:
    """One table of options; ``where`` is its dotted key (``"links.radio"``, ``""`` for the top level)."""

    def __init__(
        self,
        table: Mapping[str, Any],
        where: str = "",
        *,
        file: str | None = None,
        known: Iterable[str] | None = None,
    ) -> None:
        self.table = table
        self.where = where
        self.file = file
        self._read: set[str] = set()
        self._known = frozenset(known) if known is not None else None
        if self._known is not None:
            self._refuse_unknown(self._known)

    # -- keys and errors -----------------------------------------------------------------------------

    def key(self, name: str) -> str:
        """The dotted key of option ``name`` in this table."""
        return f"{self.where}.{name}" if self.where else name

    def error(self, name: str, message: str) -> ConfigError:
        """A ``ConfigError`` about option ``name`` (or about the table itself when ``name`` is ``""``)."""
        return ConfigError(message, file=self.file, key=self.key(name) if name else self.where or None)

    def __contains__(self, name: object) -> bool:
        return name in self.table

    def raw(self, name: str, default: Any = None) -> Any:
        """The value as written, unchecked (for the few options whose shape the caller checks itself)."""
        self._read.add(name)
        return self.table.get(name, default)

    def finish(self) -> None:
        """Refuse every key that was neither declared as ``known`` nor read."""
        self._refuse_unknown(frozenset(self._read) | (self._known or frozenset()))

    def _refuse_unknown(self, known: frozenset[str]) -> None:
        unknown = sorted(str(name) for name in self.table if name not in known)
        if not unknown:
            return
        name = unknown[0]
        near = difflib.get_close_matches(name, sorted(known), n=1)
        hint = NEAR.format(name=near[0]) if near else ""
        raise self.error(name, UNKNOWN.format(hint=hint, known=", ".join(sorted(known))))

    def _present(self, name: str, required: str | None) -> bool:
        self._read.add(name)
        if name in self.table:
            return True
        if required is not None:
            raise self.error(name, REQUIRED.format(hint=required))
        return False

    def _expected(self, name: str, what: str) -> ConfigError:
        return self.error(name, EXPECTED.format(what=what, value=self.table[name]))

    # -- values ----------------------------------------------------------------------------------------

    @overload
    def text(self, name: str, default: str, *, required: str | None = None, what: str = ...) -> str: ...
    @overload
    def text(
        self, name: str, default: None = None, *, required: str | None = None, what: str = ...
    ) -> str | None: ...
    def text(
        self, name: str, default: str | None = None, *, required: str | None = None, what: str = TEXT
    ) -> str | None:
        """A non-empty string. ``required`` makes it mandatory and says how to fill it in."""
        if not self._present(name, required):
            return default
        value = self.table[name]
        if not isinstance(value, str) or not value:
            raise self._expected(name, what)
        return value

    def required_text(self, name: str, hint: str) -> str:
        """A mandatory non-empty string; ``hint`` says what to write, e.g. ``'e.g. "/dev/ttyUSB0"'``."""
        value = self.text(name, required=hint)
        assert value is not None  # _present raised otherwise
        return value

    def integer(
        self,
        name: str,
        default: int,
        *,
        low: int | None = None,
        high: int | None = None,
        what: str | None = None,
    ) -> int:
        """A whole number (not a bool, not 2.0) within ``low..high``."""
        value = self.optional_integer(name, low=low, high=high, what=what)
        return default if value is None else value

    def optional_integer(
        self, name: str, *, low: int | None = None, high: int | None = None, what: str | None = None
    ) -> int | None:
        if not self._present(name, None):
            return None
        value = self.table[name]
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or (low is not None and value < low)
            or (high is not None and value > high)
        ):
            raise self._expected(name, what or _range(INTEGER, low, high, None))
        return value

    def number(
        self,
        name: str,
        default: float,
        *,
        low: float | None = None,
        high: float | None = None,
        above: float | None = None,
        what: str | None = None,
    ) -> float:
        """An integer or float within ``low..high`` (``above``: strictly greater than it)."""
        if not self._present(name, None):
            return default
        value = self.table[name]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (low is not None and value < low)
            or (high is not None and value > high)
            or (above is not None and value <= above)
        ):
            raise self._expected(name, what or _range(NUMBER, low, high, above))
        return float(value)

    def flag(self, name: str, default: bool) -> bool:
        if not self._present(name, None):
            return default
        value = self.table[name]
        if not isinstance(value, bool):
            raise self._expected(name, FLAG)
        return value

    def choice(self, name: str, default: str, choices: Sequence[str]) -> str:
        """One of ``choices``, compared as written."""
        if not self._present(name, None):
            return default
        value = self.table[name]
        if value not in choices:
            raise self._expected(name, ONE_OF + ", ".join(repr(c) for c in choices))
        return str(value)

    def names(self, name: str, *, valid: Callable[[str], object], what: str) -> tuple[str, ...]:
        """A list of strings that ``valid`` accepts; ``what`` describes them ("group names")."""
        if not self._present(name, None):
            return ()
        value = self.table[name]
        if not isinstance(value, list | tuple) or not all(
            isinstance(item, str) and valid(item) for item in value
        ):
            raise self._expected(name, LIST_OF + what)
        return tuple(value)

    def listing(self, name: str, *, what: str, required: str | None = None) -> list[Any]:
        """A list whose items the caller checks; ``what`` describes it when it is not a list."""
        if not self._present(name, required):
            return []
        value = self.table[name]
        if not isinstance(value, list):
            raise self._expected(name, what)
        return value

    def address(self, name: str, default: str | None = None, *, example: str) -> tuple[str, int]:
        """``"host:port"`` (port 0..65535; an IPv6 host may be in brackets), as host and port."""
        expected = ADDRESS.format(example=example)
        text = self.raw(name, default) if self._present(name, None if default else expected) else default
        host, _, port = text.rpartition(":") if isinstance(text, str) else ("", "", "")
        host = host.strip("[]")
        if not host or not port.isdigit() or int(port) > 65535:
            raise self.error(name, GOT.format(expected=expected, value=text))
        return host, int(port)

    def table_of(self, name: str, *, what: str, known: Iterable[str] | None = None) -> Options:
        """The sub-table ``name`` (empty when absent) as ``Options`` of its own."""
        self._read.add(name)
        value = self.table.get(name, {})
        if not isinstance(value, Mapping):
            raise self._expected(name, what)
        return Options(value, self.key(name), file=self.file, known=known)
