"""The hub's TOML configuration, validated at start.

Every error names the file, the key and what is expected, so a planner on a generator-powered Pi can
fix it without reading code. Paths are relative to the config file's folder. Link tables are passed to
their transport modules whole (``kind`` picks the module), which validate their own options. With no
file at all, ``DEFAULT_CONFIG`` gives a hub that runs on localhost with no broker and no radio.
"""

from __future__ import annotations

import os
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.appliance.power import PowerConfig
from hub.core.errors import ConfigError
from hub.core.frame import NODE_ID_SIZE, Priority
from hub.relay.policy import DEFAULT_ORDER, Policy
from hub.relay.roster import Role, parse_role
from hub.relay.settings import LinkConfig, PeerConfig, Timing

DEFAULT_DATA_DIR = "~/.local/share/beredt"
DEFAULT_CONFIG = f"""
[node]
name = "{socket.gethostname().replace('"', "")}"
role = "staff"
data_dir = "{DEFAULT_DATA_DIR}"

[api]
listen = "127.0.0.1:8470"

[links.internet]
kind = "internet"
listen = "127.0.0.1:8471"
"""

_SECTIONS = {"node", "api", "links", "peers", "routes", "policy", "store", "timing", "log", "power"}


@dataclass(frozen=True, slots=True)
class HubConfig:
    name: str
    role: Role
    data_dir: Path
    api_host: str = "127.0.0.1"
    api_port: int = 8470
    links: tuple[LinkConfig, ...] = ()
    peers: tuple[PeerConfig, ...] = ()
    routes: Mapping[bytes, tuple[bytes, ...]] = field(default_factory=dict)
    default_route: tuple[bytes, ...] = ()
    policy: Policy = Policy()
    max_messages: int = 200_000
    max_bytes: int = 512 * 1024 * 1024
    timing: Timing = Timing()
    log_level: str = "INFO"
    power: PowerConfig | None = None
    power_report_to: bytes | None = None
    path: Path | None = None

    @property
    def identity_path(self) -> Path:
        return self.data_dir / "identity.key"

    @property
    def roster_path(self) -> Path:
        return self.data_dir / "roster.toml"

    @property
    def store_path(self) -> Path:
        return self.data_dir / "store.db"


class _Reader:
    """Typed access to one TOML table with errors that name file and key."""

    def __init__(self, table: Mapping[str, Any], file: str, prefix: str) -> None:
        self.table, self.file, self.prefix = table, file, prefix
        self.used: set[str] = set()

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(message, file=self.file, key=f"{self.prefix}.{key}" if self.prefix else key)

    def get(
        self, key: str, kind: type | tuple[type, ...], default: Any = None, *, required: bool = False
    ) -> Any:
        self.used.add(key)
        if key not in self.table:
            if required:
                raise self.error(key, "is required")
            return default
        value = self.table[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            names = " or ".join(k.__name__.replace("str", "string").replace("int", "integer") for k in kinds)
            raise self.error(key, f"expected {names}, got {type(value).__name__} {value!r}")
        return value

    def finish(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            raise self.error(unknown[0], f"unknown key; known keys here: {', '.join(sorted(self.used))}")


def parse_node_id(value: object, file: str, key: str) -> bytes:
    text = str(value)
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != NODE_ID_SIZE:
        raise ConfigError(
            f"expected a node id of 16 hex digits (see 'beredt id'), got {text!r}", file=file, key=key
        )
    return raw


def _priority(reader: _Reader, key: str, default: Priority) -> Priority:
    name = reader.get(key, str, default.name.lower().replace("_", "-"))
    try:
        return Priority[name.upper().replace("-", "_")]
    except KeyError:
        choices = ", ".join(p.name.lower().replace("_", "-") for p in Priority)
        raise reader.error(key, f"unknown priority {name!r}; expected one of {choices}") from None


def _listen(reader: _Reader, key: str, default: str) -> tuple[str, int]:
    value = reader.get(key, str, default)
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise reader.error(key, f"expected 'host:port' such as '127.0.0.1:8470', got {value!r}")
    return host, int(port)


def load(path: Path | None) -> HubConfig:
    """Read and validate ``path``, or the embedded default when ``path`` is None."""
    if path is None:
        return parse(tomllib.loads(DEFAULT_CONFIG), file="<embedded default>", base=Path.cwd())
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(
            "file not found; create one with 'beredt init --config FILE'", file=str(path)
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=str(path)) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=str(path)) from exc
    config = parse(data, file=str(path), base=path.resolve().parent)
    return HubConfig(**{f: getattr(config, f) for f in config.__dataclass_fields__ if f != "path"}, path=path)


def parse(data: Mapping[str, Any], *, file: str, base: Path) -> HubConfig:
    top = _Reader(data, file, "")
    for section in _SECTIONS:
        top.get(section, list if section == "peers" else dict, {} if section != "peers" else [])
    top.finish()

    node = _Reader(data.get("node", {}), file, "node")
    name = node.get("name", str, required=True)
    role = parse_role(node.get("role", str, "staff"), file=file, key="node.role")
    data_dir = Path(os.path.expanduser(node.get("data_dir", str, "data")))
    node.finish()

    api = _Reader(data.get("api", {}), file, "api")
    api_host, api_port = _listen(api, "listen", "127.0.0.1:8470")
    api.finish()

    links = []
    for link_name, table in data.get("links", {}).items():
        if not isinstance(table, dict):
            raise ConfigError(
                "expected a table such as [links.internet]", file=file, key=f"links.{link_name}"
            )
        kind = _Reader(table, file, f"links.{link_name}").get("kind", str, required=True)
        links.append(LinkConfig(link_name, kind, table))

    link_names = {link.name for link in links}
    peers = []
    for index, table in enumerate(data.get("peers", [])):
        peer = _Reader(table, file, f"peers[{index}]")
        node_id = parse_node_id(peer.get("node", str, required=True), file, f"peers[{index}].node")
        addresses = peer.get("links", dict, {})
        for link_name, address in addresses.items():
            if link_name not in link_names:
                raise peer.error(
                    f"links.{link_name}", f"no link named {link_name!r}; defined: {sorted(link_names)}"
                )
            if not isinstance(address, str):
                raise peer.error(f"links.{link_name}", "expected the peer's address on that link as a string")
        peers.append(PeerConfig(node_id, peer.get("name", str, node_id.hex()), dict(addresses)))
        peer.finish()

    routes: dict[bytes, tuple[bytes, ...]] = {}
    default_route: tuple[bytes, ...] = ()
    for dest, hops in data.get("routes", {}).items():
        if not isinstance(hops, list):
            raise ConfigError("expected a list of next-hop node ids", file=file, key=f"routes.{dest}")
        parsed = tuple(parse_node_id(h, file, f"routes.{dest}") for h in hops)
        for hop in parsed:
            if hop not in {p.node_id for p in peers}:
                raise ConfigError(
                    f"next hop {hop.hex()} is not in [[peers]]; add it with its link addresses",
                    file=file,
                    key=f"routes.{dest}",
                )
        if dest == "default":
            default_route = parsed
        else:
            routes[parse_node_id(dest, file, f"routes.{dest}")] = parsed

    policy_table = _Reader(data.get("policy", {}), file, "policy")
    order = policy_table.get("order", list, list(DEFAULT_ORDER))
    policy = Policy(
        order=tuple(str(o) for o in order),
        metered_min=_priority(policy_table, "metered_min_priority", Priority.NORMAL),
        paid_min=_priority(policy_table, "paid_min_priority", Priority.URGENT),
        fan_out_min=_priority(policy_table, "fan_out_min_priority", Priority.LIFE_SAFETY),
    )
    policy_table.finish()

    store = _Reader(data.get("store", {}), file, "store")
    max_messages = store.get("max_messages", int, 200_000)
    max_bytes = int(store.get("max_megabytes", (int, float), 512) * 1024 * 1024)
    store.finish()

    timing_table = _Reader(data.get("timing", {}), file, "timing")
    defaults = Timing()
    timing = Timing(
        **{
            key: timing_table.get(
                key, (int, float) if key != "default_ttl_minutes" else int, getattr(defaults, key)
            )
            for key in defaults.__dataclass_fields__
        }
    )
    timing_table.finish()
    for key in ("hop_ack_timeout", "retry_initial", "retry_cap", "probe_interval"):
        if getattr(timing, key) <= 0:
            raise ConfigError("must be greater than zero", file=file, key=f"timing.{key}")

    log_table = _Reader(data.get("log", {}), file, "log")
    level = log_table.get("level", str, "INFO").upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise log_table.error("level", "expected one of debug, info, warning, error")
    log_table.finish()

    power = power_report_to = None
    if "power" in data:
        options = dict(data["power"])
        report_to = options.pop("report_to", None)
        if report_to is not None:
            power_report_to = parse_node_id(report_to, file, "power.report_to")
        power = PowerConfig.from_options(options, file=file)

    return HubConfig(
        power=power,
        power_report_to=power_report_to,
        name=name,
        role=role,
        data_dir=data_dir if data_dir.is_absolute() else base / data_dir,
        api_host=api_host,
        api_port=api_port,
        links=tuple(links),
        peers=tuple(peers),
        routes=routes,
        default_route=default_route,
        policy=policy,
        max_messages=max_messages,
        max_bytes=max_bytes,
        timing=timing,
        log_level=level,
    )
