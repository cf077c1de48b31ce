"""Which module opens which kind of link. Only the composition root (hub.service.assembly) calls this.

Each transport module provides ``async def open_transport(name, options, ctx) -> Transport``; it
validates its own ``[links.<name>]`` options and raises ``ConfigError`` naming the key.
Modules are imported lazily so a site without radios never imports meshtastic or pyserial.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from hub.core.errors import ConfigError
from hub.core.transport import Transport, TransportContext

KINDS: dict[str, str] = {
    "memory": "transports.memory",
    "internet": "transports.internet",
    "mqtt": "transports.mqtt",
    "lora": "transports.lora",
    "sine": "transports.sine",
    "satellite": "transports.satellite",
}


async def open_transport(
    kind: str, name: str, options: Mapping[str, Any], ctx: TransportContext
) -> Transport:
    module_name = KINDS.get(kind)
    if module_name is None:
        raise ConfigError(
            f"ukendt forbindelsestype {kind!r}; forventede en af {', '.join(sorted(KINDS))}",
            key=f"links.{name}.kind",
        )
    module = importlib.import_module(module_name)
    transport: Transport = await module.open_transport(name, options, ctx)
    return transport
