"""The simulated SINE radio, byte for byte: what it answers is what ETSI EN 300 392-5 shows."""

from __future__ import annotations

from simulators.tetra import TetraNetwork, TetraRadio


def talk(radio: TetraRadio, data: bytes) -> bytes:
    radio.receive_data(data)
    return radio.data_to_send()


def pair() -> tuple[TetraNetwork, TetraRadio, TetraRadio]:
    network = TetraNetwork(max_per_window=1, window=60.0, clock=lambda: 0.0)
    return network, network.add_radio("1001"), network.add_radio("1002")


def test_echo_identity_and_size() -> None:
    _, radio, _ = pair()
    assert talk(radio, b"AT\r") == b"AT\r\r\nOK\r\n"
    assert talk(radio, b"ATE0\r") == b"ATE0\r\r\nOK\r\n"
    assert talk(radio, b"AT+CNUMF?\r") == b"\r\n+CNUMF: 6,02380000100001001\r\n\r\nOK\r\n"
    assert talk(radio, b"AT+CMGS=?\r") == b"\r\n+CMGS: (0-99999999),(1-1120)\r\n\r\nOK\r\n"
    radio.cmgs_test = False
    assert talk(radio, b"AT+CMGS=?\r") == b"\r\nERROR\r\n"
    assert talk(radio, b"AT+BOGUS\r") == b"\r\nERROR\r\n"


def test_routing_is_kept_while_powered_and_refused_pids_fall_to_the_range() -> None:
    _, radio, _ = pair()
    radio.echo = False
    assert talk(radio, b"AT+CTSP=1,3,200\r") == b"\r\nOK\r\n"
    assert talk(radio, b"AT+CTSP=1,3,200\r") == b"\r\n+CME ERROR: 38\r\n"
    radio.refused_pids.add(201)
    assert talk(radio, b"AT+CTSP=1,3,201\r") == b"\r\n+CME ERROR: 4\r\n"
    assert talk(radio, b"AT+CTSP=1,3,25\r") == b"\r\nOK\r\n"
    assert radio.routes(201) and not radio.routes(0x20)


def test_two_stage_send_then_the_sds_arrives_at_the_other_radio() -> None:
    _, a, b = pair()
    for radio in (a, b):
        radio.echo = False
        talk(radio, b"AT+CTSP=1,3,200\r")
    assert talk(a, b"AT+CMGS=1002,48\r") == b"\r\n> "
    assert talk(a, b"C80405016869\x1a") == b"\r\n+CMGS: 1,5\r\n\r\nOK\r\n\r\n+CMGS: 1,4,5\r\n"
    assert b.data_to_send() == (
        b"\r\n+CTSDSR: 12,02380000100001001,1,02380000100001002,1,48\r\nC80405016869\r\n"
    )
    # The control channel admits one SDS a minute here: the next is taken, then fails over the air.
    talk(a, b"AT+CMGS=1002,48\r")
    assert talk(a, b"C80406016869\x1a") == b"\r\n+CMGS: 2,6\r\n\r\nOK\r\n\r\n+CMGS: 2,5,6\r\n"


def test_radio_variants() -> None:
    network, a, b = pair()
    network.max_per_window = 10
    for radio in (a, b):
        radio.echo = False
        talk(radio, b"AT+CTSP=1,3,25\r")
    a.two_stage, a.own_refs, b.calling_party = False, True, False
    talk(a, b"AT+CMGS=1002,48\r")
    assert talk(a, b"C80405016869\x1a") == b"\r\n+CMGS: 1,4,1\r\n\r\nOK\r\n"
    assert b.data_to_send() == b"\r\n+CTSDSR: 12,02380000100001002,1,48\r\nC80401016869\r\n"
    a.creg_tetra_form = True
    assert talk(a, b"AT+CREG?\r") == b"\r\n+CREG: 1,1001,023800001\r\n\r\nOK\r\n"
    assert talk(b, b"AT+CREG?\r") == b"\r\n+CREG: 0,1\r\n\r\nOK\r\n"


def test_address_type_must_match_the_identity() -> None:
    network, a, b = pair()
    network.max_per_window = 10
    a.echo = False
    talk(b, b"AT+CTSP=1,3,200\r")
    b.data_to_send()
    assert talk(a, b"AT+CMGS=02380000100001002,48\r") == b"\r\n+CME ERROR: 4\r\n"  # an SSI was selected
    assert talk(a, b"AT+CTSDS=12,1\r") == b"\r\nOK\r\n"
    assert talk(a, b"AT+CMGS=02380000100001002,48\r") == b"\r\n> "
    assert talk(a, b"C80405016869\x1a").startswith(b"\r\n+CMGS: 1,5\r\n")
    assert b.data_to_send().endswith(b"\r\nC80405016869\r\n")


def test_the_network_reports_an_unregistered_destination_and_injected_errors() -> None:
    network, a, b = pair()
    network.max_per_window = 10
    a.echo = False
    talk(a, b"AT+CTSP=1,3,200\r")
    b.registered = False
    talk(a, b"AT+CMGS=1002,48\r")
    out = talk(a, b"C80405016869\x1a")
    # SDS-REPORT (EN 300 392-2 §29.4.2.3): PID, type 1, status 0x4B not registered, our reference.
    assert out.endswith(b"\r\n+CTSDSR: 12,02380000100001002,1,02380000100001001,1,32\r\nC8104B05\r\n")
    a.errors_next["AT+CMGS="] = [42]
    assert talk(a, b"AT+CMGS=1002,48\r") == b"\r\n+CME ERROR: 42\r\n"
    assert talk(a, b"\x1b\r") == b"\r\nERROR\r\n"
    a.registered = False
    assert talk(a, b"AT+CMGS=1002,48\r") == b"\r\n+CME ERROR: 30\r\n"  # no network service
