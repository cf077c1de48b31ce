"""A satellite webhook learns a modem's IMEI only when the provider's secret vouches for the POST: without
``webhook_token`` anyone who reaches the webhook may name any IMEI, and a fresh frame a roster member
signed (seen on a radio channel, say) posted with the poster's IMEI must not steer that member's traffic
(and the paid announcements to it) there. A real hub with its webhook, POSTs as the provider makes them."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from hub.core.frame import Kind
from hub.core.identity import Identity
from hub.relay.hub import Hub
from hub.relay.settings import LinkConfig
from simulators.iridium_cloud import hs256_token
from tests.inproc import eventually, hub_config, running

SECRET = "shared webhook secret"
POSTER_IMEI = "300234010999999"
HOME = Identity.generate("Plejehjemmet Fjord", "care-home")


async def _post_fresh_frame(hub: Hub, momsn: int, secret: str | None) -> int:
    """POST a frame the care home signed just now, with zero hops, as an MO from ``POSTER_IMEI``."""
    frame = HOME.sign(Kind.TEXT, hub.node_id, b"Alt vel her", created=int(time.time()), ttl_minutes=60)
    fields = {
        "imei": POSTER_IMEI,
        "momsn": str(momsn),
        "transmit_time": datetime.now(UTC).strftime("%y-%m-%d %H:%M:%S"),
        "data": frame.encode().hex(),
    }
    if secret is not None:
        fields["JWT"] = hs256_token(fields, secret)
    url = hub.links.transports["sat"].receiver.url  # type: ignore[attr-defined]
    async with aiohttp.ClientSession() as http, http.post(url, data=fields) as response:
        return response.status


async def _learned_after_a_post(folder: Path, token: str | None) -> str | None:
    link = {"kind": "satellite", "webhook_listen": "127.0.0.1:0"}
    if token is not None:
        link["webhook_token"] = token
    config = hub_config(folder, "relay", "", links=(LinkConfig("sat", "satellite", link),))
    identity = Identity.generate("Relae", "staff")
    async with running(config, identity) as hub:
        hub.roster.add(HOME.card)
        assert await _post_fresh_frame(hub, 1, token) == 200
        await eventually(lambda: hub.inbound.accepted >= 1, 60)
        return hub.links.address_of(HOME.node_id, "sat")


async def test_a_webhook_learns_the_imei_only_when_the_provider_secret_vouches_for_it(tmp_path: Path) -> None:
    (tmp_path / "vouched").mkdir()
    (tmp_path / "open").mkdir()
    assert await _learned_after_a_post(tmp_path / "vouched", SECRET) == POSTER_IMEI
    assert await _learned_after_a_post(tmp_path / "open", None) is None
