"""The airtime and credits this hub's links spent on exercise frames, per exercise and link, metered.

``LinkSet.send`` asks ``account`` for the tally of each frame it hands to a link: a frame marked
Exercise goes on the account of the exercise this hub takes part in (or, once it is over, the one it
took part in last: an acknowledgement still under way is that exercise's traffic); anything else on
no account. The transports charge what they actually spend (``hub.core.metering``). The tallies are kept
in ``exercise-usage.json`` in the data folder, written at most once a second when they changed, so the
after-action report (``hub.exercise.report``) reads them while the hub runs and after a restart. The file
holds the last ``KEEP`` exercises.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

from hub.core.files import write_atomically
from hub.core.frame import VERSION, Status
from hub.core.metering import Tally

log = logging.getLogger("beredt.exercise")

USAGE_FILE = "exercise-usage.json"
KEEP = 16
"""Exercises whose tallies the file keeps, newest last."""
_STATUS_SHIFT = 2


def is_exercise(wire: bytes) -> bool:
    """Whether an encoded frame is marked Exercise (flags byte 2, bits 2-3)."""
    return len(wire) > 3 and wire[0] == VERSION and (wire[2] >> _STATUS_SHIFT) & 0x03 == Status.EXERCISE


class ExerciseUsage:
    """Per exercise id, per link: the ``Tally`` of what the link spent on the exercise's frames."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        """Where the tallies are kept (None: only in memory)."""
        self.tallies: dict[str, dict[str, Tally]] = {}
        self._saved = ""

    def load(self) -> None:
        if self.path is None or not self.path.exists():
            return
        try:
            saved = json.loads(self.path.read_text(encoding="utf-8"))
            self.tallies = {
                exercise: {
                    link: Tally(float(t["airtime_s"]), int(t["credits"]), int(t.get("refused", 0)))
                    for link, t in links.items()
                }
                for exercise, links in saved.items()
            }
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            log.error("ignoring the saved exercise usage %s: %s", self.path, exc)
            return
        self._saved = self._text()

    def begin(self, exercise: str) -> None:
        """``exercise`` is the one frames marked Exercise are charged to from now on."""
        self.tallies[exercise] = self.tallies.pop(exercise, {})
        for old in list(self.tallies)[:-KEEP]:
            del self.tallies[old]

    def latest(self) -> str | None:
        return next(reversed(self.tallies), None)

    def account(self, link: str, wire: bytes) -> Tally | None:
        """The tally a frame sent over ``link`` is charged to: the latest exercise's, for its frames."""
        exercise = self.latest()
        if exercise is None or not is_exercise(wire):
            return None
        return self.tallies[exercise].setdefault(link, Tally())

    def of(self, exercise: str) -> dict[str, Tally]:
        return dict(self.tallies.get(exercise, {}))

    def save_if_changed(self) -> None:
        if self.path is None:
            return
        text = self._text()
        if text == self._saved:
            return
        try:
            write_atomically(self.path, text, mode=0o600)
        except OSError as exc:  # metering goes on in memory; the next change tries again
            log.error("could not save the exercise usage to %s: %s", self.path, exc)
            return
        self._saved = text

    def _text(self) -> str:
        return json.dumps(
            {
                exercise: {link: asdict(t) for link, t in links.items()}
                for exercise, links in self.tallies.items()
            }
        )


def read_usage(path: Path, exercise: str) -> dict[str, Tally] | None:
    """The tallies saved for ``exercise`` (None: the file or the exercise is not there)."""
    usage = ExerciseUsage(path)
    usage.load()
    return usage.tallies.get(exercise)
