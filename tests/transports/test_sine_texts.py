"""Which text SDS count as a team terminal's coded visit, and when the same text is a new one: the SDS-TL
reference repeats every 256 messages of a terminal, so a text is a resend only while it is fresh."""

from __future__ import annotations

import logging

from transports.sine_texts import RESEND_SECONDS, TerminalGate


async def _no_answer(dest: str, text: str) -> None:
    raise AssertionError(f"the gate itself answers nobody ({dest}: {text})")


def test_a_terminals_resend_keeps_its_key_and_the_reference_come_round_again_is_a_new_text() -> None:
    now = [1_800_000_000.0]
    gate = TerminalGate(
        {"2001": "Nord"}, answer=_no_answer, log=logging.getLogger("test"), clock=lambda: now[0]
    )
    first = gate.judge("2001", 7, " B 42 OK ")
    assert first is not None and (first.sender, first.team, first.text) == ("2001", "Nord", "B 42 OK")
    now[0] += 40  # the terminal sends again: our report was lost
    resend = gate.judge("0002001", 7, "B 42 OK")
    assert resend is not None and resend.key == first.key
    other = gate.judge("2001", 8, "B 42 OK")  # the nurse typed it again: a new message
    assert other is not None and other.key != first.key
    now[0] += 86_400  # a day later the terminal's reference has come round to 7 again
    next_day = gate.judge("2001", 7, "B 42 OK")
    assert next_day is not None and next_day.key != first.key
    now[0] += RESEND_SECONDS / 2
    again = gate.judge("2001", 7, "B 42 OK")
    assert again is not None and again.key == next_day.key

    assert gate.judge("2002", 7, "B 42 OK") is None and gate.judge(None, 7, "B 42 OK") is None
    assert gate.counters == {"team_texts": 5, "no_caller": 1, "unknown_terminal": 1}
