"""A UPS HAT's battery, read through its INA219 current and voltage monitor over I2C.

Waveshare's UPS HATs for the Raspberry Pi carry a TI INA219 (datasheet SBOS448): ``Ina219Ups`` programs
its 32 V / 2 A setting and reads the pack voltage and the current (positive while charging, negative
while the battery feeds the Pi), and ``battery_percent`` turns the voltage into a state of charge.
The reader is blocking, as I2C transfers are: ``hub.appliance.power`` calls it from a worker thread with a
deadline. ``open_smbus`` opens the bus with smbus2 (the optional ``pi`` extra) and turns the usual
failures into a ``ConfigError`` that says what to fix; tests pass a fake bus instead (``SMBusLike``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from hub.core.errors import ConfigError, ProtocolError


class SMBusLike(Protocol):
    """The two transfers the UPS reader uses, as ``smbus2.SMBus`` offers them (tests pass a fake bus)."""

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int, /) -> list[int]: ...

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: Sequence[int], /) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class BatteryReading:
    volts: float
    amps: float
    percent: float


# INA219 registers (TI datasheet SBOS448, section 8.6); 16-bit, most significant byte first on the wire.
INA219_CONFIG = 0x00
INA219_BUS_VOLTAGE = 0x02
INA219_CURRENT = 0x04
INA219_CALIBRATION = 0x05
# The 32 V / 2 A setting Waveshare's UPS HATs use: 32 V range, gain /8 (320 mV), 12-bit ADCs averaging 32
# samples, shunt and bus continuous; calibration 4096 with the 0.1 ohm shunt gives 100 uA per current bit.
INA219_CONFIG_32V_2A = (0x01 << 13) | (0x03 << 11) | (0x0D << 7) | (0x0D << 3) | 0x07
INA219_CALIBRATION_32V_2A = 4096
INA219_CURRENT_LSB_A = 0.0001
CELL_EMPTY_VOLTS = 3.0
CELL_FULL_VOLTS = 4.2


def battery_percent(volts: float, cells: int) -> float:
    """State of charge from the pack voltage, linear between 3.0 V and 4.2 V per Li-ion cell."""
    per_cell = volts / cells
    fraction = (per_cell - CELL_EMPTY_VOLTS) / (CELL_FULL_VOLTS - CELL_EMPTY_VOLTS)
    return round(min(max(fraction, 0.0), 1.0) * 100, 1)


def decode_register(data: Sequence[int]) -> int:
    """The 16-bit value of a two-byte register read; anything else is a ``ProtocolError``."""
    if len(data) != 2 or not all(isinstance(b, int) and 0 <= b <= 0xFF for b in data):
        raise ProtocolError(f"INA219 register read returned {list(data)!r}, expected two bytes")
    return (data[0] << 8) | data[1]


class Ina219Ups:
    """Battery voltage and current of a UPS HAT through its INA219 monitor (Waveshare UPS HAT (B): 0x42,
    two cells; UPS HAT (C): 0x43, one cell). Blocking: call it from a worker thread."""

    def __init__(self, bus: SMBusLike, *, address: int = 0x42, cells: int = 2) -> None:
        self.bus = bus
        self.address = address
        self.cells = cells

    def calibrate(self) -> None:
        self._write(INA219_CONFIG, INA219_CONFIG_32V_2A)
        self._write(INA219_CALIBRATION, INA219_CALIBRATION_32V_2A)

    def read(self) -> BatteryReading:
        # The INA219 forgets its calibration after a brown-out (exactly when batteries matter): set it
        # again before every reading, as Waveshare's own driver does.
        self._write(INA219_CALIBRATION, INA219_CALIBRATION_32V_2A)
        volts = (self._read(INA219_BUS_VOLTAGE) >> 3) * 0.004
        raw_current = self._read(INA219_CURRENT)
        amps = (raw_current - 0x10000 if raw_current & 0x8000 else raw_current) * INA219_CURRENT_LSB_A
        return BatteryReading(
            volts=round(volts, 3), amps=round(amps, 4), percent=battery_percent(volts, self.cells)
        )

    def close(self) -> None:
        self.bus.close()

    def _read(self, register: int) -> int:
        return decode_register(self.bus.read_i2c_block_data(self.address, register, 2))

    def _write(self, register: int, value: int) -> None:
        self.bus.write_i2c_block_data(self.address, register, [value >> 8, value & 0xFF])


class BatteryReader(Protocol):
    def read(self) -> BatteryReading: ...

    def close(self) -> None: ...


def open_smbus(bus: int) -> SMBusLike:
    """Open ``/dev/i2c-<bus>`` with smbus2, mapping the usual failures to a ``ConfigError`` with the fix."""
    try:
        from smbus2 import SMBus
    except ImportError as exc:
        raise ConfigError("power.ups kræver smbus2: pip install 'beredt[pi]'", key="power.ups") from exc
    try:
        return SMBus(bus)
    except FileNotFoundError as exc:
        raise ConfigError(
            f"I2C-bussen /dev/i2c-{bus} findes ikke: slå I2C til (raspi-config nonint do_i2c 0) og genstart",
            key="power.ups_bus",
        ) from exc
    except PermissionError as exc:
        raise ConfigError(
            f"ingen adgang til /dev/i2c-{bus}: føj brugeren beredt til gruppen i2c", key="power.ups_bus"
        ) from exc
