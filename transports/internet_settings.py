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

from hub.core.options import Options
from transports.internet_codec import MAX_MTU


@dataclass(frozen=True, slots=True)
class InternetOptions:
    """The validated ``[links.<name>]`` table of an internet link."""

    host: str
    port: int
    public_url: str | None = None
    timeout: float = 5.0
    batch_max: int = 64
    batch_delay: float = 0.005
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


def is_loopback(host: str) -> bool:
    """True for an address only this machine reaches (``127.0.0.0/8``, ``::1``, ``localhost``)."""
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


_KNOWN = (
    "kind", "listen", "public_url", "timeout", "batch_max", "batch_delay", "receive_queue", "mtu",
    "tls_cert", "tls_key", "tls_ca", "tls_verify",
)  # fmt: skip


def parse_options(name: str, options: Mapping[str, Any], base_dir: Path) -> InternetOptions:
    """Validate ``[links.<name>]``; relative TLS paths are taken from ``base_dir``."""
    table = Options(options, f"links.{name}", known=_KNOWN)
    host, port = table.address("listen", example="0.0.0.0:8471")
    public_url = table.text("public_url")
    if public_url is not None:
        url = base_url(public_url)
        if url is None or url.host is None:
            raise table.error("public_url", f"forventede en http(s)-adresse, ikke {public_url!r}")
        if is_wildcard(url.host) or (is_wildcard(host) and is_loopback(url.host)):
            raise table.error(
                "public_url",
                f"{public_url} er ikke en adresse, andre hubber kan nå: sæt den til hubbens adresse,"
                ' som dens naboer ser den (fx "https://plejecenter.example.dk:8471"), eller udelad'
                " public_url, så naboerne svarer til den adresse, hubbens forbindelser kommer fra",
            )
    paths: dict[str, Path] = {}
    for key in ("tls_cert", "tls_key", "tls_ca"):
        text = table.text(key, what="stien til en PEM-fil")
        if text is not None:
            path = Path(text) if Path(text).is_absolute() else base_dir / text
            if not path.is_file():
                raise table.error(key, f"filen {path} findes ikke; forventede stien til en PEM-fil")
            paths[key] = path
    if ("tls_cert" in paths) != ("tls_key" in paths):
        raise table.error("tls_cert", "tls_cert og tls_key hører sammen for at tilbyde HTTPS")
    defaults = InternetOptions("", 0)
    return InternetOptions(
        host=host,
        port=port,
        public_url=public_url,
        timeout=table.number("timeout", defaults.timeout, above=0, high=3600, what="sekunder > 0"),
        batch_max=table.integer("batch_max", defaults.batch_max, low=1, high=10_000),
        batch_delay=table.number("batch_delay", defaults.batch_delay, low=0, high=1, what="sekunder, 0..1"),
        receive_queue=table.integer("receive_queue", defaults.receive_queue, low=1, high=10_000_000),
        mtu=table.integer("mtu", defaults.mtu, low=64, high=MAX_MTU),
        tls_cert=paths.get("tls_cert"),
        tls_key=paths.get("tls_key"),
        tls_ca=paths.get("tls_ca"),
        tls_verify=table.flag("tls_verify", defaults.tls_verify),
    )
