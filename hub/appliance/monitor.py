"""The appliance side of a care-home hub: power sensing, staff buttons and link lamps.

A mains-sense input, a generator input and a UPS battery reading feed the institution status; each
change of power source is reported to the staff hub named by ``[power] report_to`` as a STATUS message,
and so is each press of a staff button (all OK at normal priority, need help urgent, emergency
life-safety). Link lamps follow the health of their link.
"""

from __future__ import annotations

import logging
from typing import Any

from hub.appliance.power import (
    Button,
    ButtonPressed,
    LedState,
    PowerConfig,
    PowerMonitor,
    PowerSource,
    PowerState,
)
from hub.core.errors import BeredtError
from hub.core.frame import Kind, Priority
from hub.core.kinds import encode_payload
from hub.relay.events import LinkHealthChanged
from hub.relay.health import HealthChanged

log = logging.getLogger("beredt.appliance")

_BUTTONS: dict[Button, tuple[dict[str, Any], Priority]] = {
    Button.ALL_OK: ({"facility": "Normal", "text": "Alt OK"}, Priority.NORMAL),
    Button.NEED_HELP: ({"facility": "Compromised", "text": "Vi har brug for hjælp"}, Priority.URGENT),
    Button.EMERGENCY: ({"facility": "Compromised", "text": "NØDSITUATION"}, Priority.LIFE_SAFETY),
}
_POWER = {PowerSource.MAINS: "mains", PowerSource.GENERATOR: "generator", PowerSource.BATTERY: "battery"}


def status_for_power(state: PowerState) -> dict[str, Any]:
    body: dict[str, Any] = {
        "facility": "Normal" if state.source is PowerSource.MAINS else "Compromised",
        "power": _POWER.get(state.source, "none"),
    }
    if state.battery_percent is not None:
        body["text"] = f"batteri {state.battery_percent:.0f} %"
    return body


class Appliance:
    """Runs a ``PowerMonitor`` for a hub (see ``hub.relay.hub.Hub.run``)."""

    def __init__(self, hub: Any, config: PowerConfig, report_to: bytes | None) -> None:
        self.hub = hub
        self.config = config
        self.report_to = report_to
        self.state: PowerState | None = None

    async def run(self) -> None:
        monitor = await PowerMonitor.open(self.config)
        try:
            self.hub.health.listen(lambda change: self._lamp(monitor, change))
            async for event in monitor.events():
                match event:
                    case PowerState():
                        previous, self.state = self.state, event
                        if previous is None or previous.source is not event.source:
                            log.warning("power source: %s", event.source.value)
                            await self._report(status_for_power(event), Priority.URGENT)
                    case ButtonPressed(button=button):
                        body, priority = _BUTTONS[button]
                        if self.state is not None:
                            body = {**body, "power": _POWER.get(self.state.source, "none")}
                        log.warning("staff pressed %s", button.value)
                        await self._report(body, priority)
        finally:
            await monitor.aclose()

    @staticmethod
    def _lamp(monitor: PowerMonitor, change: HealthChanged | LinkHealthChanged) -> None:
        if change.peer is None:
            monitor.show_link(change.link, LedState.for_link(str(getattr(change.new, "label", change.new))))

    async def _report(self, body: dict[str, Any], priority: Priority) -> None:
        if self.report_to is None:
            return
        try:
            await self.hub.submit(
                Kind.STATUS, self.report_to, encode_payload(Kind.STATUS, body), priority=priority
            )
        except BeredtError as exc:
            log.error("could not queue the status report: %s", exc)
