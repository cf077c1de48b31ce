"""The hub's TOML configuration, validated at start.

Every table is read through ``hub.core.options.Options``, so every error names the file, the key and
what is expected, and a planner on a generator-powered Pi can fix it without reading code. Paths are
relative to the config file's folder. Link tables are passed to their transport modules whole (``kind``
picks the module), which validate their own options the same way. With no file at all,
``DEFAULT_CONFIG`` gives a hub that runs on localhost with no broker and no radio.
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
from hub.citizens.settings import CitizensConfig
from hub.core.at_rest import DEFAULT_RETENTION_DAYS, MAX_RETENTION_DAYS, Retention
from hub.core.errors import ConfigError
from hub.core.frame import NODE_ID_SIZE, Kind, Priority
from hub.core.kinds.roster import MAX_CONTACT_MINUTES, parse_root_public
from hub.core.options import Options
from hub.core.reading_errors import os_error, toml_where
from hub.relay.policy import DEFAULT_ORDER, Policy
from hub.relay.roster import Role, valid_group_name
from hub.relay.settings import LinkConfig, PeerConfig, Timing, TrustSettings
from transports.internet_settings import base_url, is_loopback

DEFAULT_DATA_DIR = "~/.local/share/beredt"
DEFAULT_CONFIG: Mapping[str, Any] = {
    "node": {"name": socket.gethostname(), "role": "staff", "data_dir": DEFAULT_DATA_DIR},
    "api": {"listen": "127.0.0.1:8470"},
    "links": {"internet": {"kind": "internet", "listen": "127.0.0.1:8471"}},
}

_SECTIONS = {
    "node", "api", "links", "peers", "routes", "policy", "store", "timing", "log", "power", "trust",
    "personal_alarm", "citizens", "console", "logbook", "retention",
}  # fmt: skip
DEFAULT_ANNOUNCE_INTERVAL = 600.0  # seconds; the hub holding the root key re-broadcasts the roster


@dataclass(frozen=True, slots=True)
class HubConfig:
    name: str
    role: Role
    data_dir: Path
    api_host: str = "127.0.0.1"
    api_port: int = 8470
    api_socket: Path | None = None  # None: api.sock in the data folder
    api_hosts: tuple[str, ...] = ()
    api_tls_cert: Path | None = None
    api_tls_key: Path | None = None
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
    alarm_report_to: bytes | None = None
    """Where personal alarms this hub's radio hears go (``[personal_alarm] report_to``); None: here."""
    trust: TrustSettings = TrustSettings()
    citizens: CitizensConfig | None = None  # the register of power-dependent citizens (docs/citizens.md)
    rollcall_retention_days: float = 90.0  # closed roll-calls are deleted from console.db after this
    retention: Retention = Retention()  # days personal content is kept at rest, per kind ([retention])
    logbook_live_days: float = 7.0  # log-book entries older than this move from console.db to the archive
    witness_interval_minutes: float = 60.0  # how often the log book's head goes to its witnesses
    logbook_received_seconds: float = 60.0  # the longest entries of received messages are held (LogBook.hold)
    logbook_sync_minutes: float = 5.0  # how often those entries are made durable (LogBook.sync)
    board_save_minutes: float = 30.0  # how often the status board's changed rows are saved to console.db
    witnesses: tuple[str, ...] | None = None  # roster names; None: the staff hubs and one more peer
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

    @property
    def lock_path(self) -> Path:
        """What ``beredt run`` holds (``flock``) while it runs on this data folder."""
        return self.data_dir / ".lock"

    @property
    def socket_path(self) -> Path:
        """The API's Unix socket, which the CLI uses (``hub.api.local``)."""
        return self.api_socket or self.data_dir / "api.sock"


def parse_node_id(value: object, file: str, key: str) -> bytes:
    text = str(value)
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != NODE_ID_SIZE:
        raise ConfigError(
            f"forventede et node-id på 16 hex-cifre (se 'beredt id'), ikke {text!r}", file=file, key=key
        )
    return raw


def _priority(options: Options, key: str, default: Priority) -> Priority:
    names = [p.name.lower().replace("_", "-") for p in Priority]
    name = options.choice(key, default.name.lower().replace("_", "-"), names)
    return Priority[name.upper().replace("-", "_")]


def _retention(table: Options) -> Retention:
    """``days`` for every kind, and a kind's own number of days under its name (``text = 30``)."""
    days = table.integer("days", DEFAULT_RETENTION_DAYS, low=1, high=MAX_RETENTION_DAYS)
    by_kind = {  # every kind read, so that a misspelt one is refused with the nearest name
        kind.name.lower(): table.integer(kind.name.lower(), days, low=1, high=MAX_RETENTION_DAYS)
        for kind in Kind
    }
    table.finish()
    return Retention(days, by_kind)


ANNOUNCE_KEYS = frozenset({"announce", "announce_hours"})
"""Keys of a ``[links.<name>]`` table the hub reads itself (route announcements), not its transport."""
PAID_KINDS = frozenset({"satellite"})


def _announce_gap(table: Options, kind: str) -> float | None:
    """``announce = "changes"`` on a paid link: tell the neighbours there our routes, one announcement to
    a neighbour at most every ``announce_hours``; absent or ``"never"``: no announcement ever spends
    credit there."""
    mode = table.choice("announce", "never", ("never", "changes"))
    hours = table.number("announce_hours", 24.0, low=1, high=168)
    if kind not in PAID_KINDS and ANNOUNCE_KEYS & set(table.table):
        raise table.error(
            "announce",
            "gælder kun en betalt forbindelse (satellite); andre forbindelser fortæller altid naboerne"
            " om ruterne",
        )
    if mode == "never":
        if "announce_hours" in table.table:
            raise table.error("announce_hours", 'bruges kun sammen med announce = "changes"')
        return None
    return hours * 3600.0


def _check_internet_reachable(links: list[LinkConfig], peers: list[PeerConfig], file: str) -> None:
    """Refuse an internet link that only this machine can reach while its peers are elsewhere.

    A hub listening on loopback without ``public_url`` tells its peers to answer to 127.0.0.1: a peer on
    another machine would send its hop acks to itself, and every delivery to it would fall back to
    end-to-end acks. The transport checks the link's own options; this needs the peers too."""
    for link in links:
        if link.kind != "internet" or "public_url" in link.options:
            continue
        host = str(link.options.get("listen", "")).rpartition(":")[0].strip("[]")
        if not is_loopback(host):
            continue
        for peer in peers:
            url = base_url(peer.links.get(link.name, ""))
            if url is not None and url.host is not None and not is_loopback(url.host):
                raise ConfigError(
                    f"lytter på {host}, som kun denne maskine når, men naboen {peer.name!r} er på "
                    f'{url.host}: lyt på "0.0.0.0:PORT" (naboerne svarer så til den adresse, hubbens '
                    "forbindelser kommer fra), eller sæt public_url til den adresse, naboerne når hubben på",
                    file=file,
                    key=f"links.{link.name}.listen",
                )


def load(path: Path | None) -> HubConfig:
    """Read and validate ``path``, or the embedded default when ``path`` is None."""
    if path is None:
        return parse(DEFAULT_CONFIG, file="<embedded default>", base=Path.cwd())
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(
            "filen findes ikke; lav en med 'beredt init --config FIL'", file=str(path)
        ) from None
    except OSError as exc:
        raise ConfigError(f"kan ikke læses: {os_error(exc)}", file=str(path)) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_toml_error(str(exc)), file=str(path)) from exc
    config = parse(data, file=str(path), base=path.resolve().parent)
    return HubConfig(**{f: getattr(config, f) for f in config.__dataclass_fields__ if f != "path"}, path=path)


def _toml_error(parser: str) -> str:
    """The parser's complaint for a person: where it is, in Danish (the parser words it in English)."""
    return (
        f"ikke gyldig TOML{toml_where(parser)}; ret syntaksen dér: tekst i anførselstegn "
        '(navn = "Solbakken"), tabeller i firkantede parenteser ([node]), hver nøgle én gang'
    )


def parse(data: Mapping[str, Any], *, file: str, base: Path) -> HubConfig:
    top = Options(data, file=file, known=_SECTIONS)

    node = top.table_of("node", what="en tabel [node]")
    name = node.required_text("name", 'hubbens navn, fx name = "Plejecenter Solbakken"')
    if ":" in name:
        raise node.error("name", f"{name!r} indeholder ':', som adskiller delene af et nodekort; brug '-'")
    role = Role(node.choice("role", "staff", [r.value for r in Role]))
    data_dir = Path(os.path.expanduser(node.text("data_dir", "data")))
    node.finish()

    api = top.table_of("api", what="en tabel [api]")
    api_host, api_port = api.address("listen", "127.0.0.1:8470", example="127.0.0.1:8470")
    api_socket = api.text("socket")
    api_hosts = api.names(
        "hosts",
        valid=lambda h: h and "/" not in h and ":" not in h,
        what='værtsnavne som "beredt.solbakken.local"',
    )
    tls_cert, tls_key = api.text("tls_cert"), api.text("tls_key")
    if (tls_cert is None) != (tls_key is None):
        raise api.error(
            "tls_cert", "tls_cert og tls_key hører sammen: angiv begge PEM-filer eller ingen af dem"
        )
    api.finish()

    links = []
    link_tables = top.table_of("links", what="tabeller som [links.internet]")
    for link_name in link_tables.table:
        table = link_tables.table_of(link_name, what="en tabel som [links.internet]")
        kind = table.required_text(
            "kind", "forbindelsens slags: memory, internet, mqtt, lora, sine eller satellite"
        )
        announce_gap = _announce_gap(table, kind)
        options = {key: value for key, value in table.table.items() if key not in ANNOUNCE_KEYS}
        links.append(LinkConfig(link_name, kind, options, announce_gap))

    link_names = {link.name for link in links}
    peers = []
    for index, item in enumerate(top.listing("peers", what="[[peers]]-tabeller")):
        if not isinstance(item, Mapping):
            raise top.error(f"peers[{index}]", "forventede en [[peers]]-tabel")
        peer = Options(item, f"peers[{index}]", file=file)
        node_id = parse_node_id(
            peer.required_text("node", "naboens node-id (se 'beredt id')"), file, peer.key("node")
        )
        addresses = peer.table_of("links", what="en tabel med forbindelsesnavn = adresse")
        for link_name in addresses.table:
            if link_name not in link_names:
                raise addresses.error(
                    link_name, f"ingen forbindelse hedder {link_name!r}; defineret: {sorted(link_names)}"
                )
            addresses.text(link_name, what="naboens adresse på den forbindelse som tekst")
        groups = peer.names("groups", valid=valid_group_name, what='gruppenavne som "distrikt-syd"')
        contact = peer.integer("contact_minutes", 0, low=0, high=MAX_CONTACT_MINUTES)
        peer_name = peer.text("name", node_id.hex())
        peers.append(PeerConfig(node_id, peer_name, dict(addresses.table), groups, contact))
        peer.finish()

    _check_internet_reachable(links, peers, file)

    routes: dict[bytes, tuple[bytes, ...]] = {}
    default_route: tuple[bytes, ...] = ()
    route_table = top.table_of("routes", what="en tabel med modtager = [næste hop]")
    for dest in route_table.table:
        hops = route_table.listing(dest, what="en liste af node-id'er for næste hop")
        parsed = tuple(parse_node_id(h, file, route_table.key(dest)) for h in hops)
        for hop in parsed:
            if hop not in {p.node_id for p in peers}:
                raise route_table.error(
                    dest, f"næste hop {hop.hex()} står ikke i [[peers]]; tilføj det med dets adresser"
                )
        if dest == "default":
            default_route = parsed
        else:
            routes[parse_node_id(dest, file, route_table.key(dest))] = parsed

    policy_table = top.table_of("policy", what="en tabel [policy]")
    order = policy_table.names("order", valid=bool, what="forbindelsesnavne eller -slags") or DEFAULT_ORDER
    policy = Policy(
        order=tuple(order),
        metered_min=_priority(policy_table, "metered_min_priority", Priority.NORMAL),
        paid_min=_priority(policy_table, "paid_min_priority", Priority.URGENT),
        fan_out_min=_priority(policy_table, "fan_out_min_priority", Priority.LIFE_SAFETY),
    )
    policy_table.finish()

    store = top.table_of("store", what="en tabel [store]")
    max_messages = store.integer("max_messages", 200_000, low=1)
    max_bytes = int(store.number("max_megabytes", 512, above=0) * 1024 * 1024)
    store.finish()

    timing_table = top.table_of("timing", what="en tabel [timing]")
    defaults = Timing()
    timing = Timing(
        hop_ack_timeout=timing_table.number("hop_ack_timeout", defaults.hop_ack_timeout, above=0),
        retry_initial=timing_table.number("retry_initial", defaults.retry_initial, above=0),
        retry_cap=timing_table.number("retry_cap", defaults.retry_cap, above=0),
        e2e_ack_delay=timing_table.number("e2e_ack_delay", defaults.e2e_ack_delay, low=0),
        probe_interval=timing_table.number("probe_interval", defaults.probe_interval, above=0),
        default_ttl_minutes=timing_table.integer("default_ttl_minutes", defaults.default_ttl_minutes, low=1),
        commit_window=timing_table.number("commit_window", defaults.commit_window, low=0, high=60),
    )
    timing_table.finish()

    trust = _trust(top.table_of("trust", what="en tabel [trust]"), base)

    log_table = top.table_of("log", what="en tabel [log]")
    level = log_table.text("level", "INFO").upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise log_table.error(
            "level", f"forventede en af debug, info, warning, error, ikke {level.lower()!r}"
        )
    log_table.finish()

    retention = _retention(top.table_of("retention", what="en tabel [retention]"))

    console = top.table_of("console", what="en tabel [console]")
    rollcall_retention_days = console.number("rollcall_retention_days", 90.0, above=0)
    logbook_live_days = console.number("logbook_live_days", 7.0, above=0)
    board_save_minutes = console.number("board_save_minutes", 30.0, low=1.0, high=24 * 60.0)
    console.finish()

    logbook = top.table_of("logbook", what="en tabel [logbook]")
    witness_minutes = logbook.number("witness_interval_minutes", 60.0, above=0)
    received_seconds = logbook.number("received_hold_seconds", 60.0, low=0.0, high=3600.0)
    sync_minutes = logbook.number("sync_minutes", 5.0, low=1.0, high=60.0)
    witnesses = (
        logbook.names(
            "witnesses", valid=lambda n: bool(n.strip()), what='hubnavne fra rosteren, fx "Aarhus krisestab"'
        )
        if "witnesses" in logbook.table
        else None
    )
    logbook.finish()

    power = power_report_to = None
    if "power" in data:
        power_table = top.table_of("power", what="en tabel [power]")
        report_to = power_table.raw("report_to")
        if report_to is not None:
            power_report_to = parse_node_id(report_to, file, "power.report_to")
        power = PowerConfig.from_options(
            {k: v for k, v in power_table.table.items() if k != "report_to"}, file=file
        )

    alarm_table = top.table_of("personal_alarm", what="en tabel [personal_alarm]")
    alarm_to = alarm_table.raw("report_to")
    alarm_report_to = None if alarm_to is None else parse_node_id(alarm_to, file, "personal_alarm.report_to")
    alarm_table.finish()

    citizens = None
    if "citizens" in data:
        citizens = CitizensConfig.from_options(
            top.table_of("citizens", what="en tabel [citizens]").table, file
        )

    return HubConfig(
        alarm_report_to=alarm_report_to,
        citizens=citizens,
        power=power,
        power_report_to=power_report_to,
        name=name,
        role=role,
        data_dir=data_dir if data_dir.is_absolute() else base / data_dir,
        api_host=api_host,
        api_port=api_port,
        api_socket=None if api_socket is None else base / os.path.expanduser(api_socket),
        api_hosts=tuple(api_hosts),
        api_tls_cert=None if tls_cert is None else base / os.path.expanduser(tls_cert),
        api_tls_key=None if tls_key is None else base / os.path.expanduser(tls_key),
        links=tuple(links),
        peers=tuple(peers),
        routes=routes,
        default_route=default_route,
        policy=policy,
        max_messages=max_messages,
        max_bytes=max_bytes,
        timing=timing,
        log_level=level,
        trust=trust,
        rollcall_retention_days=rollcall_retention_days,
        retention=retention,
        logbook_live_days=logbook_live_days,
        witness_interval_minutes=witness_minutes,
        logbook_received_seconds=received_seconds,
        logbook_sync_minutes=sync_minutes,
        board_save_minutes=board_save_minutes,
        witnesses=witnesses,
    )


def _trust(table: Options, base: Path) -> TrustSettings:
    root = table.text("root", what="rodens offentlige nøgle, som 'beredt root init' skriver")
    if root is not None:
        try:
            parse_root_public(root)
        except ValueError as exc:
            raise table.error("root", str(exc)) from None
    root_key = table.text("root_key", what="rodnøglens fil (på hubben, der godkender tilmeldinger)")
    if root_key is not None and root is None:
        raise table.error(
            "root_key", "root_key kræver root = nøglens offentlige halvdel ('beredt root init')"
        )
    default_interval = DEFAULT_ANNOUNCE_INTERVAL if root_key is not None else 0.0
    interval = table.number("announce_interval", default_interval, low=0)
    entry = table.raw("entry")
    if entry is None:
        entry = []
    if not isinstance(entry, list) or not all(isinstance(e, str) for e in entry):
        raise table.error("entry", 'forventede en liste af adresser, fx entry = ["http://relae-nord:8471"]')
    for address in entry:
        if base_url(address) is None:
            raise table.error("entry", f"{address!r} er ingen http(s)-adresse som http://relae-nord:8471")
    table.finish()
    return TrustSettings(
        root=root,
        root_key=None if root_key is None else base / os.path.expanduser(root_key),
        announce_interval=interval,
        entry=tuple(entry),
    )
