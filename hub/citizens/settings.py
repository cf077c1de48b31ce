"""The ``[citizens]`` table of a hub's config: which team covers which district, where to evacuate to.

[citizens]
alarm_hours = 2            # alarm the coordinator when a citizen not yet seen has this little left
retention_days = 30        # incident data is kept this long after an outage ends, then deleted
[citizens.teams]           # district = the node ids (16 hex digits) of the team's hubs
"Nord" = ["0123456789abcdef"]
[citizens.centres]         # district = its evacuation centres' hubs, nearest first (the first is asked)
"Nord" = ["fedcba9876543210"]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hub.core.options import Options

NODE_HEX = 16


@dataclass(frozen=True, slots=True)
class CitizensConfig:
    teams: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    centres: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    alarm_hours: float = 2.0
    retention_days: float = 30.0
    access_log_days: float = 365.0
    tick_interval: float = 2.0  # seconds between looks for new outages, alarms and retention
    ttl_minutes: int = 24 * 60  # lists and visits expire after a day undelivered

    @classmethod
    def from_options(cls, options: Mapping[str, Any], file: str | None = None) -> CitizensConfig:
        table = Options(options, "citizens", file=file)
        teams = _districts(table.table_of("teams", what="en tabel med distrikt = [node-id'er]"))
        centres = _districts(table.table_of("centres", what="en tabel med distrikt = [node-id'er]"))
        alarm = table.number("alarm_hours", 2.0, low=0.0, high=72.0)
        retention = table.number("retention_days", 30.0, low=0.0, high=3650.0)
        access = table.number("access_log_days", 365.0, low=1.0, high=3650.0)
        tick = table.number("tick_interval", 2.0, above=0.0, high=60.0)
        table.finish()
        return cls(teams, centres, alarm, retention, access, tick)


def _districts(table: Options) -> dict[str, tuple[str, ...]]:
    out = {}
    for district in table.table:
        nodes = table.names(
            district,
            valid=lambda v: len(v) == NODE_HEX and all(c in "0123456789abcdef" for c in v.lower()),
            what="node-id'er på 16 hex-cifre (se 'beredt id')",
        )
        out[str(district)] = tuple(n.lower() for n in nodes)
    return out
