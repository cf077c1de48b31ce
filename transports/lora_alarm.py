"""Personal alarms over the mesh: which received Meshtastic packets count as a citizen's alarm.

A registered handheld at a citizen's home sends a direct message to the hub's radio: a canned message
or typed text on ``TEXT_MESSAGE_APP``, or the alert button on ``ALERT_APP``. The firmware (``Router.cpp``,
``perhapsDecode``) tries PKI decryption only for a packet addressed to our node, not a broadcast, on
channel hash 0, with the public key its node database holds for the claimed sender; only when that
succeeds does it set ``pki_encrypted`` and copy that key into ``public_key`` (both are cleared first
on every packet from the air, so a sender cannot set them). The packet reaches us with ``channel`` 0.
The library hands it over as a dict (``pkiEncrypted``, ``from``, ``to``, ``channel``) with the protobuf
in ``raw``, whose ``public_key`` holds the key bytes.

``AlarmGate.judge`` accepts a packet on those two ports only if all of this holds, and the sender's node
id is in the handheld register with exactly that key, and the node's last accepted alarm is at least
``interval`` old. Everything else on those ports is refused and counted by reason; nothing from an
unknown sender is kept, so the state is bounded by the register. Nothing is ever answered from here.

A handheld registered to a home-care team (``team`` in the register) passes the same checks, but its
text is a coded visit, not an alarm: it comes out as a ``TeamText`` (not rate-limited: a nurse sends
several visits in a row) whose ``reply`` the link answers the handheld with. Its alert button is still
an alarm: a pressed button is somebody in trouble.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any

from hub.core.handhelds import Handheld, node_label
from hub.core.transport import PersonalAlarm, TeamText

TEXT_MESSAGE_APP = 1
ALERT_APP = 11
ALARM_PORTS = {TEXT_MESSAGE_APP: "text", ALERT_APP: "alert"}
BROADCAST_NUM = 0xFFFFFFFF
TEXT_MAX_BYTES = 100
"""What the CITIZEN_ALARM frame carries of the text; canned messages are far shorter."""
REASONS = ("broadcast", "not_to_us", "not_pki", "unknown_node", "key_mismatch", "rate_limited")

Answer = Callable[[int, str], Awaitable[None]]
"""Sends a short direct text to a node: how the link answers a team's handheld."""


class AlarmGate:
    """Decides which alarm-port packets are personal alarms; counts what it refuses and why."""

    def __init__(
        self,
        handhelds: Mapping[int, Handheld],
        *,
        interval: float,
        log: logging.Logger,
        answer: Answer,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.handhelds = dict(handhelds)
        self._answer = answer
        self.interval = interval
        self._log = log
        self._clock = clock
        self._last: dict[int, float] = {}
        """Per registered node, when its last alarm was accepted (bounded by the register)."""
        self.counters: dict[str, int] = {"accepted": 0, "team_texts": 0, **dict.fromkeys(REASONS, 0)}

    def judge(self, packet: Mapping[str, Any], my_node: int | None) -> PersonalAlarm | TeamText | None:
        """The alarm or team text ``packet`` carries, or None (refused and counted) when it is neither."""
        raw: Any = packet.get("raw")
        port = ALARM_PORTS.get(int(getattr(getattr(raw, "decoded", None), "portnum", -1)))
        sender = packet.get("from")
        if port is None or not isinstance(sender, int):
            return None
        reason = self._refusal(packet, raw, sender, my_node, port)
        if reason is not None:
            self.counters[reason] += 1
            if reason in ("key_mismatch", "not_pki") and sender in self.handhelds:
                self._log.warning(
                    "refused an alarm from registered handheld %s: %s", node_label(sender), reason
                )
            return None
        text = clip(bytes(getattr(raw.decoded, "payload", b"")).decode("utf-8", errors="replace").strip())
        team = self.handhelds[sender].team
        if team is not None and port == "text":
            self.counters["team_texts"] += 1
            # a repeat of the packet has its id; the text too, in case a packet comes without one
            key = f"{node_label(sender)}/{packet.get('id', '')}/{text}"
            return TeamText(node_label(sender), team, text, key, partial(self._answer, sender))
        self.counters["accepted"] += 1
        self._last[sender] = self._clock()
        return PersonalAlarm(sender, bytes(raw.public_key), text, port)

    def _refusal(
        self, packet: Mapping[str, Any], raw: Any, sender: int, my_node: int | None, port: str
    ) -> str | None:
        to = packet.get("to")
        if to == BROADCAST_NUM:
            return "broadcast"
        if my_node is None or to != my_node:
            return "not_to_us"
        if packet.get("pkiEncrypted") is not True or packet.get("channel", 0) != 0:
            return "not_pki"
        handheld = self.handhelds.get(sender)
        if handheld is None:
            return "unknown_node"
        if not hmac.compare_digest(bytes(getattr(raw, "public_key", b"")), handheld.public_key):
            return "key_mismatch"
        if handheld.team is not None and port == "text":
            return None  # a team's texts are visits, several in a row
        last = self._last.get(sender)
        if last is not None and self._clock() - last < self.interval:
            return "rate_limited"
        return None


def clip(text: str) -> str:
    """``text`` cut to ``TEXT_MAX_BYTES`` of UTF-8 without splitting a character."""
    return text.encode("utf-8")[:TEXT_MAX_BYTES].decode("utf-8", errors="ignore")
