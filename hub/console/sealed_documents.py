"""The console's documents at rest: JSON sealed under the hub's day keys (``hub.core.at_rest``).

What the console keeps in ``console.db`` besides the log book (what it sent and its summary, the status
board, roll-calls and their answers) may name a person. Each document is written as a BLOB: the day key's
id, a newline, and the JSON sealed under that key with the document's place (table and key) as associated
data. A document is sealed again under today's key every time it is saved, so a key is destroyed after
the retention days of ``[retention] days`` have passed since the last save of anything under it. A TEXT
value is a document written before the console sealed its documents: it is read as it is and sealed at
its next save. A document whose key was destroyed reads as missing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hub.core.at_rest import DataKeys
from hub.core.errors import DataErased, SealError, StoreError


class DocumentSealer:
    def __init__(self, keys: DataKeys, keep_days: int, now: Callable[[], float]) -> None:
        self.keys = keys
        self.keep_days = keep_days
        self._now = now

    def seal(self, document: Any, place: str) -> bytes:
        key_id = self.keys.key_id(self._now(), self.keep_days)
        plain = json.dumps(document, separators=(",", ":")).encode()
        return key_id.encode() + b"\n" + self.keys.seal(key_id, plain, place.encode())

    def open(self, value: object, place: str) -> Any:
        """The document, or None when its key was destroyed; ``StoreError`` when it is damaged."""
        try:
            if isinstance(value, bytes):
                key_id, _, sealed = value.partition(b"\n")
                plain: str | bytes = self.keys.open(key_id.decode(), sealed, place.encode())
            else:
                plain = str(value)
            return json.loads(plain)
        except DataErased:
            return None
        except (SealError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StoreError(f"{place} in the console database is damaged: {exc}") from exc
