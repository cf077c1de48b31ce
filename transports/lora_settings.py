"""The options of a LoRa link: the validated ``[links.<name>]`` table of a ``kind = "lora"`` link.

``LoraSettings.from_options`` checks every key of the table (unknown keys, ranges, whole numbers, the
radio's attachment as ``device`` or ``host``) and raises ``ConfigError`` naming the key, so a typo in a
site's config stops the hub at start instead of surfacing as a silent radio later. Nothing here touches
the radio; ``transports.lora`` builds its transport from the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hub.core.options import Options
from transports.lora_airtime import EU868_HOURLY_LIMIT, ModemPreset, preset_from_name


@dataclass(frozen=True, slots=True)
class LoraSettings:
    """The validated ``[links.<name>]`` table of a ``kind = "lora"`` link."""

    device: str | None = None
    host: str | None = None
    tcp_port: int = 4403
    port: int = 256
    channel: int = 0
    hop_limit: int | None = None
    preset: ModemPreset = ModemPreset.LONG_FAST
    airtime_budget_seconds: float = EU868_HOURLY_LIMIT * 0.9
    ack_timeout: float = 90.0
    connect_timeout: float = 30.0
    reconnect_max: float = 30.0
    peer_check_interval: float = 600.0
    """Seconds a peer may stay silent before a probe spends a traceroute on it."""
    radio_check_interval: float = 30.0
    """Seconds between asking our own radio (off the air) whether it still answers."""
    radio_check_timeout: float = 10.0
    """Seconds our own radio may leave that question unanswered before it counts as hung."""
    personal_alarms: bool = False
    """Hear registered handhelds' alarms (``transports.lora_alarm``; the register is ``handhelds.toml``)."""
    alarm_interval: float = 60.0
    """Seconds after an accepted alarm before the same handheld's next one counts."""

    @classmethod
    def from_options(cls, name: str, options: Mapping[str, Any]) -> LoraSettings:
        table = Options(options, f"links.{name}", known=_KNOWN)
        device, host = table.text("device"), table.text("host")
        if (device is None) == (host is None):
            raise table.error(
                "device", 'sæt præcis én af device = "/dev/ttyUSB0" eller host = "radio.local:4403"'
            )
        tcp_port = 4403
        if host is not None:
            hostname, _, port_text = host.rpartition(":") if ":" in host else (host, "", "4403")
            if not hostname or not port_text.isdigit():
                raise table.error("host", f'forventede "vært:port", ikke {host!r}')
            host, tcp_port = hostname, int(port_text)
        try:
            preset = preset_from_name(table.text("preset", "LONG_FAST"))
        except ValueError as exc:
            raise table.error("preset", str(exc)) from exc
        share = table.number("budget_share", 0.9, low=0.01, high=1.0)
        return cls(
            device=device,
            host=host,
            tcp_port=tcp_port,
            port=table.integer("port", 256, low=256, high=511),
            channel=table.integer("channel", 0, low=0, high=7),
            hop_limit=table.optional_integer("hop_limit", low=0, high=7),
            preset=preset,
            airtime_budget_seconds=table.number(
                "airtime_budget_seconds", EU868_HOURLY_LIMIT * share, low=1.0, high=EU868_HOURLY_LIMIT
            ),
            ack_timeout=table.number("ack_timeout", 90.0, low=1.0, high=3600.0),
            connect_timeout=table.number("connect_timeout", 30.0, low=1.0, high=600.0),
            reconnect_max=table.number("reconnect_max", 30.0, low=0.5, high=3600.0),
            peer_check_interval=table.number("peer_check_interval", 600.0, low=1.0, high=86400.0),
            radio_check_interval=table.number("radio_check_interval", 30.0, low=0.5, high=86400.0),
            radio_check_timeout=table.number("radio_check_timeout", 10.0, low=0.5, high=600.0),
            personal_alarms=table.flag("personal_alarms", False),
            alarm_interval=table.number("alarm_interval", 60.0, low=1.0, high=3600.0),
        )


_KNOWN = (
    "kind", "device", "host", "port", "channel", "hop_limit", "preset", "budget_share",
    "airtime_budget_seconds", "ack_timeout", "connect_timeout", "reconnect_max", "peer_check_interval",
    "radio_check_interval", "radio_check_timeout",
    "personal_alarms", "alarm_interval",
)  # fmt: skip
