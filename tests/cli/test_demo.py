"""'beredt demo': five real hubs that talk, consoles that log in, a relay that can be cut and restored,
and nothing left running after 'q'."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path

from hub.cli.demo import PASSWORD
from tests.hubproc import BEREDT, REPO


def _login(url: str, user: str) -> int:
    request = urllib.request.Request(url.replace("/console/", "/console/api/login"), method="POST",
                                     data=json.dumps({"username": user, "password": PASSWORD}).encode(),
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=15) as response:
        return int(response.status)


def test_demo_brings_up_a_municipality_and_cuts_the_relay(tmp_path: Path) -> None:
    with subprocess.Popen([*BEREDT, "demo", "--dir", str(tmp_path / "demo"), "--port", "0"],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True, cwd=REPO) as demo:  # fmt: skip
        assert demo.stdin is not None and demo.stdout is not None
        try:
            lines = []
            deadline = time.monotonic() + 120
            while not any(line.startswith("Skriv r") for line in lines):
                assert time.monotonic() < deadline and demo.poll() is None, lines
                lines.append(demo.stdout.readline())
            consoles = [line.split() for line in lines if "/console/" in line]
            assert len(consoles) == 4  # the staff hub and three care homes
            for words in consoles:
                assert _login(words[-3], words[-1]) == 200
            demo.stdin.write("r\n")
            demo.stdin.flush()
            assert demo.stdout.readline().strip() == "relæet er afbrudt"
            demo.stdin.write("r\nq\n")
            demo.stdin.flush()
            assert demo.stdout.readline().strip() == "relæet kører igen"
            assert demo.wait(60) == 0
        finally:
            if demo.poll() is None:
                demo.kill()
    leftover = subprocess.run(["pgrep", "-f", str(tmp_path / "demo")], capture_output=True, text=True)
    assert leftover.stdout == "", "hubs still running after 'q'"
