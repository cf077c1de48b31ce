"""Power inputs, UPS battery, buttons and LEDs through gpiozero's MockFactory pins and a fake I2C bus."""

from __future__ import annotations

import asyncio
import importlib.metadata
import time
from collections.abc import AsyncIterator, Iterator, Sequence

import gpiozero  # type: ignore[import-untyped]
import pytest
from gpiozero.pins.mock import MockFactory  # type: ignore[import-untyped]
from hypothesis import given
from hypothesis import strategies as st
from packaging.requirements import Requirement

from hub.appliance.power import (
    Button,
    ButtonPressed,
    LedState,
    PowerConfig,
    PowerEvent,
    PowerMonitor,
    PowerSource,
    PowerState,
)
from hub.appliance.ups import INA219_CONFIG_32V_2A, Ina219Ups, SMBusLike, battery_percent, decode_register
from hub.core.errors import ConfigError, ProtocolError
from hub.relay.health import LinkState

DEADLINE = 10.0


class FakeUpsBus:
    """An INA219 at one address on an I2C bus: 16-bit registers, most significant byte first."""

    def __init__(self, address: int = 0x42, volts: float = 7.8, amps: float = -0.5) -> None:
        self.address = address
        self.registers: dict[int, int] = {}
        self.writes: list[tuple[int, list[int]]] = []
        self.error: OSError | None = None
        self.closed = False
        self.set(volts, amps)

    def set(self, volts: float, amps: float) -> None:
        self.registers[0x02] = (round(volts / 0.004) << 3) | 0b10  # conversion-ready bit set
        self.registers[0x04] = round(amps / 0.0001) & 0xFFFF

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int, /) -> list[int]:
        self._check(i2c_addr)
        value = self.registers.get(register, 0)
        return [value >> 8, value & 0xFF][:length]

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: Sequence[int], /) -> None:
        self._check(i2c_addr)
        self.writes.append((register, list(data)))

    def close(self) -> None:
        self.closed = True

    def _check(self, i2c_addr: int) -> None:
        if self.error is not None:
            raise self.error
        if i2c_addr != self.address:
            raise OSError(121, "Remote I/O error")


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    pins = MockFactory()
    yield pins
    pins.reset()


async def next_event(events: AsyncIterator[PowerEvent]) -> PowerEvent:
    return await asyncio.wait_for(anext(events), DEADLINE)


def lit_within(pin: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if getattr(pin, "state", False):
            return True
        time.sleep(0.01)
    return False


def full_config(**changes: object) -> PowerConfig:
    options: dict[str, object] = {
        "mains_pin": 17,
        "generator_pin": "GPIO27",
        "ups": "waveshare-ina219",
        "ups_address": 0x42,
        "battery_poll_seconds": 0.1,
        "buttons": {"all_ok": 5, "need_help": 6, "emergency": 13},
        "leds": {"internet": 22, "lora": 23},
    }
    options.update(changes)
    return PowerConfig.from_options(options, file="beredt.toml")


# -- configuration --------------------------------------------------------------------------------------


def test_config_reads_a_full_power_table() -> None:
    config = full_config()
    assert config.mains_pin == 17
    assert config.generator_pin == "GPIO27"
    assert config.active_low is True
    assert config.buttons == {Button.ALL_OK: 5, Button.NEED_HELP: 6, Button.EMERGENCY: 13}
    assert config.leds == {"internet": 22, "lora": 23}
    assert config.battery_poll_seconds == 0.1
    assert PowerConfig.from_options({}) == PowerConfig()


@pytest.mark.parametrize(
    ("options", "key", "text"),
    [
        ({"mains": 17}, "power.mains", "ukendt nøgle"),
        ({"mains_pin": True}, "power.mains_pin", "BCM-bennummer"),
        ({"buttons": {"panic": 5}}, "power.buttons.panic", "all_ok, need_help, emergency"),
        ({"buttons": 5}, "power.buttons", "tabel"),
        ({"leds": {"lora": 2.5}}, "power.leds.lora", "BCM-bennummer"),
        ({"ups": "apc"}, "power.ups", "waveshare-ina219"),
        ({"battery_poll_seconds": 0}, "power.battery_poll_seconds", ">= 0.1"),
        ({"ups_cells": "two"}, "power.ups_cells", "et heltal >= 1"),
        ({"ups_address": 66.5}, "power.ups_address", "et heltal >= 3"),
        ({"active_low": "no"}, "power.active_low", "true eller false"),
    ],
)
def test_config_errors_name_the_file_and_key(options: dict[str, object], key: str, text: str) -> None:
    with pytest.raises(ConfigError, match=text) as caught:
        PowerConfig.from_options(options, file="beredt.toml")
    assert caught.value.key == key
    assert str(caught.value).startswith(f"beredt.toml: {key}: ")


# -- INA219 -----------------------------------------------------------------------------------------------


def test_battery_percent_is_linear_per_cell_and_clamped() -> None:
    assert battery_percent(8.4, 2) == 100.0
    assert battery_percent(7.2, 2) == 50.0
    assert battery_percent(6.0, 2) == 0.0
    assert battery_percent(9.0, 2) == 100.0
    assert battery_percent(2.5, 1) == 0.0
    assert battery_percent(3.9, 1) == 75.0


def test_ina219_calibrates_and_reads_voltage_and_signed_current() -> None:
    bus = FakeUpsBus(volts=7.8, amps=-0.5)
    ups = Ina219Ups(bus, address=0x42, cells=2)
    ups.calibrate()
    assert bus.writes == [(0x00, [0x3E, 0xEF]), (0x05, [0x10, 0x00])]
    assert INA219_CONFIG_32V_2A == 0x3EEF
    reading = ups.read()
    assert (reading.volts, reading.amps, reading.percent) == (7.8, -0.5, 75.0)
    assert bus.writes[-1] == (0x05, [0x10, 0x00])  # calibration restored before every reading
    bus.set(8.2, 1.25)
    charging = ups.read()
    assert (charging.volts, charging.amps) == (8.2, 1.25)
    ups.close()
    assert bus.closed


def test_ina219_short_read_is_a_protocol_error() -> None:
    class ShortBus(FakeUpsBus):
        def read_i2c_block_data(self, i2c_addr: int, register: int, length: int, /) -> list[int]:
            return [0x12]

    with pytest.raises(ProtocolError, match="expected two bytes"):
        Ina219Ups(ShortBus()).read()


@given(st.lists(st.integers(min_value=-1000, max_value=1000), max_size=4))
def test_any_register_bytes_decode_or_raise_protocol_error(data: list[int]) -> None:
    try:
        value = decode_register(data)
    except ProtocolError:
        return
    assert 0 <= value <= 0xFFFF
    assert [value >> 8, value & 0xFF] == data


# -- the monitor ----------------------------------------------------------------------------------------


async def test_mains_generator_battery_and_buttons(factory: MockFactory) -> None:
    bus = FakeUpsBus()

    def bus_factory(number: int) -> SMBusLike:
        assert number == 1
        return bus

    # Battery polls are kept out of the way (an hour apart): this test is about the pins.
    config = full_config(battery_poll_seconds=3600)
    monitor = await PowerMonitor.open(config, pin_factory=factory, bus_factory=bus_factory)
    events = monitor.events()
    try:
        # Inputs are pulled up and read active when pulled low, as an opto-coupler wires them.
        first = await next_event(events)
        assert first == PowerState(
            source=PowerSource.BATTERY,
            mains=False,
            generator=False,
            battery_percent=75.0,
            battery_volts=7.8,
            battery_amps=-0.5,
        )

        factory.pin(17).drive_low()
        on_mains = await next_event(events)
        assert isinstance(on_mains, PowerState)
        assert (on_mains.source, on_mains.mains) == (PowerSource.MAINS, True)

        factory.pin(17).drive_high()
        factory.pin(27).drive_low()
        on_generator = await next_event(events)
        assert isinstance(on_generator, PowerState)
        assert (on_generator.source, on_generator.mains, on_generator.generator) == (
            PowerSource.GENERATOR,
            False,
            True,
        )
        assert monitor.state.source is PowerSource.GENERATOR

        for pin, button in ((13, Button.EMERGENCY), (6, Button.NEED_HELP), (5, Button.ALL_OK)):
            factory.pin(pin).drive_low()
            assert await next_event(events) == ButtonPressed(button)
            factory.pin(pin).drive_high()
    finally:
        await monitor.aclose()
    assert bus.closed


async def test_battery_poll_reports_changes_and_a_failing_ups(factory: MockFactory) -> None:
    bus = FakeUpsBus(volts=7.8)
    monitor = await PowerMonitor.open(
        PowerConfig.from_options({"ups": "waveshare-ina219", "battery_poll_seconds": 0.1}),
        bus_factory=lambda number: bus,
    )
    events = monitor.events()
    try:
        first = await next_event(events)
        assert isinstance(first, PowerState)
        # No mains-sense input fitted: the source cannot be told, only the battery level.
        assert (first.source, first.battery_percent) == (PowerSource.UNKNOWN, 75.0)
        bus.set(6.6, -0.8)
        low = await next_event(events)
        assert isinstance(low, PowerState)
        assert low.battery_percent == 25.0
        bus.error = OSError(121, "Remote I/O error")
        lost = await next_event(events)
        assert isinstance(lost, PowerState)
        assert (lost.battery_percent, lost.battery_volts, lost.battery_amps) == (None, None, None)
        bus.error = None
        back = await next_event(events)
        assert isinstance(back, PowerState)
        assert back.battery_percent == 25.0
    finally:
        await monitor.aclose()


def test_led_state_follows_link_health() -> None:
    assert [LedState.for_link(s.name) for s in LinkState] == [LedState.OFF, LedState.BLINK, LedState.ON]


async def test_link_leds(factory: MockFactory) -> None:
    monitor = await PowerMonitor.open(
        PowerConfig.from_options({"leds": {"internet": 22, "lora": 23}}), pin_factory=factory
    )
    try:
        monitor.show_link("internet", LedState.ON)
        assert factory.pin(22).state
        monitor.show_link("internet", LedState.OFF)
        assert not factory.pin(22).state
        monitor.show_link("lora", LedState.BLINK)
        # gpiozero's blink thread lights the LED first; wait for that on a thread, with a deadline.
        assert await asyncio.to_thread(lit_within, factory.pin(23), DEADLINE)
        monitor.show_link("satellite", LedState.ON)  # a link without an LED is ignored
    finally:
        await monitor.aclose()
    monitor.show_link("internet", LedState.ON)  # after close: ignored, pins are released


async def test_close_is_idempotent_ends_events_and_releases_pins(factory: MockFactory) -> None:
    config = PowerConfig.from_options({"mains_pin": 17, "buttons": {"emergency": 13}})
    monitor = await PowerMonitor.open(config, pin_factory=factory)
    events = monitor.events()
    assert isinstance(await next_event(events), PowerState)
    await monitor.aclose()
    await monitor.aclose()
    with pytest.raises(StopAsyncIteration):
        await next_event(events)
    again = await PowerMonitor.open(config, pin_factory=factory)
    await again.aclose()


# -- missing or wrong hardware ----------------------------------------------------------------------------


async def test_no_gpio_driver_is_a_clear_config_error() -> None:
    assert gpiozero.Device.pin_factory is None  # no test may install a global factory
    with pytest.raises(ConfigError, match="ingen GPIO-driver kunne indlæses"):
        await PowerMonitor.open(PowerConfig(mains_pin=17))


async def test_missing_i2c_bus_is_a_clear_config_error() -> None:
    with pytest.raises(ConfigError, match=r"I2C-bussen /dev/i2c-99 findes ikke: slå I2C til") as caught:
        await PowerMonitor.open(PowerConfig(ups="waveshare-ina219", ups_bus=99))
    assert caught.value.key == "power.ups_bus"


async def test_ups_not_answering_is_a_clear_config_error_and_frees_the_pins(factory: MockFactory) -> None:
    bus = FakeUpsBus(address=0x43)
    config = PowerConfig(mains_pin=17, ups="waveshare-ina219", ups_address=0x42)
    with pytest.raises(ConfigError, match="ingen UPS svarer på I2C-adressen 0x42 på bus 1") as caught:
        await PowerMonitor.open(config, pin_factory=factory, bus_factory=lambda number: bus)
    assert caught.value.key == "power.ups_address"
    assert bus.closed
    monitor = await PowerMonitor.open(PowerConfig(mains_pin=17), pin_factory=factory)
    await monitor.aclose()


@pytest.mark.parametrize(
    ("config", "key"),
    [
        (PowerConfig(mains_pin=17, generator_pin=17), "power.generator_pin"),
        (PowerConfig(mains_pin="GPIO99"), "power.mains_pin"),
        (PowerConfig(buttons={Button.EMERGENCY: "nowhere"}), "power.buttons.emergency"),
    ],
)
async def test_unusable_pins_name_the_key(factory: MockFactory, config: PowerConfig, key: str) -> None:
    with pytest.raises(ConfigError, match="kan ikke bruge ben") as caught:
        await PowerMonitor.open(config, pin_factory=factory)
    assert caught.value.key == key


# -- Raspberry Pi 5 and Pi 4: the driver the `pi` extra brings, the pins through gpiozero's own selection ---

PI5_REVISION = "d04170"  # Raspberry Pi 5 Model B, 8 GB
PI4_REVISION = "c03115"  # Raspberry Pi 4 Model B, 4 GB, rev 1.5


def pi_extra_on(machine: str) -> set[str]:
    environment = {"extra": "pi", "sys_platform": "linux", "platform_machine": machine}
    return {
        requirement.name
        for requirement in map(Requirement, importlib.metadata.requires("beredt") or [])
        if requirement.marker is not None and requirement.marker.evaluate(environment)
    }


def test_the_pi_extra_brings_lgpio_on_the_pis_architectures() -> None:
    """A Pi 5's GPIO is reachable only through lgpio, and a venv does not see Debian's python3-lgpio."""
    for machine in ("aarch64", "armv7l"):
        assert {"gpiozero", "smbus2", "lgpio"} <= pi_extra_on(machine), machine
    assert "lgpio" not in pi_extra_on("x86_64")  # no GPIO there to drive


@pytest.mark.parametrize(("revision", "model"), [(PI5_REVISION, "5B"), (PI4_REVISION, "4B")])
async def test_power_monitor_on_a_pi5_and_a_pi4_through_gpiozeros_own_factory_choice(
    revision: str, model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No factory passed in: the monitor lets gpiozero choose, as on the Pi (a mock board here)."""
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    monkeypatch.setenv("GPIOZERO_MOCK_REVISION", revision)
    config = PowerConfig.from_options(
        {"mains_pin": 17, "generator_pin": 27, "buttons": {"emergency": 13}, "leds": {"internet": 22}}
    )
    try:
        monitor = await PowerMonitor.open(config)
        events = monitor.events()
        try:
            factory = gpiozero.Device.pin_factory
            assert factory.board_info.model == model
            assert (await next_event(events)).source is PowerSource.UNKNOWN  # type: ignore[union-attr]
            factory.pin(17).drive_low()
            on_mains = await next_event(events)
            assert isinstance(on_mains, PowerState) and on_mains.source is PowerSource.MAINS
            factory.pin(13).drive_low()
            assert await next_event(events) == ButtonPressed(Button.EMERGENCY)
            monitor.show_link("internet", LedState.ON)
            assert lit_within(factory.pin(22), DEADLINE)
        finally:
            await monitor.aclose()
    finally:
        if gpiozero.Device.pin_factory is not None:  # no test may leave a global factory behind
            gpiozero.Device.pin_factory.close()
            gpiozero.Device.pin_factory = None
