"""The API socket: private from the start, reachable through a deep folder, never shared by two hubs."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from aiohttp import web

from hub.api import local
from hub.core.errors import ConfigError


@pytest.fixture
def deep(tmp_path: Path) -> Path:
    folder = tmp_path / ("a-rather-long-folder-name-" * 3) / "data"
    folder.mkdir(parents=True)
    path = folder / local.SOCKET_NAME
    assert len(str(path)) > 108, "deeper than a socket address can hold"
    return path


async def test_a_socket_in_a_deep_folder_is_private_and_answers(deep: Path) -> None:
    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"hello": await request.json()})

    app = web.Application()
    app.router.add_post("/v1/echo", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.SockSite(runner, local.bind_private(deep)).start()
    try:
        assert deep.stat().st_mode & 0o777 == 0o600  # noqa: ASYNC240 - a test checking its own file
        assert [p.name for p in deep.parent.iterdir()] == [local.SOCKET_NAME], "no staging folder left"
        status, answer = await asyncio.to_thread(local.request, deep, "POST", "/v1/echo", {"x": 1})
        assert (status, answer) == (200, {"hello": {"x": 1}})
        with pytest.raises(ConfigError, match="another hub already serves"):
            local.bind_private(deep)
    finally:
        await runner.cleanup()


def test_a_stale_socket_is_replaced_and_a_missing_hub_is_explained(tmp_path: Path) -> None:
    path = tmp_path / local.SOCKET_NAME
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # a hub that died: its socket file stays behind, nobody answers
    with pytest.raises(local.Unreachable, match="start den med 'beredt run'"):
        local.request(path, "GET", "/healthz")
    local.bind_private(path).close()
    path.unlink()
    with pytest.raises(local.Unreachable, match="ingen hub svarer"):
        local.request(path, "GET", "/healthz")
