"""CITIZEN_ALARM: a citizen's personal alarm heard from a registered Meshtastic handheld.

The hub that owns the radio sends it, sealed, at life-safety priority, to the municipality's hub, which
matches ``handheld`` and ``key`` against its handheld register (``hub.core.handhelds``) to find the
citizen. ``handheld`` is the node number as 8 hex digits (``a1b2c3d4`` for ``!a1b2c3d4``), ``key`` the
fingerprint of the public key the radio's firmware decrypted it with, ``text`` the canned message or
typed text (the alert button sends the firmware's bell text), ``port`` which of the two it came on and
``heard`` when the radio hub heard it. Sealed and signed it is 139 bytes plus the text (152 with a
13-byte canned message, measured in ``tests/citizens/test_handheld_alarms.py``): one 216-byte LoRa packet
for a text up to 77 bytes, two for a longer one.
"""

from __future__ import annotations

from hub.core.kinds.fields import Choice, Entry, HexId, Schema, Text, Time

ALARM_PORT = Choice(("text", "alert"))

CITIZEN_ALARM = Schema(
    "citizen_alarm",
    (
        Entry(1, "handheld", HexId(4), required=True),
        Entry(2, "key", HexId(8), required=True),
        Entry(3, "heard", Time(), required=True),
        Entry(4, "port", ALARM_PORT, required=True),
        Entry(5, "text", Text(100)),
    ),
)
