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

from hub.core.errors import ConfigError
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

    @classmethod
    def from_options(cls, name: str, options: Mapping[str, Any]) -> LoraSettings:
        def key(k: str) -> str:
            return f"links.{name}.{k}"

        def number(k: str, default: float, low: float, high: float, kind: type = float) -> float:
            value = options.get(k, default)
            valid = int if kind is int else int | float
            if isinstance(value, bool) or not isinstance(value, valid) or not low <= value <= high:
                raise ConfigError(f"expected {kind.__name__} from {low} to {high}, got {value!r}", key=key(k))
            return float(value)

        known = {"kind", "device", "host", "port", "channel", "hop_limit", "preset", "budget_share"}
        known |= {"airtime_budget_seconds", "ack_timeout", "connect_timeout", "reconnect_max"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(f"unknown option(s) {', '.join(unknown)}", key=f"links.{name}")
        device, host = options.get("device"), options.get("host")
        if (device is None) == (host is None) or not isinstance(device or host, str):
            raise ConfigError(
                'set exactly one of device = "/dev/ttyUSB0" or host = "radio.local:4403"', key=key("device")
            )
        tcp_port = 4403
        if isinstance(host, str):
            hostname, _, port_text = host.rpartition(":") if ":" in host else (host, "", "4403")
            if not hostname or not port_text.isdigit():
                raise ConfigError(f'expected "host:port", got {host!r}', key=key("host"))
            host, tcp_port = hostname, int(port_text)
        try:
            preset = preset_from_name(str(options.get("preset", "LONG_FAST")))
        except ValueError as exc:
            raise ConfigError(str(exc), key=key("preset")) from exc
        share = number("budget_share", 0.9, 0.01, 1.0)
        hop_limit = options.get("hop_limit")
        if hop_limit is not None and (not isinstance(hop_limit, int) or not 0 <= hop_limit <= 7):
            raise ConfigError(f"expected 0-7, got {hop_limit!r}", key=key("hop_limit"))
        return cls(
            device=device,
            host=host,
            tcp_port=tcp_port,
            port=int(number("port", 256, 256, 511, int)),
            channel=int(number("channel", 0, 0, 7, int)),
            hop_limit=hop_limit,
            preset=preset,
            airtime_budget_seconds=number(
                "airtime_budget_seconds", EU868_HOURLY_LIMIT * share, 1.0, EU868_HOURLY_LIMIT
            ),
            ack_timeout=number("ack_timeout", 90.0, 1.0, 3600.0),
            connect_timeout=number("connect_timeout", 30.0, 1.0, 600.0),
            reconnect_max=number("reconnect_max", 30.0, 0.5, 3600.0),
        )
