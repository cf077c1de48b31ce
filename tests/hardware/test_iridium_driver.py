"""The 9603 driver against the simulated 9603 and provider cloud over a real pty."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from hardware import iridium_sbd as sbd
from hardware.iridium_driver import Iridium9603Driver, RetryPolicy
from hub.core.errors import DeviceGone, ModemError, ProtocolError
from simulators.iridium import Iridium9603
from simulators.iridium_cloud import IridiumCloud
from simulators.pty_device import PtyDevice

NOW = 1_760_000_000.0  # 2025-10-09: after PLAUSIBLE_EPOCH, before the 2026 tick rollover
FAST = RetryPolicy(soon_initial=0.02, soon_cap=0.05, later_initial=0.05, later_cap=0.1, give_up_after=5.0)


@dataclass
class Rig:
    cloud: IridiumCloud
    model: Iridium9603
    device: PtyDevice
    driver: Iridium9603Driver


async def open_rig(cloud: IridiumCloud, path: Path, imei: str, serial: int, retry: RetryPolicy = FAST) -> Rig:
    model = Iridium9603(imei, cloud)
    cloud.attach(model, serial)
    device = PtyDevice(model, path, baud=19200)
    device.start()
    driver = await Iridium9603Driver.open(str(path), 19200, retry=retry, session_deadline=10.0)
    return Rig(cloud, model, device, driver)


@pytest.fixture
async def cloud() -> AsyncIterator[IridiumCloud]:
    cloud = IridiumCloud(session_delay=0.02, network_time=lambda: NOW, seed=1)
    await cloud.start()
    yield cloud
    await cloud.aclose()


@pytest.fixture
async def rig(cloud: IridiumCloud, tmp_path: Path) -> AsyncIterator[Rig]:
    rig = await open_rig(cloud, tmp_path / "iridium0", "300234010753370", 1)
    yield rig
    await rig.driver.aclose()
    await rig.device.aclose()


async def test_initialise_reads_imei_and_sets_up_ring_alerts(rig: Rig) -> None:
    assert rig.driver.imei == "300234010753370"
    assert not rig.model.echo
    assert rig.model.ring_alerts and rig.model.registration == 1
    # Every command ends in CR alone, as the ISU AT Command Reference has it.
    assert rig.device.received == b"ATE0V1Q0\rAT&K0\rAT&D0\rAT+SBDD0\rAT+SBDMTA=1\rAT+SBDAREG=1\rAT+CGSN\r"


async def test_send_writes_mo_with_checksum_and_clears_the_buffer(rig: Rig) -> None:
    report = await rig.driver.send(b"\x01hello satellite")
    assert report.result.mo_ok and report.failed == () and report.mt == ()
    assert rig.cloud.mo_log == [(rig.driver.imei, b"\x01hello satellite")]
    assert b"AT+SBDWB=16\r\x01hello satellite" + sbd.checksum(b"\x01hello satellite") in rig.device.received
    assert rig.model.mo is None  # cleared, so the next mailbox check cannot send it twice
    await rig.driver.check_mailbox()
    assert len(rig.cloud.mo_log) == 1


async def test_mt_traffic_comes_with_the_session_until_queue_is_empty(rig: Rig) -> None:
    for index in range(3):
        rig.cloud.queue_mt(rig.driver.imei, bytes([1, index]) * 10)
    report = await rig.driver.send(b"\x01status")
    assert report.mt == tuple(bytes([1, index]) * 10 for index in range(3))
    assert report.result.mt_queued == 2  # the MO session's own answer; two more sessions fetched the rest
    assert not rig.cloud.account(rig.driver.imei).mt_queue


async def test_no_service_and_rf_drop_are_retried_with_back_off(rig: Rig) -> None:
    rig.cloud.fail_next(rig.driver.imei, 32, 18)
    report = await rig.driver.send(b"\x01urgent")
    assert report.failed == (32, 18)
    assert report.result.mo_ok
    assert rig.cloud.mo_log == [(rig.driver.imei, b"\x01urgent")]
    assert rig.driver.sessions >= 3


async def test_antenna_fault_is_not_retried(rig: Rig) -> None:
    rig.cloud.fail_next(rig.driver.imei, 33, 0)
    with pytest.raises(ModemError, match="antenna fault") as caught:
        await rig.driver.send(b"\x01x")
    assert caught.value.code == 33
    assert rig.cloud.mo_log == []


async def test_retries_give_up_after_the_policy_deadline(cloud: IridiumCloud, tmp_path: Path) -> None:
    short = RetryPolicy(soon_initial=0.02, soon_cap=0.02, later_initial=0.2, later_cap=0.2, give_up_after=0.3)
    rig = await open_rig(cloud, tmp_path / "iridium1", "300234010753371", 2, retry=short)
    try:
        cloud.service = False
        with pytest.raises(ModemError, match=r"gave up after .* no network service") as caught:
            await rig.driver.send(b"\x01x")
        assert caught.value.code == 32
    finally:
        await rig.driver.aclose()
        await rig.device.aclose()


async def test_bad_write_checksum_is_reported_with_code_2(rig: Rig) -> None:
    rig.model.corrupt_next_write = True
    with pytest.raises(ModemError, match="bad checksum") as caught:
        await rig.driver.send(b"\x01x")
    assert caught.value.code == 2
    assert (await rig.driver.send(b"\x01y")).result.mo_ok


async def test_bad_read_checksum_is_read_again(rig: Rig) -> None:
    rig.cloud.queue_mt(rig.driver.imei, b"\x01mt")
    rig.model.corrupt_next_read = True
    report = await rig.driver.send(b"\x01mo")
    assert report.mt == (b"\x01mt",) and report.mt_dropped == 0
    rig.model.corrupt_next_read = True
    with pytest.raises(ProtocolError, match="checksum mismatch"):
        await rig.driver.read_mt()


async def test_oversize_mo_is_refused_before_touching_the_modem(rig: Rig) -> None:
    before = len(rig.device.received)
    with pytest.raises(ProtocolError, match="1-340"):
        await rig.driver.send(b"x" * 341)
    assert len(rig.device.received) == before


async def test_ring_alert_is_answered_with_sbdixa(rig: Rig) -> None:
    rig.cloud.queue_mt(rig.driver.imei, b"\x01from the staff")
    await rig.driver.wait_ring(deadline=10)
    report = await rig.driver.check_mailbox(answer_ring=True)
    assert report.mt == (b"\x01from the staff",)
    assert b"AT+SBDIXA\r" in rig.device.received


async def test_a_session_answers_a_pending_ring_so_no_second_check_is_needed(rig: Rig) -> None:
    rig.cloud.service = False  # the ring is raised, but the first attempt finds no service
    rig.cloud.queue_mt(rig.driver.imei, b"\x01waiting")
    assert not await rig.driver.ring_pending()  # no service: the gateway could not ring
    rig.cloud.service = True
    rig.model.ring()
    await rig.driver.wait_ring(deadline=10)
    assert await rig.driver.ring_pending()
    rig.cloud.fail_next(rig.driver.imei, 18)
    assert (await rig.driver.check_mailbox(answer_ring=True)).failed == (18,)
    assert await rig.driver.ring_pending()  # a failed session leaves the ring unanswered
    report = await rig.driver.send(b"\x01outgoing")
    assert report.mt == (b"\x01waiting",)
    assert not await rig.driver.ring_pending()


async def test_ring_alert_crossing_sbdrb_neither_breaks_the_read_nor_is_lost(rig: Rig) -> None:
    rig.cloud.queue_mt(rig.driver.imei, b"\x01first")
    await rig.driver.wait_ring(deadline=10)
    rig.model.ring_before_next_read = True  # SBDRING would precede the binary SBDRB answer
    report = await rig.driver.check_mailbox(answer_ring=True)
    assert report.mt == (b"\x01first",) and report.mt_dropped == 0
    assert b"AT+SBDMTA=0\r" in rig.device.received  # ring alerts were off for the read
    assert rig.driver.sessions == 2  # the ring's RA flag led to one more session
    assert not await rig.driver.ring_pending()
    assert rig.model.ring_alerts


async def test_signal_and_network_time(rig: Rig) -> None:
    assert await rig.driver.signal() == 5
    assert await rig.driver.signal(fast=False) == 5
    assert await rig.driver.network_time() == pytest.approx(NOW, abs=0.1)
    rig.cloud.service = False
    assert await rig.driver.signal() == 0
    assert await rig.driver.network_time() is None


async def test_unplug_mid_session_raises_device_gone_and_replug_recovers(rig: Rig) -> None:
    rig.cloud.session_delay = 0.5
    rig.device.unplug_on(b"AT+SBDIX")
    with pytest.raises(DeviceGone):
        await rig.driver.send(b"\x01lost")
    assert rig.driver.modem.gone.is_set()
    rig.cloud.session_delay = 0.02
    rig.device.replug()
    await rig.driver.modem.reopen(deadline=10)
    await rig.driver.initialise()
    assert (await rig.driver.send(b"\x01again")).result.mo_ok


async def test_modem_to_modem_forwarding_by_rb_prefix(rig: Rig, cloud: IridiumCloud, tmp_path: Path) -> None:
    other = await open_rig(cloud, tmp_path / "iridium2", "300234010753372", 2)
    try:
        await rig.driver.send(sbd.rb_prefix(2) + b"\x01to modem two")
        await other.driver.wait_ring(deadline=10)
        report = await other.driver.check_mailbox(answer_ring=True)
        assert report.mt == (b"\x01to modem two",)
        assert cloud.forwarded == [(1, 2, b"\x01to modem two")]
    finally:
        await other.driver.aclose()
        await other.device.aclose()


# -- the provider's MT API --------------------------------------------------------------------------


async def test_mt_api_answers_like_the_provider(rig: Rig) -> None:
    async def post(**params: str) -> str:
        async with aiohttp.ClientSession() as http, http.post(rig.cloud.mt_url, data=params) as response:
            return await response.text()

    imei = rig.driver.imei
    assert await post(imei=imei, username="beredt", password="wrong", data="01") == (
        "FAILED,10,Invalid login credentials"
    )
    assert (await post(imei="1", username="beredt", password="secret", data="01")).startswith("FAILED,11,")
    assert (await post(imei=imei, username="beredt", password="secret", data="zz")).startswith("FAILED,14,")
    assert (await post(imei=imei, username="beredt", password="secret", data="00" * 271)).startswith(
        "FAILED,15,"
    )
    assert (await post(imei=imei, username="beredt", password="secret")).startswith("FAILED,16,")
    assert (await post(imei=imei, username="beredt", password="secret", data="0102")).startswith("OK,")
    await asyncio.wait_for(rig.driver.wait_ring(), 10)
    assert (await rig.driver.check_mailbox(answer_ring=True)).mt == (b"\x01\x02",)


async def test_a_modem_left_in_numeric_mode_by_another_client_is_set_up(
    cloud: IridiumCloud, tmp_path: Path
) -> None:
    model = Iridium9603("300234010753371", cloud)
    cloud.attach(model, 3)
    model.verbose = False  # ATV0 from an earlier client: results are "0\r"
    device = PtyDevice(model, tmp_path / "numeric", baud=19200)
    device.start()
    driver = await Iridium9603Driver.open(str(device.link_path), 19200, retry=FAST, session_deadline=10.0)
    try:
        assert model.verbose and not model.echo and driver.imei == "300234010753371"
        assert (await driver.send(b"\x01after ATV0")).result.mo_ok
    finally:
        await driver.aclose()
        await device.aclose()
