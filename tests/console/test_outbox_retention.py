"""The console's sent view forgets a message when its kind's retention ends, with its read receipt."""

from __future__ import annotations

from hub.console.outbox import Outbox, Sent
from hub.core.at_rest import DAY, Retention


def test_a_sent_message_is_forgotten_when_its_kinds_retention_ends() -> None:
    outbox = Outbox()
    for message_id, kind in (("aa", "text"), ("bb", "status")):
        outbox.add(Sent(message_id, "11" * 8, kind, "normal", 0.0, "hansen", f"Hent Karen Jensen ({kind})"))
    assert outbox.receipt("bb", "Lindely", 60.0)
    retention = Retention(days=60, by_kind={"status": 30})

    assert outbox.forget_expired(30 * DAY - 1, retention) == 0
    assert outbox.forget_expired(30 * DAY, retention) == 1  # the status's 30 days are over
    assert [s.id for s in outbox.newest()] == ["aa"] and "bb" not in outbox.receipts
    assert outbox.forget_expired(60 * DAY, retention) == 1
    assert outbox.newest() == []
