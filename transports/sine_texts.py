"""Texts typed on home-care teams' SINE/TETRA terminals: which text SDS count as a team's coded visit.

A SINE link with ``team_texts = true`` has its radio route text messages (SDS-TL PID 0x82) to the PEI
(``hardware.tetra_driver``). ``TerminalGate.judge`` lets one through only from a calling party whose ISSI
is listed as a team terminal in ``handhelds.toml`` (``[[terminal]]``, ``hub.core.handhelds``); it becomes
a ``TeamText`` whose ``reply`` sends a text SDS back to that terminal. The calling party is what the
TETRA network says: it authenticates terminals to the network, so the ISSI is the network's word, not the
sender's claim (see docs/security.md for what that does not cover). Everything else is refused and counted
(``no_caller``: the radio left out the calling party; ``unknown_terminal``); nothing is answered and
nothing is kept of an unlisted sender.

A text's key (what tells a resend from a new text) is the ISSI, the SDS-TL reference, the text and when
it was first heard: the reference repeats every 256 messages of a terminal, so the same text under the
same reference more than ``RESEND_SECONDS`` later is a new text (the nurse reporting the citizen again
on another day), while the terminal's own resends, within seconds or minutes, keep the first key.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from functools import partial

from hardware import tetra_pei as pei
from hub.core.errors import ProtocolError
from hub.core.transport import TeamText

Answer = Callable[[str, str], Awaitable[None]]
"""Sends a text SDS to a terminal (its identity as the network gave it)."""
TEXT_CHARS = 100
"""What is read of a text and sent in an answer: a coded visit is a few words."""
RESEND_SECONDS = 15 * 60.0
"""How long the same reference and text from a terminal is taken for its resend."""
KEEP = 1000
"""Texts whose first hearing is remembered; a few days of every team's texts."""


class TerminalGate:
    def __init__(
        self,
        terminals: Mapping[str, str],
        *,
        answer: Answer,
        log: logging.Logger,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.terminals = dict(terminals)
        """ISSI without leading zeros -> the team's district."""
        self._answer = answer
        self._log = log
        self._clock = clock
        self._first_heard: OrderedDict[tuple[str, int, str], float] = OrderedDict()
        self.counters = {"team_texts": 0, "no_caller": 0, "unknown_terminal": 0}

    def judge(self, source: str | None, ref: int, text: str) -> TeamText | None:
        """The team text a text SDS from ``source`` is, or None (refused and counted)."""
        try:
            issi = pei.ssi_of(source or "")
        except ProtocolError:  # no calling party: nobody to check, nobody to answer
            self.counters["no_caller"] += 1
            return None
        team = self.terminals.get(issi)
        if team is None:
            self.counters["unknown_terminal"] += 1
            self._log.info("text SDS from ISSI %s refused: not a registered team terminal", issi)
            return None
        self.counters["team_texts"] += 1
        text = text.strip()[:TEXT_CHARS]
        now, heard = self._clock(), (issi, ref, text)
        first = self._first_heard.get(heard)
        if first is None or now - first > RESEND_SECONDS:  # not a resend: the reference came round again
            first = self._first_heard[heard] = now
            self._first_heard.move_to_end(heard)
            while len(self._first_heard) > KEEP:
                self._first_heard.popitem(last=False)
        key = f"{issi}/{ref}/{text}/{first:.0f}"
        return TeamText(issi, team, text, key, partial(self._answer, source or issi))
