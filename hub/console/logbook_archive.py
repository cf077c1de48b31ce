"""The log book's archive: its oldest entries moved out of ``console.db`` into segment files, so the live
table stays bounded however long a crisis lasts.

A segment is a JSON Lines file, ``logbook-archive/segment-<first seq>-<last seq>.jsonl`` beside
``console.db``: one entry per line with every field as stored and its hash in hex, written to a temporary
file, fsync'd and renamed into place before the live table lets go of those entries. Nothing is
re-hashed: the chain simply continues across files, so the first entry of each segment chains to the
last entry of the one before, and the first live entry to the last archived one. An auditor can walk
the segments and the table with any tool; ``LogBook.verify`` does it and names the first broken seq.
"""

from __future__ import annotations

import collections
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from hub.core.errors import StoreError

FOLDER = "logbook-archive"
_FIELDS = ("seq", "time", "author", "node", "type", "text")

Row = tuple[int, int, str, str, str, str, bytes]
"""An entry as the live table stores it: seq, time, author, node, type, text, hash."""


def segments(folder: Path) -> list[Path]:
    """The segment files in seq order."""
    if not folder.is_dir():
        return []
    return sorted(folder.glob("segment-*.jsonl"), key=lambda p: int(p.stem.split("-")[1]))


def write(folder: Path, rows: Sequence[Row]) -> Path:
    """Write ``rows`` (consecutive, oldest first) as a new segment, durably, and return its path."""
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / f"segment-{rows[0][0]:09d}-{rows[-1][0]:09d}.jsonl"
    temporary = path.with_suffix(".tmp")
    with temporary.open("w", encoding="utf-8") as out:
        for row in rows:
            fields = dict(zip(_FIELDS, row[:6], strict=True))
            out.write(json.dumps({**fields, "hash": row[6].hex()}, ensure_ascii=False) + "\n")
        out.flush()
        os.fsync(out.fileno())
    temporary.chmod(0o600)
    os.replace(temporary, path)
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)
    return path


def read(folder: Path, *, since: int = 0) -> Iterator[Row]:
    """Every archived entry with seq > ``since``, in seq order; a damaged line is a ``StoreError``."""
    for path in segments(folder):
        if int(path.stem.split("-")[2]) <= since:
            continue
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                try:
                    doc = json.loads(line)
                    row: Row = (int(doc["seq"]), int(doc["time"]), str(doc["author"]), str(doc["node"]),
                                str(doc["type"]), str(doc["text"]), bytes.fromhex(doc["hash"]))  # fmt: skip
                except (ValueError, KeyError, TypeError) as exc:
                    raise StoreError(f"log book archive {path.name} line {number} is damaged: {exc}") from exc
                if row[0] > since:
                    yield row


def head(folder: Path) -> tuple[int, bytes] | None:
    """The newest archived (seq, hash): where the live table's chain continues from."""
    found = segments(folder)
    if not found:
        return None
    newest = collections.deque(read(folder, since=int(found[-1].stem.split("-")[1]) - 1), maxlen=1)
    return (newest[0][0], newest[0][6]) if newest else None
