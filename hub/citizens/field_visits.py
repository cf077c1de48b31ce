"""Coded visits from home-care teams' handhelds, recorded as a visit from the field page is.

The link has already checked the device against its register of team devices and hands over a
``TeamText`` (``hub.relay.team_texts``). Here, in this order:

1. a text heard before (same key: the same packet again) gets the first answer again and changes nothing;
   the digests of the last ``KEEP`` keys are kept in ``team-texts.json`` in the data folder, so a packet
   recorded on the air and played back after a restart of the hub is not a new visit either (it gets
   ``HEARD_BEFORE``: the file holds no citizen and no outcome);
2. the text is read as a code (``hub.citizens.visit_codes``); a text that is none gets the Danish reason;
3. the citizen must be on a running follow-up list held here; on the hub that built the lists (it knows
   each citizen's district) also on the list of the device's team; a team's hub holds only its own;
4. the same citizen and outcome from the same device within ``RESEND_WINDOW`` is the nurse sending again
   because the answer was slow: answered, not recorded twice;
5. the visit is recorded in the nurse role, named by team and device, at the moment it was heard; a
   team's hub sends it on as a signed VISIT to the hub that sent the list, like every visit recorded there.

Each text gets one short answer on the link it came by: ``OK B 0a1b2c3d registreret: mangler ilt``, or why
not. An answer that cannot be sent (the radio busy or out of airtime) is logged; the visit stands.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from hub.citizens.followup import OUTCOME_DANISH
from hub.citizens.register import Reader
from hub.citizens.visit_codes import CodedVisit, parse_code
from hub.core.errors import TransportError, UsageError
from hub.core.transport import TeamText

if TYPE_CHECKING:
    from hub.citizens.desk import Desk

log = logging.getLogger("beredt.citizens")
K = TypeVar("K")
V = TypeVar("V")

RESEND_WINDOW = 15 * 60.0
"""Seconds in which the same report from the same device is taken for a resend, not a second visit."""
KEEP = 1000
"""Answers remembered (by packet and by report) to recognise repeats; a few days of a team's visits."""
STATE_FILE = "team-texts.json"
HEARD_BEFORE = "Beskeden er modtaget før; intet nyt registreret"
"""The answer to a text heard before the hub's last restart (the first answer is not kept on disk)."""


class FieldVisits:
    def __init__(self, desk: Desk, state: Path | None = None) -> None:
        self._desk = desk
        self._state = state
        self._answers: OrderedDict[str, str] = _load(state) if state is not None else OrderedDict()
        """The answer given to each text, by the digest of its key, oldest first (``HEARD_BEFORE`` for the
        texts heard before a restart)."""
        self._recent: OrderedDict[tuple[str, str, str], tuple[float, str]] = OrderedDict()
        """(device, citizen, outcome) -> when recorded and the answer given."""
        self.counters = {"recorded": 0, "repeated": 0, "refused": 0}

    async def read(self, link: str, text: TeamText) -> None:
        key = hashlib.sha256(text.key.encode()).hexdigest()[:32]  # the file need not show the texts
        answer = self._answers.get(key)
        if answer is None:
            answer = await self._take(text)
            _remember(self._answers, key, answer)
            self._save()
        else:
            self.counters["repeated"] += 1
        try:
            await text.reply(answer)
        except TransportError as exc:
            log.warning("answer to team device %s on %s not sent: %s", text.sender, link, exc)

    async def _take(self, text: TeamText) -> str:
        try:
            visit = parse_code(text.text)
            await self._check_list(visit, text.team)
        except UsageError as exc:
            self.counters["refused"] += 1
            log.info("text from team device %s (%s) refused: %s", text.sender, text.team, exc)
            return str(exc)
        now = self._desk.clock.time()
        recent = self._recent.get((text.sender, visit.citizen, visit.outcome))
        if recent is not None and now - recent[0] < RESEND_WINDOW:
            self.counters["repeated"] += 1
            return recent[1]
        by = Reader(f"hold {text.team} {text.sender}", "nurse")
        await self._desk.record_visit(visit.citizen, visit.outcome, by=by, at=int(now))
        self.counters["recorded"] += 1
        log.info("visit for %s from team device %s (%s): %s", visit.citizen, text.sender, text.team,
                 visit.outcome)  # fmt: skip
        answer = f"OK {visit.label} registreret: {OUTCOME_DANISH[visit.outcome]}"
        _remember(self._recent, (text.sender, visit.citizen, visit.outcome), (now, answer))
        return answer

    def _save(self) -> None:
        if self._state is None:
            return
        temporary = self._state.with_suffix(".tmp")
        try:
            temporary.write_text(json.dumps(list(self._answers)), encoding="utf-8")
            os.replace(temporary, self._state)
        except OSError as exc:  # the visit stands; only a replay after a restart could count again
            log.error("cannot write %s: %s", self._state, exc)

    async def _check_list(self, visit: CodedVisit, team: str) -> None:
        entries = [e for e in await self._desk.incidents.entries() if e.citizen == visit.citizen]
        if not entries:
            raise UsageError(f"{visit.label} er ikke på nogen aktuel opfølgningsliste; tjek id'et")
        districts = {e.district.casefold() for e in entries}
        if "" not in districts and team.casefold() not in districts:
            raise UsageError(f"{visit.label} er ikke på hold {team}s liste; ikke registreret")


def _remember(memory: OrderedDict[K, V], key: K, value: V) -> None:
    memory[key] = value
    memory.move_to_end(key)
    while len(memory) > KEEP:
        memory.popitem(last=False)


def _load(path: Path) -> OrderedDict[str, str]:
    try:
        digests = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return OrderedDict()
    except (OSError, ValueError) as exc:
        log.error("cannot read %s (%s): texts heard before a restart count as new", path, exc)
        return OrderedDict()
    if not isinstance(digests, list):
        log.error("%s is not a list of heard texts: texts heard before a restart count as new", path)
        return OrderedDict()
    return OrderedDict((str(digest), HEARD_BEFORE) for digest in digests[-KEEP:])
