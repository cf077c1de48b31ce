"""The options of an internet link: the validated ``[links.<name>]`` table of a ``kind = "internet"`` link.

``parse_options`` checks every key (unknown keys, types, ranges, the ``listen`` address, URLs, that TLS
files exist, that ``public_url`` is an address a peer could reach) and raises ``ConfigError`` naming the
key and what was expected, so a typo stops the hub at start. ``base_url`` is the one test of what counts
as a peer's address on this link, shared by the option check and the transport; ``answer_address`` turns
a sender's reply-to into the address its hop acks go to. Nothing here opens a socket.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yarl import URL

from hub.core.errors import ConfigError
from transports.internet_codec import MAX_MTU


@dataclass(frozen=True, slots=True)
class InternetOptions:
    """The validated ``[links.<name>]`` table of an internet link."""

    host: str
    port: int
    public_url: str | None = None
    timeout: float = 5.0
    batch_max: int = 64
    batch_delay: float = 0.002
    receive_queue: int = 10_000
    mtu: int = 16384
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None
    tls_verify: bool = True


def base_url(text: str) -> URL | None:
    """``text`` as a URL if it is an http(s) URL with a host (a peer's address), else None."""
    try:
        url = URL(text)
    except (ValueError, TypeError):
        return None
    return url if url.scheme in ("http", "https") and url.host else None


def is_wildcard(host: str) -> bool:
    """True for the "every interface" addresses (``0.0.0.0``, ``::``): a bind, never a destination."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower() == "localhost"


def answer_address(reply_to: str, remote: str | None) -> str | None:
    """Where to answer a POST that named ``reply_to`` and came from the TCP peer ``remote``.

    A sender that listens on a wildcard and has no ``public_url`` cannot know which of its addresses a
    peer reaches; it names the wildcard, meaning "the address my connection comes from". That host is
    taken from the connection (which the TCP handshake vouches for), the scheme, port and path from the
    header. Any other reply-to is used as given. None when ``reply_to`` is not an http(s) base URL.
    """
    url = base_url(reply_to)
    if url is None or url.host is None or not is_wildcard(url.host) or not remote:
        return None if url is None else reply_to
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # an IPv4 peer of a dual-stack socket
    return str(url.with_host(str(address)))


def _option(options: Mapping[str, Any], name: str, key: str, kinds: tuple[type, ...], expected: str) -> Any:
    value = options[key]
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise ConfigError(f"expected {expected}, got {value!r}", key=f"links.{name}.{key}")
    return value


_EXPECTED = {
    "kind": "the link kind",
    "listen": '"host:port"',
    "public_url": "an http(s) URL",
    "timeout": "seconds > 0",
    "batch_max": "an integer >= 1",
    "batch_delay": "seconds, 0..1",
    "receive_queue": "an integer >= 1",
    "mtu": f"an integer 64..{MAX_MTU}",
    "tls_cert": "a PEM certificate path",
    "tls_key": "a PEM key path",
    "tls_ca": "a PEM CA path",
    "tls_verify": "true or false",
}


def parse_options(name: str, options: Mapping[str, Any], base_dir: Path) -> InternetOptions:
    """Validate ``[links.<name>]``; relative TLS paths are taken from ``base_dir``."""
    unknown = sorted(set(options) - set(_EXPECTED))
    if unknown:
        raise ConfigError(
            f"unknown option(s) {', '.join(unknown)}; expected some of {', '.join(_EXPECTED)}",
            key=f"links.{name}.{unknown[0]}",
        )
    if "listen" not in options:
        raise ConfigError(
            'missing; expected "host:port" to serve on, e.g. "0.0.0.0:8471"', key=f"links.{name}.listen"
        )
    listen = _option(options, name, "listen", (str,), '"host:port"')
    host, _, port_text = listen.rpartition(":")
    host = host.strip("[]")
    if not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ConfigError(f'expected "host:port" (port 0..65535), got {listen!r}', key=f"links.{name}.listen")
    values: dict[str, Any] = {"host": host, "port": int(port_text)}
    numbers: list[tuple[str, tuple[type, ...], float, float]] = [
        ("timeout", (int, float), 0.0, 3600.0),
        ("batch_delay", (int, float), 0.0, 1.0),
        ("batch_max", (int,), 1, 10_000),
        ("receive_queue", (int,), 1, 10_000_000),
        ("mtu", (int,), 64, MAX_MTU),
    ]
    for key, kinds, low, high in numbers:
        if key in options:
            value = _option(options, name, key, kinds, _EXPECTED[key])
            if not low <= value <= high or (key == "timeout" and value == 0):
                raise ConfigError(f"expected {_EXPECTED[key]}, got {value!r}", key=f"links.{name}.{key}")
            values[key] = value
    if "public_url" in options:
        public_url = _option(options, name, "public_url", (str,), _EXPECTED["public_url"])
        url = base_url(public_url)
        if url is None or url.host is None:
            raise ConfigError(f"expected an http(s) URL, got {public_url!r}", key=f"links.{name}.public_url")
        if is_wildcard(url.host) or (is_wildcard(host) and _is_loopback(url.host)):
            raise ConfigError(
                f"{public_url} is not an address other hubs can reach: set it to this hub's address as its "
                'peers see it (e.g. "https://plejecenter.example.dk:8471"), or leave public_url out to let '
                "peers answer to the address this hub's connections come from",
                key=f"links.{name}.public_url",
            )
        values["public_url"] = public_url
    for key in ("tls_cert", "tls_key", "tls_ca"):
        if key in options:
            path = Path(_option(options, name, key, (str,), _EXPECTED[key]))
            path = path if path.is_absolute() else base_dir / path
            if not path.is_file():
                raise ConfigError(
                    f"file {path} not found; expected {_EXPECTED[key]}", key=f"links.{name}.{key}"
                )
            values[key] = path
    if ("tls_cert" in values) != ("tls_key" in values):
        raise ConfigError("tls_cert and tls_key go together to serve HTTPS", key=f"links.{name}.tls_cert")
    if "tls_verify" in options:
        values["tls_verify"] = _option(options, name, "tls_verify", (bool,), _EXPECTED["tls_verify"])
    return InternetOptions(**values)
