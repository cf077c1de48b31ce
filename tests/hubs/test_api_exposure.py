"""Attacks on a running hub's API from outside its process: no token, another user, a web page, DNS rebinding.

Two real ``beredt run`` hubs: the attacks aim at a care home's hub, whose messages would go to the staff hub.
The helpers reach the hubs over their API sockets, as the CLI does; each attack uses the network port
(``[api] listen``) as a tablet, an app or a browser would, or comes from another local user.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.hubproc import REPO, HubProcess, staff_and_care_home

_ATTACKER = """
import json, socket, sys, urllib.request, urllib.error
sock_path, url, token_file, to = sys.argv[1:5]
out = {}
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sock_path)
    s.sendall(b'POST /v1/messages HTTP/1.1\\r\\nHost: localhost\\r\\nContent-Type: application/json\\r\\n'
              b'Content-Length: 2\\r\\n\\r\\n{}')
    out["socket"] = s.recv(100).decode(errors="replace")
except OSError as exc:
    out["socket"] = type(exc).__name__
body = json.dumps({"to": to, "kind": "text", "body": "falsk alarm"}).encode()
req = urllib.request.Request(url + "/v1/messages", data=body, method="POST",
                             headers={"Content-Type": "application/json"})
try:
    out["http"] = urllib.request.urlopen(req, timeout=10).status
except urllib.error.HTTPError as exc:
    out["http"] = exc.code
try:
    open(token_file).read()
    out["tokens"] = "read"
except OSError as exc:
    out["tokens"] = type(exc).__name__
print(json.dumps(out))
"""


@dataclass
class Hubs:
    home: HubProcess
    staff: HubProcess

    def text(self, text: str) -> bytes:
        return json.dumps({"to": self.staff.node_id, "kind": "text", "body": text}).encode()

    def accepted(self) -> int:
        count: int = self.home.get("/healthz")["live_messages"]
        return count

    def delivered(self, text: str) -> bool:
        return text in [m["body"] for m in self.staff.inbox()]


@pytest.fixture(scope="module")
def hubs() -> Iterator[Hubs]:
    # Not under pytest's tmp folder (mode 0700): another user must be able to walk up to the socket, so
    # that only the socket's own permissions stand in the way.
    folder = Path(tempfile.mkdtemp(prefix="beredt-exposure-"))
    folder.chmod(0o755)
    staff, home = staff_and_care_home(folder)
    for hub in (staff, home):
        hub.dir.chmod(0o755)
        (hub.dir / "data").chmod(0o755)
        hub.start()
    try:
        yield Hubs(home, staff)
    finally:
        staff.kill()
        home.kill()
        shutil.rmtree(folder, ignore_errors=True)


JSON = {"Content-Type": "application/json"}


def test_the_socket_is_private(hubs: Hubs) -> None:
    assert hubs.home.socket_path.stat().st_mode & 0o777 == 0o600


def test_unauthenticated_api_call_is_refused(hubs: Hubs) -> None:
    home, before = hubs.home, hubs.accepted()
    status, answer = home.http("POST", "/v1/messages", hubs.text("uden token"), JSON)
    assert status == 401 and "beredt token add" in answer["error"]
    assert home.http("GET", "/v1/inbox")[0] == 401
    # The console's own API without a login: refused and counted too.
    assert home.http("GET", "/console/api/messages")[0] == 401
    assert home.http("POST", "/console/api/messages", hubs.text("uden login"), JSON)[0] == 401
    assert hubs.accepted() == before
    refused = home.get("/healthz")["http_refused"]
    assert refused["unauthenticated"] >= 2 and refused["console_no_session"] >= 2, refused


def test_a_token_from_the_cli_works_until_revoked(hubs: Hubs) -> None:
    home = hubs.home
    secret = home.cli("token", "add", "alarmcentral", "--scope", "send").splitlines()[0]
    assert "alarmcentral\tsend" in home.cli("token", "list")
    headers = {**JSON, "Authorization": f"Bearer {secret}"}
    assert home.http("POST", "/v1/messages", hubs.text("fra appen"), headers)[0] == 202
    assert home.http("GET", "/v1/inbox", None, headers)[0] == 403, "a send token does not read the inbox"
    hubs.staff.wait_for("the app's message", lambda: hubs.delivered("fra appen"))
    home.cli("token", "revoke", "alarmcentral")
    before = hubs.accepted()
    assert home.http("POST", "/v1/messages", hubs.text("efter spærring"), headers)[0] == 401
    assert hubs.accepted() == before


def test_cross_origin_post_is_refused(hubs: Hubs) -> None:
    home, before = hubs.home, hubs.accepted()
    secret = home.cli("token", "add", "web", "--scope", "admin").splitlines()[0]
    # What a page on another site can make a browser send without asking: a text/plain POST...
    page = {"Content-Type": "text/plain", "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
    assert home.http("POST", "/v1/messages", hubs.text("fra en webside"), page)[0] == 403
    # ...and with a token and JSON, a foreign origin is still refused; on the console's login as well.
    forged = {**JSON, "Authorization": f"Bearer {secret}", "Origin": "http://evil.example"}
    assert home.http("POST", "/v1/messages", hubs.text("fra en webside"), forged)[0] == 403
    login = json.dumps({"username": "x", "password": "y"}).encode()
    assert home.http("POST", "/console/api/login", login, forged)[0] == 403
    assert hubs.accepted() == before
    assert home.get("/healthz")["http_refused"]["cross_origin"] >= 3


def test_foreign_host_is_refused(hubs: Hubs) -> None:
    home = hubs.home
    secret = home.cli("token", "add", "reader", "--scope", "read").splitlines()[0]
    rebound = {"Host": f"attacker.example:{home.api_port}", "Authorization": f"Bearer {secret}"}
    assert home.http("GET", "/v1/inbox", None, rebound)[0] == 421
    assert home.http("GET", "/console/", None, {"Host": "attacker.example"})[0] == 421
    assert home.http("GET", "/v1/inbox", None, {**rebound, "Host": f"127.0.0.1:{home.api_port}"})[0] == 200
    assert home.get("/healthz")["http_refused"]["foreign_host"] >= 2


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("runuser") is None, reason="needs root and runuser")
def test_another_local_user_cannot_send(hubs: Hubs) -> None:
    home = hubs.home
    home.cli("token", "add", "kept", "--scope", "admin")  # a token file exists, and must stay unreadable
    before = hubs.accepted()
    python = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
    result = subprocess.run(
        ["runuser", "-u", "nobody", "--", python, "-c", _ATTACKER, str(home.socket_path), home.api_url,
         str(home.dir / "data" / "api-tokens.json"), hubs.staff.node_id],
        capture_output=True, text=True, timeout=60, cwd="/",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen == {"socket": "PermissionError", "http": 401, "tokens": "PermissionError"}, seen
    assert hubs.accepted() == before
    # The same message from the hub's own user (root here) goes through: the socket is the only difference.
    root = subprocess.run(
        [sys.executable, "-m", "hub.cli", "send", "--config", str(home.config_path), "text",
         hubs.staff.node_id, "fra root"],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert root.returncode == 0, root.stderr
    hubs.staff.wait_for("root's message", lambda: hubs.delivered("fra root"))
