"""The drill harness's own parts: the internet switch, the configs it writes, its failures and its CLI."""

from __future__ import annotations

import argparse
import asyncio
import socket
from pathlib import Path

import pytest

from drill import DrillError, topology
from drill.proxy import SwitchableProxy
from drill.runner import Drill
from drill.topology import SITES, SimAddresses, create_hubs, write_configs
from hub.cli.simulate import add_simulate_command
from hub.service import config as hub_config


async def echo_server() -> asyncio.Server:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
        writer.close()

    return await asyncio.start_server(echo, "127.0.0.1", 0)


async def round_trip(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    writer.write(data)
    await writer.drain()
    answer = await asyncio.wait_for(reader.readexactly(len(data)), 5)
    writer.close()
    return answer


async def test_proxy_cuts_open_connections_refuses_new_ones_and_comes_back_on_the_same_port() -> None:
    server = await echo_server()
    proxy = SwitchableProxy(server.sockets[0].getsockname()[:2])
    try:
        await proxy.switch_on()
        port = proxy.port
        assert await round_trip(port, b"hej") == b"hej"

        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"x")
        assert await asyncio.wait_for(reader.readexactly(1), 5) == b"x"
        await proxy.switch_off()
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            writer.write(b"y")
            await writer.drain()
            await asyncio.wait_for(reader.readexactly(1), 5)
        writer.close()
        with pytest.raises(ConnectionRefusedError):
            await round_trip(port, b"nobody home")

        await proxy.switch_on()
        assert proxy.port == port and proxy.on
        assert await round_trip(port, b"igen") == b"igen"
    finally:
        await proxy.aclose()
        await proxy.aclose()  # idempotent
        server.close()
        await server.wait_closed()


async def nothing_arrives(reader: asyncio.StreamReader) -> bool:
    """True if no byte and no end of stream arrive within half a second (a silent path stays silent
    however loaded the machine is, so a short look cannot give a false failure)."""
    try:
        await asyncio.wait_for(reader.read(1), 0.5)
    except TimeoutError:
        return True
    return False


async def test_a_silent_proxy_accepts_and_holds_everything_without_a_reset_until_it_returns() -> None:
    server = await echo_server()
    proxy = SwitchableProxy(server.sockets[0].getsockname()[:2])
    try:
        await proxy.switch_on()
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"x")
        assert await asyncio.wait_for(reader.readexactly(1), 5) == b"x"

        await proxy.go_silent()
        assert proxy.silent and proxy.on
        writer.write(b"y")
        await writer.drain()  # no error: the bytes leave as if all were well
        assert await nothing_arrives(reader)
        late_reader, late_writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", proxy.port), 5
        )  # a new connection opens (no refusal) ...
        late_writer.write(b"z")
        assert await nothing_arrives(late_reader)  # ... and nothing comes through it either

        await proxy.switch_on()
        assert not proxy.silent
        assert await asyncio.wait_for(reader.readexactly(1), 5) == b"y"  # held, then let through
        assert await asyncio.wait_for(late_reader.readexactly(1), 5) == b"z"
        for w in (writer, late_writer):
            w.close()
    finally:
        await proxy.aclose()
        server.close()
        await server.wait_closed()


async def test_a_silent_proxy_switched_off_resets_its_held_connections() -> None:
    server = await echo_server()
    proxy = SwitchableProxy(server.sockets[0].getsockname()[:2])
    try:
        await proxy.switch_on()
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        await proxy.go_silent()
        writer.write(b"y")
        assert await nothing_arrives(reader)
        await proxy.switch_off()
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            await asyncio.wait_for(reader.readexactly(1), 5)
        writer.close()
    finally:
        await proxy.aclose()
        server.close()
        await server.wait_closed()


async def test_proxy_to_a_dead_target_drops_the_connection() -> None:
    server = await echo_server()
    target = server.sockets[0].getsockname()[:2]
    server.close()
    await server.wait_closed()
    proxy = SwitchableProxy(target)
    try:
        await proxy.switch_on()
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        assert await asyncio.wait_for(reader.read(10), 5) == b""
        writer.close()
    finally:
        await proxy.aclose()


def test_every_hub_config_loads_and_names_only_links_it_has(tmp_path: Path) -> None:
    plans = create_hubs(tmp_path)
    for plan in plans.values():
        plan.public_url = f"http://127.0.0.1:{plan.internet_port + 1}"
    sims = SimAddresses(
        mqtt_url="mqtt://127.0.0.1:1",
        radio_ports={site.key: 4403 + n for n, site in enumerate(SITES)},
        sine_devices={"staff": tmp_path / "s1", "relay": tmp_path / "s2", "home1": tmp_path / "s3"},
        modem_devices={"home1": tmp_path / "iridium"},
        mt_url="http://127.0.0.1:2/rockblock/MT",
    )
    write_configs(plans, sims)
    loaded = {key: hub_config.load(plan.config_path) for key, plan in plans.items()}
    kinds = {key: {link.kind for link in config.links} for key, config in loaded.items()}
    assert kinds["staff"] == kinds["home1"] == {"internet", "mqtt", "lora", "sine", "satellite"}
    assert kinds["relay"] == {"internet", "mqtt", "lora", "sine"}
    assert kinds["home2"] == kinds["home3"] == {"internet", "mqtt", "lora"}
    relay = plans["relay"].identity.node_id
    for key in ("home1", "home2", "home3", "staff"):
        assert loaded[key].default_route == (relay,), "the relay is everybody's alternative next hop"
    staff_peers = {p.name: p.links for p in loaded["staff"].peers}
    assert staff_peers["Plejecenter Solgaarden"]["satellite"] == "300234010753370"
    assert staff_peers["Plejehjemmet Egebakken"]["internet"] == plans["home2"].public_url
    home1_peers = {p.name: p.links for p in loaded["home1"].peers}
    assert home1_peers["Aarhus Kommune krisestab"]["satellite"] == "cloud"


async def test_missing_mosquitto_is_a_clear_error_and_leaves_nothing_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOSQUITTO", str(tmp_path / "no-such-broker"))
    drill = Drill(tmp_path / "drill")
    with pytest.raises(DrillError, match=r"mosquitto is not installed.*apt-get install -y mosquitto"):
        await drill.__aenter__()
    assert not drill.hubs and not drill._http


async def test_a_broker_that_dies_at_start_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOSQUITTO", "/bin/false")
    with pytest.raises(DrillError, match="mosquitto exited at start"):
        async with Drill(tmp_path / "drill"):
            pass


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="beredt")
    add_simulate_command(top.add_subparsers(dest="command", required=True))
    return top


def test_simulate_options() -> None:
    args = parser().parse_args(["simulate", "--short", "--stages", "1,2,6", "--keep-running"])
    assert args.short and args.keep_running and args.stages == [1, 2, 6]
    assert parser().parse_args(["simulate", "--stages", "none"]).stages == []
    assert parser().parse_args(["simulate"]).stages is None
    assert parser().parse_args(["simulate", "--silent"]).silent
    assert not parser().parse_args(["simulate"]).silent


@pytest.mark.parametrize(("value", "message"), [("9", "no stage 9"), ("1,x", "expected stage numbers")])
def test_simulate_refuses_unknown_stages(
    value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parser().parse_args(["simulate", "--stages", value])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


async def test_a_hub_that_refuses_its_config_stops_the_drill_with_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(topology.TIMING, "probe_interval", 0)
    with pytest.raises(DrillError, match=r"(?s)hub \w+ exited with 2.*timing\.probe_interval"):
        async with Drill(tmp_path / "drill"):
            pass


def test_free_ports_are_distinct_listenable_and_below_the_ephemeral_range() -> None:
    """Outgoing connections take their local ports from the ephemeral range, so a listening port picked
    from it could be taken before the hub binds it; ours never are."""
    first_ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = [topology.free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    assert all(port < first_ephemeral for port in ports)
    for port in ports[:5]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


@pytest.mark.soak
@pytest.mark.timeout(300)
async def test_a_port_taken_before_the_hub_binds_it_gets_a_new_world(tmp_path: Path) -> None:
    """Another program binds the staff hub's API port between the drill's pick and the hub's start, as a
    concurrent test run can: the drill builds the world again on fresh ports instead of failing."""
    drill = Drill(tmp_path / "drill")
    squatter = socket.socket()

    async def squat() -> int:
        while "staff" not in drill.plans:  # noqa: ASYNC110 - the harness has no event for "ports picked"
            await asyncio.sleep(0)
        port = drill.plans["staff"].api_port
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        return port

    taking = asyncio.create_task(squat())
    try:
        async with drill:
            taken = await taking
            assert drill.start_attempts == 2
            assert drill.plans["staff"].api_port != taken
            assert (await drill.get("staff", "/healthz"))["ok"]
    finally:
        taking.cancel()
        squatter.close()
