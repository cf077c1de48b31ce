"""Console login on a real ``beredt run`` hub: lockout by source, Secure cookies behind TLS, a full disk.

Requests come over TCP from chosen loopback addresses (all of 127.0.0.0/8 reaches the hub), so the hub
sees a guesser at 127.0.0.2 and the coordinator at 127.0.0.1 as the two machines they would be.
"""

from __future__ import annotations

import datetime
import http.client
import ipaddress
import json
import os
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.console.test_hub_process import PASSWORD, add_user
from tests.hubproc import HubProcess

GUESSER, COORDINATOR = "127.0.0.2", "127.0.0.1"


def login(
    hub: HubProcess, password: str, source: str, *, context: ssl.SSLContext | None = None
) -> tuple[int, dict[str, str], object]:
    """POST /console/api/login as a browser on ``source`` would; (status, headers, body)."""
    connection: http.client.HTTPConnection = (
        http.client.HTTPSConnection("127.0.0.1", hub.api_port, source_address=(source, 0), context=context)
        if context is not None
        else http.client.HTTPConnection("127.0.0.1", hub.api_port, source_address=(source, 0))
    )
    try:
        body = json.dumps({"username": "hansen", "password": password})
        connection.request("POST", "/console/api/login", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), json.loads(response.read())
    finally:
        connection.close()


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubProcess]:
    hub = HubProcess.create(tmp_path / "hub", "Aarhus krisestab", "staff")
    add_user(hub, "hansen", "coordinator")
    hub.start()
    try:
        yield hub
    finally:
        hub.kill()


def test_lockout_by_source_leaves_the_coordinator_in(hub: HubProcess) -> None:
    for _ in range(5):
        assert login(hub, "forkert-kodeord", GUESSER)[0] == 401
    status, headers, body = login(hub, PASSWORD, GUESSER)
    assert status == 429, body
    assert 30 <= int(headers["Retry-After"]) <= 60
    logins = hub.get("/healthz")["console_logins"]
    assert logins["failed"] == 5 and logins["lockouts"]["name_and_source"] == 1, logins
    assert logins["refused_locked"] == 1, logins
    status, headers, body = login(hub, PASSWORD, COORDINATOR)
    assert status == 200, body
    assert "Secure" not in headers["Set-Cookie"], "plain HTTP: a Secure cookie would never come back"
    # A console session is for the console's own routes, which check the user's role; never for /v1.
    cookie = headers["Set-Cookie"].split(";")[0]
    assert hub.http("GET", "/v1/inbox", None, {"Cookie": cookie})[0] == 401
    assert hub.http("GET", "/console/api/me", None, {"Cookie": cookie})[0] == 200
    # A login body nested too deep for the JSON parser is bad input (400), not a server error.
    nested = b"[" * 60_000
    assert hub.http("POST", "/console/api/login", nested, {"Content-Type": "application/json"})[0] == 400


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "beredt test")])
    now = datetime.datetime.now(datetime.UTC)
    loopback = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(loopback, critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert, key_file = folder / "console.pem", folder / "console.key"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert, key_file


def test_the_session_cookie_is_secure_over_tls(tmp_path: Path) -> None:
    hub = HubProcess.create(tmp_path / "hub", "Plejecenter Solbakken", "care-home")
    cert, key = _self_signed(tmp_path)
    hub.config["api"].update({"tls_cert": str(cert), "tls_key": str(key)})
    hub.write_config()
    add_user(hub, "hansen", "coordinator")
    hub.start()
    try:
        status, headers, body = login(
            hub, PASSWORD, COORDINATOR, context=ssl.create_default_context(cafile=cert)
        )
        assert status == 200, body
        cookie = headers["Set-Cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    finally:
        hub.kill()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_login_on_a_full_disk_is_503_not_500(small_disk: Path) -> None:
    hub = HubProcess.create(small_disk / "hub", "Aarhus krisestab", "staff")
    add_user(hub, "hansen", "coordinator")
    hub.start()
    filler = small_disk / "filler"
    try:
        # unbuffered: a buffered write that met the full disk leaves its rest behind for close() to fail on
        # again, outside pytest.raises, depending on how the free space happens to align
        with filler.open("wb", buffering=0) as file, pytest.raises(OSError, match="No space left"):
            while True:
                file.write(b"\0" * 65536)
        # a login writes its session into space the WAL already holds while there is some: those succeed,
        # and the first that must grow a file is refused, 503, never 500
        answers = [login(hub, PASSWORD, COORDINATOR) for _ in range(3)]
        while len(answers) < 300 and answers[-1][0] == 200:
            answers.append(login(hub, PASSWORD, COORDINATOR))
        assert {status for status, _, _ in answers} <= {200, 503}, answers[-1]
        status, _, body = answers[-1]
        assert status == 503 and "disk" in str(body), body
        assert hub.get("/healthz")["ok"], "the hub keeps running"
        filler.unlink()
        status, _, body = login(hub, PASSWORD, COORDINATOR)
        assert status == 200, body
    finally:
        hub.kill()
