"""Field types and schemas that turn the API's JSON-shaped bodies into compact CBOR maps and back.

Theory of operation. Each structured kind is a ``Schema``: a table of fields, each with a small integer
wire key (1..23, so a key costs one CBOR byte) and a JSON name. Enumerations travel as their index in a
fixed tuple, flag sets as a bit mask, times as Unix seconds, identifiers as raw bytes; JSON sees names,
lists of names, integers and hex strings. ``Schema.to_wire`` validates a body and raises ``ValueError``
naming the bad field (that is the API's 400); ``Schema.from_wire`` validates decoded CBOR and raises
``ProtocolError`` (that is a frame we refuse). Absent optional fields are simply left out on both sides,
so a minimal status costs a handful of bytes. Unknown wire keys are skipped, so a newer hub may add
fields without older hubs refusing its frames; unknown enum values are refused because they would
change meaning. Every table is append-only: a wire key or enum index, once used, is never reassigned.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import cbor2

from hub.core.errors import ProtocolError

MAX_DEPTH = 4  # kind maps nest at most map -> list/map -> value


class Field(Protocol):
    """One value type: JSON value <-> CBOR-ready value."""

    def to_wire(self, name: str, value: object) -> object: ...

    def from_wire(self, name: str, value: object) -> object: ...


_JSON_TYPES = {
    bool: "sand/falsk",
    int: "et tal",
    float: "et tal",
    str: "tekst",
    list: "en liste",
    dict: "et objekt",
}


def _json_type(value: object) -> str:
    """What a JSON value is, in the words of the person who sent it."""
    return "ingenting" if value is None else _JSON_TYPES.get(type(value), type(value).__name__)


def _check_int(name: str, value: object, low: int, high: int) -> int:
    # bool is an int subclass; "true" people count is always a mistake
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name}: forventede et heltal, fik {_json_type(value)}")
    if not low <= value <= high:
        raise ValueError(f"{name}: {value} ligger uden for {low}..{high}")
    return value


@dataclass(frozen=True, slots=True)
class UInt:
    """A non-negative integer up to ``high``."""

    high: int = 0xFFFF

    def to_wire(self, name: str, value: object) -> object:
        return _check_int(name, value, 0, self.high)

    def from_wire(self, name: str, value: object) -> object:
        try:
            return _check_int(name, value, 0, self.high)
        except ValueError as exc:
            raise ProtocolError(str(exc)) from None


@dataclass(frozen=True, slots=True)
class Text:
    """A UTF-8 string of at most ``max_bytes`` encoded bytes (bytes, not characters: æøå cost two)."""

    max_bytes: int

    def to_wire(self, name: str, value: object) -> object:
        if not isinstance(value, str):
            raise ValueError(f"{name}: forventede tekst, fik {_json_type(value)}")
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError:
            raise ValueError(f"{name}: ikke gyldig Unicode-tekst") from None
        if size > self.max_bytes:
            raise ValueError(f"{name}: {size} bytes UTF-8 er over grænsen på {self.max_bytes}")
        return value

    def from_wire(self, name: str, value: object) -> object:
        if not isinstance(value, str) or len(value.encode("utf-8")) > self.max_bytes:
            raise ProtocolError(f"{name}: expected text of at most {self.max_bytes} bytes")
        return value


@dataclass(frozen=True, slots=True)
class TextList:
    """A short list of short strings (actions taken, for instance)."""

    max_items: int
    item: Text

    def to_wire(self, name: str, value: object) -> object:
        if not isinstance(value, list) or len(value) > self.max_items:
            raise ValueError(f"{name}: forventede en liste med højst {self.max_items} tekster")
        return [self.item.to_wire(f"{name}[{i}]", v) for i, v in enumerate(value)]

    def from_wire(self, name: str, value: object) -> object:
        if not isinstance(value, list) or len(value) > self.max_items:
            raise ProtocolError(f"{name}: expected a list of at most {self.max_items} strings")
        return [self.item.from_wire(f"{name}[{i}]", v) for i, v in enumerate(value)]


@dataclass(frozen=True, slots=True)
class Choice:
    """One of a fixed tuple of names; the wire carries the index. Matching ignores case."""

    names: tuple[str, ...]

    def to_wire(self, name: str, value: object) -> object:
        if isinstance(value, str):
            for index, candidate in enumerate(self.names):
                if candidate.casefold() == value.casefold():
                    return index
        raise ValueError(f"{name}: {value!r} er ikke en af {', '.join(self.names)}")

    def from_wire(self, name: str, value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < len(self.names):
            raise ProtocolError(f"{name}: unknown value {value!r}")
        return self.names[value]


@dataclass(frozen=True, slots=True)
class Flags:
    """A set of names; the wire carries a bit mask (bit i = names[i]). JSON order follows ``names``."""

    names: tuple[str, ...]

    def to_wire(self, name: str, value: object) -> object:
        if not isinstance(value, list):
            raise ValueError(f"{name}: forventede en liste af navne blandt {', '.join(self.names)}")
        folded = [n.casefold() for n in self.names]
        mask = 0
        for item in value:
            if not isinstance(item, str) or item.casefold() not in folded:
                raise ValueError(f"{name}: {item!r} er ikke en af {', '.join(self.names)}")
            mask |= 1 << folded.index(item.casefold())
        return mask

    def from_wire(self, name: str, value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << len(self.names):
            raise ProtocolError(f"{name}: bad flag mask {value!r}")
        return [n for i, n in enumerate(self.names) if value & (1 << i)]


@dataclass(frozen=True, slots=True)
class Time:
    """A moment: Unix seconds on the wire and in decoded JSON; ISO 8601 with an offset also accepted."""

    def to_wire(self, name: str, value: object) -> object:
        if isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                raise ValueError(f"{name}: {value!r} er ikke et ISO 8601-tidspunkt") from None
            if moment.tzinfo is None:
                raise ValueError(f"{name}: {value!r} mangler forskydning fra UTC (fx +01:00 eller Z)")
            value = int(moment.timestamp())
        return _check_int(name, value, 0, 0xFFFFFFFF)

    def from_wire(self, name: str, value: object) -> object:
        try:
            return _check_int(name, value, 0, 0xFFFFFFFF)
        except ValueError as exc:
            raise ProtocolError(str(exc)) from None


@dataclass(frozen=True, slots=True)
class HexId:
    """A fixed-size identifier: ``size`` raw bytes on the wire, lower-case hex in JSON."""

    size: int

    def to_wire(self, name: str, value: object) -> object:
        if isinstance(value, str):
            try:
                raw = bytes.fromhex(value)
            except ValueError:
                raw = b""
            if len(raw) == self.size:
                return raw
        raise ValueError(f"{name}: forventede {self.size * 2} hex-cifre, fik {value!r}")

    def from_wire(self, name: str, value: object) -> object:
        if not isinstance(value, bytes) or len(value) != self.size:
            raise ProtocolError(f"{name}: expected a {self.size}-byte identifier")
        return value.hex()


@dataclass(frozen=True, slots=True)
class HexIdList:
    """A short list of identifiers (CAP references, for instance)."""

    max_items: int
    item: HexId

    def to_wire(self, name: str, value: object) -> object:
        if not isinstance(value, list) or len(value) > self.max_items:
            raise ValueError(f"{name}: forventede en liste med højst {self.max_items} id'er")
        return [self.item.to_wire(f"{name}[{i}]", v) for i, v in enumerate(value)]

    def from_wire(self, name: str, value: object) -> object:
        if not isinstance(value, list) or len(value) > self.max_items:
            raise ProtocolError(f"{name}: expected a list of at most {self.max_items} ids")
        return [self.item.from_wire(f"{name}[{i}]", v) for i, v in enumerate(value)]


@dataclass(frozen=True, slots=True)
class Items:
    """A short list of values of one field type (CAP areas, for instance)."""

    max_items: int
    item: Field

    def to_wire(self, name: str, value: object) -> object:
        if not isinstance(value, list) or len(value) > self.max_items:
            raise ValueError(f"{name}: forventede en liste med højst {self.max_items} elementer")
        return [self.item.to_wire(f"{name}[{i}]", v) for i, v in enumerate(value)]

    def from_wire(self, name: str, value: object) -> object:
        if not isinstance(value, list) or len(value) > self.max_items:
            raise ProtocolError(f"{name}: expected a list of at most {self.max_items} items")
        return [self.item.from_wire(f"{name}[{i}]", v) for i, v in enumerate(value)]


@dataclass(frozen=True, slots=True)
class Pairs:
    """Named values (CAP parameters, geocodes): ``[[name, value], ...]`` in JSON, one flat list on the wire.

    Flat, because a list of two-item lists would cost a nesting level that an area inside an alert
    cannot spare (``MAX_DEPTH``)."""

    max_items: int
    name: Text
    value: Text

    def to_wire(self, name: str, value: object) -> object:
        if not isinstance(value, list) or len(value) > self.max_items:
            raise ValueError(f"{name}: forventede en liste med højst {self.max_items} par [navn, værdi]")
        flat: list[object] = []
        for i, pair in enumerate(value):
            if not isinstance(pair, list | tuple) or len(pair) != 2:
                raise ValueError(f"{name}[{i}]: forventede et par [navn, værdi], fik {pair!r}")
            flat += [
                self.name.to_wire(f"{name}[{i}][0]", pair[0]),
                self.value.to_wire(f"{name}[{i}][1]", pair[1]),
            ]
        return flat

    def from_wire(self, name: str, value: object) -> object:
        if not isinstance(value, list) or len(value) % 2 or len(value) > 2 * self.max_items:
            raise ProtocolError(f"{name}: expected a flat list of at most {self.max_items} name/value pairs")
        return [
            [
                self.name.from_wire(f"{name}[{i // 2}][0]", value[i]),
                self.value.from_wire(f"{name}[{i // 2}][1]", value[i + 1]),
            ]
            for i in range(0, len(value), 2)
        ]


@dataclass(frozen=True, slots=True)
class Entry:
    """One row of a schema: wire key, JSON name, type, and whether a body must carry it."""

    key: int
    name: str
    type: Field
    required: bool = False


@dataclass(frozen=True, slots=True)
class Schema:
    """An ordered table of entries; also usable as a Field for nested groups (casualties, residents)."""

    title: str
    entries: tuple[Entry, ...]

    def __post_init__(self) -> None:
        keys = [e.key for e in self.entries]
        if len(set(keys)) != len(keys) or not all(0 <= k <= 23 for k in keys):
            raise ValueError(f"{self.title}: wire keys must be unique and 0..23")

    def to_wire(self, name: str, value: object) -> dict[int, object]:
        if not isinstance(value, Mapping):
            raise ValueError(f"{name}: forventede et objekt med felterne {self._names()}")
        known = {e.name for e in self.entries}
        unknown = sorted(str(k) for k in value if k not in known)
        if unknown:
            raise ValueError(f"{name}: ukendte felter {', '.join(unknown)}; kendte: {self._names()}")
        out: dict[int, object] = {}
        for entry in self.entries:
            item = value.get(entry.name)
            if item is None:
                if entry.required:
                    raise ValueError(f"{self._path(name, entry)}: feltet mangler")
                continue
            out[entry.key] = entry.type.to_wire(self._path(name, entry), item)
        return out

    def from_wire(self, name: str, value: object) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ProtocolError(f"{name}: expected a map")
        out: dict[str, Any] = {}
        for entry in self.entries:
            if entry.key not in value:
                if entry.required:
                    raise ProtocolError(f"{self._path(name, entry)}: required field is missing")
                continue
            out[entry.name] = entry.type.from_wire(self._path(name, entry), value[entry.key])
        return out

    def encode(self, body: object) -> bytes:
        return cbor2.dumps(self.to_wire(self.title, body), canonical=True)

    def decode(self, payload: bytes) -> dict[str, Any]:
        return self.from_wire(self.title, loads_strict(payload))

    def _names(self) -> str:
        return ", ".join(e.name for e in self.entries)

    @staticmethod
    def _path(name: str, entry: Entry) -> str:
        return f"{name}.{entry.name}"


def _check_plain(value: object, depth: int) -> None:
    """Only the CBOR data model we use: ints, text, bytes, lists and maps with int keys."""
    if depth > MAX_DEPTH:
        raise ProtocolError("CBOR nesting too deep")
    match value:
        case bool() | None:
            raise ProtocolError("unexpected CBOR simple value")
        case int() | str() | bytes():
            return
        case list():
            for item in value:
                _check_plain(item, depth + 1)
        case dict():
            for key, item in value.items():
                if isinstance(key, bool) or not isinstance(key, int):
                    raise ProtocolError(f"CBOR map key {key!r} is not an integer")
                _check_plain(item, depth + 1)
        case _:
            raise ProtocolError(f"unexpected CBOR item of type {type(value).__name__}")


def loads_strict(payload: bytes) -> object:
    """Decode exactly one CBOR item: no trailing bytes, duplicate keys, indefinite lengths, tags or floats."""
    stream = io.BytesIO(payload)
    decoder = cbor2.CBORDecoder(
        stream, allow_duplicate_keys=False, allow_indefinite=False, max_depth=MAX_DEPTH + 1
    )
    try:
        value = decoder.decode()
    except (cbor2.CBORError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise ProtocolError(f"payload is not valid CBOR: {exc}") from exc
    if stream.tell() != len(payload):
        raise ProtocolError(f"{len(payload) - stream.tell()} trailing bytes after the CBOR payload")
    _check_plain(value, 0)
    return value
