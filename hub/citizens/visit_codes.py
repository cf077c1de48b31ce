"""The coded visit a nurse types on a team's handheld or TETRA terminal: ``B <borger> <udfald>``.

``B`` (borger), the citizen's register id, and one of the codes below; case, extra spaces and Danish
letters written out (``STROEM`` for ``STRØM``) do not matter. The register id is the 8 hex digits the
list shows; leading zeros may be left out (``B 42 OK`` is citizen ``00000042``) and a ``C-`` before it
is allowed. ``parse_code`` returns the citizen and outcome, or raises ``UsageError`` with the Danish
answer the device gets. The answers are short: a Meshtastic screen or an SDS shows about 100 characters.

    OK                       set, alt i orden                  seen_ok
    STROEM / STRØM           mangler strøm                     needs_power
    ILT                      mangler ilt                       needs_oxygen
    TRANSPORT                skal transporteres                needs_transport
    PLEJEHJEM / FLYTTET PLEJEHJEM    flyttet til plejehjem     moved_care_home
    HOSPITAL / FLYTTET HOSPITAL      flyttet til hospital      moved_hospital
    IKKE HJEMME / IKKEHJEMME ikke hjemme                       not_home
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hub.core.errors import UsageError

CODES = {
    "OK": "seen_ok",
    "STROEM": "needs_power",
    "STRØM": "needs_power",
    "ILT": "needs_oxygen",
    "TRANSPORT": "needs_transport",
    "PLEJEHJEM": "moved_care_home",
    "FLYTTET PLEJEHJEM": "moved_care_home",
    "HOSPITAL": "moved_hospital",
    "FLYTTET HOSPITAL": "moved_hospital",
    "IKKE HJEMME": "not_home",
    "IKKEHJEMME": "not_home",
}
SHOWN = "OK, STROEM, ILT, TRANSPORT, PLEJEHJEM, HOSPITAL, IKKE HJEMME"
"""The codes named in an answer to a text that had none of them."""
FORM = "Skriv: B <borger-id> <kode>, fx B 0a1b2c3d OK"
_ID = re.compile(r"(?:C-)?([0-9A-F]{1,8})")


@dataclass(frozen=True, slots=True)
class CodedVisit:
    citizen: str
    """The register id: 8 lower-case hex digits."""
    outcome: str
    """An outcome of ``hub.core.kinds.followup.OUTCOME``."""

    @property
    def label(self) -> str:
        """How the answer names the citizen: ``B`` and the id as the register spells it."""
        return f"B {self.citizen}"


def parse_code(text: str) -> CodedVisit:
    """The visit ``text`` reports; ``UsageError`` with the Danish answer when it is not one."""
    words = text.upper().split()
    if len(words) >= 1 and len(words[0]) > 1 and words[0].startswith("B") and _ID.fullmatch(words[0][1:]):
        words = ["B", words[0][1:], *words[1:]]  # "B42 OK": the space after B left out
    if len(words) < 3 or words[0] != "B":
        raise UsageError(f"Ukendt besked. {FORM}")
    found = _ID.fullmatch(words[1])
    if found is None:
        raise UsageError(f"{words[1][:12]} er ikke et borger-id (8 hex-cifre). {FORM}")
    code = " ".join(words[2:])
    outcome = CODES.get(code)
    if outcome is None:
        raise UsageError(f"Ukendt kode {code[:20]}. Koder: {SHOWN}")
    return CodedVisit(found.group(1).lower().zfill(8), outcome)
