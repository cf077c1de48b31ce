"""Where a care-home hub's power comes from, and the buttons and lamps on its box.

A Beredt Pi in a care home must say whether it runs on mains, on the generator or on its UPS battery, and
let staff report with one press (all OK / need help / emergency) when nobody has time for a keyboard.
``PowerMonitor`` reads an opto-isolated mains-sense input and an optional generator-running input through
gpiozero, reads a UPS HAT's battery (``hub.appliance.ups``: the INA219 monitor on Waveshare's UPS HATs,
over I2C with smbus2, in a worker thread because I2C calls block), watches the push buttons, and drives
one LED per link. It yields ``PowerState`` whenever something significant changes and ``ButtonPressed``
for each press. gpiozero and smbus2 come with the optional ``pi`` extra; they are imported only when a
``[power]`` table asks for them, and missing hardware, drivers or permissions become a ``ConfigError``
that says what to fix."""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
import warnings
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

# The UPS reader has a module of its own; re-exported so that its names stay importable from here.
from hub.appliance.ups import BatteryReader as BatteryReader
from hub.appliance.ups import BatteryReading as BatteryReading
from hub.appliance.ups import Ina219Ups as Ina219Ups
from hub.appliance.ups import SMBusLike as SMBusLike
from hub.appliance.ups import battery_percent as battery_percent
from hub.appliance.ups import decode_register as decode_register
from hub.appliance.ups import open_smbus as open_smbus
from hub.core.errors import ConfigError, ProtocolError
from hub.core.options import Options
from hub.core.tasks import cancel_and_wait

log = logging.getLogger(__name__)

READ_TIMEOUT = 5.0  # an I2C transfer takes milliseconds; a stuck bus must not stall the poll loop
QUEUE_LIMIT = 64


class PowerSource(enum.StrEnum):
    MAINS = "mains"
    GENERATOR = "generator"
    BATTERY = "battery"
    UNKNOWN = "unknown"


class Button(enum.StrEnum):
    ALL_OK = "all-ok"
    NEED_HELP = "need-help"
    EMERGENCY = "emergency"


class LedState(enum.StrEnum):
    ON = "on"  # link up
    BLINK = "blink"  # link degraded
    OFF = "off"  # link down

    @classmethod
    def for_link(cls, state: str) -> LedState:
        """The lamp for a link health state by name (``hub.relay.health.LinkState``: up, degraded, down)."""
        return {"up": cls.ON, "degraded": cls.BLINK}.get(state.lower(), cls.OFF)


@dataclass(frozen=True, slots=True)
class PowerState:
    """What powers the hub now. Inputs that are not fitted, or a battery that cannot be read, are None."""

    source: PowerSource
    mains: bool | None = None
    generator: bool | None = None
    battery_percent: float | None = None
    battery_volts: float | None = None
    battery_amps: float | None = None
    """Positive while charging, negative while the battery feeds the Pi."""


@dataclass(frozen=True, slots=True)
class ButtonPressed:
    button: Button


PowerEvent = PowerState | ButtonPressed


Pin = int | str  # a BCM number or any name gpiozero accepts ("GPIO17", "BOARD11")


@dataclass(frozen=True, slots=True)
class PowerConfig:
    """The ``[power]`` table: which pins and which UPS are fitted (all optional)."""

    mains_pin: Pin | None = None
    generator_pin: Pin | None = None
    active_low: bool = True
    """Inputs pulled up and active when pulled to ground, as an opto-coupler or relay contact wires them."""
    ups: str | None = None
    ups_bus: int = 1
    ups_address: int = 0x42
    ups_cells: int = 2
    battery_poll_seconds: float = 30.0
    buttons: Mapping[Button, Pin] = field(default_factory=dict)
    leds: Mapping[str, Pin] = field(default_factory=dict)

    @classmethod
    def from_options(cls, options: Mapping[str, Any], file: str | None = None) -> PowerConfig:
        """Validate a ``[power]`` table; errors name the file, the key and the fix."""
        known = [f.name for f in fields(cls)]
        table = Options(options, "power", file=file, known=known)

        def pin(where: Options, name: str) -> Pin:
            value: object = where.raw(name)
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise where.error(
                    name, f"forventede et BCM-bennummer eller et navn som 'GPIO17', ikke {value!r}"
                )
            return value

        def optional_pin(name: str) -> Pin | None:
            return None if table.raw(name) is None else pin(table, name)

        buttons: dict[Button, Pin] = {}
        button_table = table.table_of("buttons", what="en tabel med knap = ben")
        for name in button_table.table:
            try:
                button = Button(str(name).replace("_", "-"))
            except ValueError:
                names = ", ".join(b.value.replace("-", "_") for b in Button)
                raise button_table.error(name, f"ukendt knap; forventede en af {names}") from None
            buttons[button] = pin(button_table, name)
        led_table = table.table_of("leds", what="en tabel med forbindelsesnavn = ben")
        leds = {str(name): pin(led_table, name) for name in led_table.table}
        ups = table.raw("ups")
        if ups is not None and ups != "waveshare-ina219":
            raise table.error("ups", f"UPS'en {ups!r} understøttes ikke; forventede 'waveshare-ina219'")
        return cls(
            mains_pin=optional_pin("mains_pin"),
            generator_pin=optional_pin("generator_pin"),
            active_low=table.flag("active_low", True),
            ups=ups,
            ups_bus=table.integer("ups_bus", 1, low=0),
            ups_address=table.integer("ups_address", 0x42, low=0x03),
            ups_cells=table.integer("ups_cells", 2, low=1),
            battery_poll_seconds=table.number("battery_poll_seconds", 30.0, low=0.1),
            buttons=buttons,
            leds=leds,
        )


class PowerMonitor:
    """Reads power inputs, battery and buttons; drives link LEDs. Open with ``PowerMonitor.open``.

    ``events()`` yields a ``PowerState`` first and then on every significant change (an input edge, a
    battery percent point, a battery that stops or starts answering), and a ``ButtonPressed`` per press.
    Pending states coalesce (only the newest matters); presses queue up to ``QUEUE_LIMIT`` and the oldest
    is dropped with an error log beyond that. gpiozero calls back from its own threads, so every callback
    reaches the event loop through ``call_soon_threadsafe``. ``aclose()`` stops polling, releases the pins
    and the bus, ends ``events()``, and is idempotent.
    """

    def __init__(self, config: PowerConfig, loop: asyncio.AbstractEventLoop) -> None:
        self.config = config
        self._loop = loop
        self._devices: list[Any] = []
        self._mains: Any = None
        self._generator: Any = None
        self._leds: dict[str, Any] = {}
        self._battery: BatteryReader | None = None
        self._reading: BatteryReading | None = None
        self._pending: deque[PowerEvent] = deque()
        self._wakeup = asyncio.Event()
        self._published: tuple[object, ...] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._battery_failing = False
        self._closed = False

    @classmethod
    async def open(
        cls,
        config: PowerConfig,
        *,
        pin_factory: Any = None,
        bus_factory: Callable[[int], SMBusLike] = open_smbus,
    ) -> PowerMonitor:
        """Claim the pins and the UPS. ``pin_factory``: a gpiozero factory (tests pass a ``MockFactory``)."""
        monitor = cls(config, asyncio.get_running_loop())
        try:
            if (
                config.mains_pin is not None
                or config.generator_pin is not None
                or config.buttons
                or config.leds
            ):
                monitor._open_gpio(pin_factory)
            if config.ups is not None:
                await monitor._open_ups(bus_factory)
        except BaseException:
            await monitor.aclose()
            raise
        monitor._publish_state()
        if monitor._battery is not None:
            monitor._poller = asyncio.create_task(monitor._poll_battery(), name="power-battery-poll")
        return monitor

    @property
    def state(self) -> PowerState:
        mains = None if self._mains is None else bool(self._mains.is_active)
        generator = None if self._generator is None else bool(self._generator.is_active)
        if mains:
            source = PowerSource.MAINS
        elif generator:
            source = PowerSource.GENERATOR
        elif mains is False and self.config.ups is not None:
            source = PowerSource.BATTERY
        else:
            source = PowerSource.UNKNOWN
        reading = self._reading
        return PowerState(
            source=source,
            mains=mains,
            generator=generator,
            battery_percent=None if reading is None else reading.percent,
            battery_volts=None if reading is None else reading.volts,
            battery_amps=None if reading is None else reading.amps,
        )

    async def events(self) -> AsyncIterator[PowerEvent]:
        while True:
            while self._pending:
                yield self._pending.popleft()
            if self._closed:
                return
            self._wakeup.clear()
            await self._wakeup.wait()

    def show_link(self, link: str, state: LedState) -> None:
        """Light the LED configured for ``link``; links without an LED are ignored."""
        led = self._leds.get(link)
        if led is None or self._closed:
            return
        match state:
            case LedState.ON:
                led.on()
            case LedState.OFF:
                led.off()
            case LedState.BLINK:
                led.blink(on_time=0.5, off_time=1.5)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await cancel_and_wait(self._poller)
        for device in reversed(self._devices):
            device.close()
        self._devices.clear()
        if self._battery is not None:
            self._battery.close()
        self._wakeup.set()

    def _open_gpio(self, pin_factory: Any) -> None:
        try:
            import gpiozero  # type: ignore[import-untyped]
        except ImportError as exc:
            raise ConfigError(
                "strømindgangene kræver gpiozero: pip install 'beredt[pi]'", key="power"
            ) from exc
        factory = pin_factory if pin_factory is not None else _default_pin_factory(gpiozero)
        config = self.config

        def claim(key: str, kind: Any, pin: Pin, **kwargs: Any) -> Any:
            try:
                device = kind(pin, pin_factory=factory, **kwargs)
            except Exception as exc:  # gpiozero and its backends (lgpio, RPi.GPIO) raise their own types
                raise ConfigError(f"kan ikke bruge ben {pin!r}: {exc}", key=key) from exc
            self._devices.append(device)
            return device

        for key, pin, attribute in (
            ("power.mains_pin", config.mains_pin, "_mains"),
            ("power.generator_pin", config.generator_pin, "_generator"),
        ):
            if pin is not None:
                device = claim(key, gpiozero.DigitalInputDevice, pin, pull_up=config.active_low)
                device.when_activated = device.when_deactivated = self._from_thread(self._publish_state)
                setattr(self, attribute, device)
        for button, pin in config.buttons.items():
            key = f"power.buttons.{button.value.replace('-', '_')}"
            device = claim(key, gpiozero.Button, pin, bounce_time=0.05)
            device.when_pressed = self._from_thread(functools.partial(self._push, ButtonPressed(button)))
        for link, pin in config.leds.items():
            self._leds[link] = claim(f"power.leds.{link}", gpiozero.LED, pin)

    async def _open_ups(self, bus_factory: Callable[[int], SMBusLike]) -> None:
        config = self.config
        bus = bus_factory(config.ups_bus)
        ups = Ina219Ups(bus, address=config.ups_address, cells=config.ups_cells)
        self._battery = ups
        try:
            await asyncio.wait_for(asyncio.to_thread(ups.calibrate), READ_TIMEOUT)
            self._reading = await asyncio.wait_for(asyncio.to_thread(ups.read), READ_TIMEOUT)
        except (OSError, ProtocolError, TimeoutError) as exc:
            raise ConfigError(
                f"ingen UPS svarer på I2C-adressen {config.ups_address:#04x} på bus {config.ups_bus}: {exc}",
                key="power.ups_address",
            ) from exc

    async def _poll_battery(self) -> None:
        assert self._battery is not None
        while True:
            await asyncio.sleep(self.config.battery_poll_seconds)
            try:
                self._reading = await asyncio.wait_for(asyncio.to_thread(self._battery.read), READ_TIMEOUT)
            except (OSError, ProtocolError, TimeoutError) as exc:
                # A loose HAT or a browned-out monitor: report "battery unknown" and keep polling.
                if not self._battery_failing:
                    log.warning("UPS battery read failed: %r", exc)
                self._battery_failing = True
                self._reading = None
            else:
                if self._battery_failing:
                    log.info("UPS battery answers again")
                self._battery_failing = False
            self._publish_state()

    def _from_thread(self, callback: Callable[[], None]) -> Callable[[], None]:
        def hop() -> None:
            if not self._loop.is_closed():
                self._loop.call_soon_threadsafe(callback)

        return hop

    def _publish_state(self) -> None:
        if self._closed:
            return
        state = self.state
        # Whole percent points and presence are significant; millivolt and milliamp jitter is not.
        key = (
            state.source,
            state.mains,
            state.generator,
            None if state.battery_percent is None else int(state.battery_percent),
            None if state.battery_amps is None else state.battery_amps > 0,
        )
        if key == self._published:
            return
        self._published = key
        if self._pending and isinstance(self._pending[-1], PowerState):
            self._pending[-1] = state
        else:
            self._push(state)
        self._wakeup.set()

    def _push(self, event: PowerEvent) -> None:
        if self._closed:
            return
        if len(self._pending) >= QUEUE_LIMIT:
            log.error(
                "power event queue full: dropping %r; nobody is reading PowerMonitor.events()",
                self._pending[0],
            )
            self._pending.popleft()
        self._pending.append(event)
        self._wakeup.set()


def _default_pin_factory(gpiozero: Any) -> Any:
    # gpiozero warns once per backend it fails to load; the ConfigError below says it all in one line.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gpiozero.exc.PinWarning)
        try:
            gpiozero.Device.ensure_pin_factory()
        except gpiozero.exc.BadPinFactory as exc:
            raise ConfigError(
                "ingen GPIO-driver kunne indlæses: kør på en Raspberry Pi med python3-lgpio (eller"
                " pip install lgpio), eller fjern benene fra [power]",
                key="power",
            ) from exc
    return gpiozero.Device.pin_factory
