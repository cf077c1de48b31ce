"""The pure half of Beredt's MQTT link: topic layout, link addresses, presence payloads and options.

Nothing here touches a socket, a thread or a clock, so the whole layout is tested as plain functions.
Every Beredt site that shares a broker (or a federation of bridged brokers) agrees on this layout, which
is what lets hubs find each other without any other coordination::

    <prefix>/node/<dest id>/in/<sender id>   frames for one node; the last level names the sender
    <prefix>/node/<node id>/presence         retained "online" / "offline" (the last will says offline)
    <prefix>/group/<group>/<sender id>       frames for every member of a group
    <prefix>/all/<sender id>                 frames for every node (``BROADCAST_ADDRESS``)

The sender level is what gives ``Received.source``; it is not trusted (the hub verifies every frame's
signature), but a broker ACL can pin it to the publishing user (see ``deploy/mqtt/acl.example``).
Addresses on this link are node ids (16 lowercase hex digits), ``"*"`` for everyone and
``"group:<name>"`` for a group.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hub.core.errors import ProtocolError
from hub.core.options import Options
from hub.core.transport import BROADCAST_ADDRESS

_NODE_ID = re.compile(r"[0-9a-f]{16}")
_ANY_CASE_NODE_ID = re.compile(r"[0-9a-fA-F]{16}")
_GROUP = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_PREFIX_LEVEL = re.compile(r"[A-Za-z0-9_.-]{1,64}")
GROUP_SCHEME = "group:"

PRESENCE_ONLINE = b"online"
PRESENCE_OFFLINE = b"offline"


@dataclass(frozen=True, slots=True)
class Inbound:
    """A frame topic addressed to us: ``channel`` is ``direct``, ``all`` or ``group:<name>``."""

    sender: str
    channel: str


@dataclass(frozen=True, slots=True)
class Presence:
    """A presence topic: ``node`` says whether it is online."""

    node: str


def is_node_id(text: str) -> bool:
    return _NODE_ID.fullmatch(text) is not None


class TopicLayout:
    """Builds and parses the topics of one node under one prefix."""

    def __init__(self, prefix: str, own_id: str) -> None:
        self.prefix = prefix
        self.own_id = own_id

    def inbox_filter(self) -> str:
        return f"{self.prefix}/node/{self.own_id}/in/+"

    def group_filter(self, group: str) -> str:
        return f"{self.prefix}/group/{group}/+"

    def all_filter(self) -> str:
        return f"{self.prefix}/all/+"

    def presence(self, node_id: str) -> str:
        return f"{self.prefix}/node/{node_id}/presence"

    def publish_topic(self, dest: str) -> str:
        """The topic a frame for link address ``dest`` is published to; ``ProtocolError`` if malformed."""
        if dest == BROADCAST_ADDRESS:
            return f"{self.prefix}/all/{self.own_id}"
        if dest.startswith(GROUP_SCHEME):
            group = dest[len(GROUP_SCHEME) :]
            if _GROUP.fullmatch(group) is None:
                raise ProtocolError(f"bad group name in address {dest!r}")
            return f"{self.prefix}/group/{group}/{self.own_id}"
        if not is_node_id(dest):
            raise ProtocolError(f"address {dest!r} is not a node id (16 hex digits), '*' or 'group:<name>'")
        return f"{self.prefix}/node/{dest}/in/{self.own_id}"

    def parse(self, topic: str) -> Inbound | Presence:
        """What an arriving topic means to this node; ``ProtocolError`` for anything outside the layout."""
        head = self.prefix + "/"
        if not topic.startswith(head):
            raise ProtocolError(f"topic {topic!r} is outside prefix {self.prefix!r}")
        levels = topic[len(head) :].split("/")
        match levels:
            case ["node", dest, "in", sender] if dest == self.own_id and is_node_id(sender):
                return Inbound(sender, "direct")
            case ["node", node, "presence"] if is_node_id(node):
                return Presence(node)
            case ["group", group, sender] if _GROUP.fullmatch(group) and is_node_id(sender):
                return Inbound(sender, GROUP_SCHEME + group)
            case ["all", sender] if is_node_id(sender):
                return Inbound(sender, "all")
        raise ProtocolError(f"topic {topic!r} is not in the Beredt layout for node {self.own_id}")


def parse_presence(payload: bytes) -> bool:
    """True for online. An empty payload is a cleared retained message: the node is gone."""
    if payload == PRESENCE_ONLINE:
        return True
    if payload in (PRESENCE_OFFLINE, b""):
        return False
    raise ProtocolError(f"presence payload {payload[:32]!r} is neither 'online' nor 'offline'")


@dataclass(frozen=True, slots=True)
class Broker:
    host: str
    port: int
    tls: bool

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class MqttOptions:
    """The validated ``[links.<name>]`` table of an MQTT link."""

    brokers: tuple[Broker, ...]
    client_id: str
    prefix: str = "beredt"
    username: str | None = None
    password: str | None = None
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    keepalive: int = 15
    groups: tuple[str, ...] = ()
    peers: tuple[str, ...] = ()
    mtu: int = 16384
    session_expiry: int = 86400
    """Seconds the broker keeps our session (subscriptions and queued QoS 1 frames) while we are away."""
    connect_timeout: float = 5.0
    reconnect_max: float = 30.0
    publish_timeout: float = 10.0
    receive_queue: int = 10_000
    """Frames waiting for the hub before the link stops reading and lets the broker hold the rest."""


_KNOWN = {
    "kind", "brokers", "client_id", "username", "password", "tls_ca", "tls_cert", "tls_key", "keepalive",
    "prefix", "groups", "peers", "mtu", "session_expiry", "connect_timeout", "reconnect_max",
    "publish_timeout", "receive_queue",
}  # fmt: skip


def _broker(table: Options, text: object) -> Broker:
    expected = "forventede 'mqtt://vært:port' eller 'mqtts://vært:port'"
    try:
        parts = urlsplit(text) if isinstance(text, str) else None
        port = parts.port if parts else None
    except ValueError as exc:
        raise table.error("brokers", f"{expected}, ikke {text!r} ({exc})") from exc
    if (
        parts is None
        or parts.scheme not in ("mqtt", "mqtts")
        or not parts.hostname
        or parts.path not in ("", "/")
    ):
        raise table.error("brokers", f"{expected}, ikke {text!r}")
    tls = parts.scheme == "mqtts"
    return Broker(parts.hostname, port if port is not None else (8883 if tls else 1883), tls)


def parse_options(name: str, options: Mapping[str, Any], node_id: str) -> MqttOptions:
    """Validate the options of link ``name``; ``ConfigError`` names the key and what it expects."""
    table = Options(options, f"links.{name}", known=_KNOWN)
    raw = table.listing("brokers", what="en liste af broker-adresser som 'mqtt://vært:1883'")
    if not raw:
        raise table.error("brokers", "forventede en liste af mindst én broker-adresse som 'mqtt://vært:1883'")
    brokers = tuple(_broker(table, text) for text in raw)
    prefix = table.text("prefix", "beredt")
    if not all(_PREFIX_LEVEL.fullmatch(level) for level in prefix.split("/")):
        raise table.error(
            "prefix", f"forventede emneniveauer af bogstaver, cifre, '_', '.', '-', ikke {prefix!r}"
        )
    paths = {key: table.text(key) for key in ("tls_ca", "tls_cert", "tls_key")}
    if (paths["tls_cert"] is None) != (paths["tls_key"] is None):
        raise table.error("tls_cert", "tls_cert og tls_key hører sammen (et klientcertifikat og dets nøgle)")
    if any(paths.values()) and not any(b.tls for b in brokers):
        raise table.error("brokers", "TLS-filerne er sat, men ingen broker bruger mqtts://")
    username, password = table.text("username"), table.text("password")
    if password is not None and username is None:
        raise table.error("username", "en adgangskode kræver et brugernavn (username)")
    defaults = MqttOptions((), "")
    return MqttOptions(
        brokers=brokers,
        client_id=table.text("client_id", f"beredt-{node_id}"),
        prefix=prefix,
        username=username,
        password=password,
        tls_ca=Path(paths["tls_ca"]) if paths["tls_ca"] else None,
        tls_cert=Path(paths["tls_cert"]) if paths["tls_cert"] else None,
        tls_key=Path(paths["tls_key"]) if paths["tls_key"] else None,
        keepalive=table.integer("keepalive", defaults.keepalive, low=1, high=65535),
        groups=table.names(
            "groups", valid=_GROUP.fullmatch, what="gruppenavne (bogstaver, cifre, '_', '.', '-')"
        ),
        peers=tuple(
            p.lower() for p in table.names("peers", valid=_ANY_CASE_NODE_ID.fullmatch, what="node-id'er")
        ),
        mtu=table.integer("mtu", defaults.mtu, low=64, high=65536),
        session_expiry=table.integer("session_expiry", defaults.session_expiry, low=0, high=2**32 - 1),
        connect_timeout=table.number("connect_timeout", defaults.connect_timeout, low=0.1, high=120),
        reconnect_max=table.number("reconnect_max", defaults.reconnect_max, low=0.1, high=3600),
        publish_timeout=table.number("publish_timeout", defaults.publish_timeout, low=0.1, high=600),
        receive_queue=table.integer("receive_queue", defaults.receive_queue, low=16, high=1_000_000),
    )
