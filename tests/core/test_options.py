"""The option reader: every kind of value and its range; errors (Danish: people write these files) name
the file, the key and the fix."""

from __future__ import annotations

import re
from typing import Any

import pytest

from hub.core.errors import ConfigError
from hub.core.options import Options


def table(**values: Any) -> Options:
    return Options(values, "links.radio", file="beredt.toml")


def refused(call: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        call()
    return caught.value


def test_values_within_range_are_returned_and_missing_ones_default() -> None:
    options = table(port=300, share=0.5, on=False, name="x", level="info", ids=["ab"], listen="[::1]:80")
    assert options.integer("port", 256, low=256, high=511) == 300
    assert options.integer("channel", 3) == 3
    assert options.optional_integer("hop_limit") is None
    assert options.number("share", 0.9, low=0.01, high=1) == 0.5
    assert options.flag("on", True) is False
    assert options.text("name") == "x" and options.text("missing", "fallback") == "fallback"
    assert options.choice("level", "warning", ["info", "warning"]) == "info"
    assert options.names("ids", valid=re.compile("[a-f]+").fullmatch, what="ids") == ("ab",)
    assert options.address("listen", example="0.0.0.0:8471") == ("::1", 80)
    options.finish()


@pytest.mark.parametrize(
    ("values", "read", "key", "says"),
    [
        (
            {"port": 512},
            lambda o: o.integer("port", 256, low=256, high=511),
            "port",
            "et heltal fra 256 til 511",
        ),
        ({"port": 300.5}, lambda o: o.integer("port", 256), "port", "forventede et heltal, ikke 300.5"),
        ({"port": True}, lambda o: o.integer("port", 256), "port", "ikke True"),
        ({"t": "5"}, lambda o: o.number("t", 1, above=0), "t", "forventede et tal > 0, ikke '5'"),
        ({"t": 0}, lambda o: o.number("t", 1, above=0), "t", "et tal > 0"),
        ({"on": "yes"}, lambda o: o.flag("on", True), "on", "forventede true eller false"),
        ({"name": ""}, lambda o: o.text("name"), "name", "en tekst, der ikke er tom"),
        (
            {},
            lambda o: o.required_text("device", 'fx "/dev/ttyUSB0"'),
            "device",
            'mangler; fx "/dev/ttyUSB0"',
        ),
        (
            {"level": "loud"},
            lambda o: o.choice("level", "info", ["info"]),
            "level",
            "en af 'info', ikke 'loud'",
        ),
        (
            {"ids": "ab"},
            lambda o: o.names("ids", valid=bool, what="node-id'er"),
            "ids",
            "en liste af node-id'er",
        ),
        ({"listen": "8471"}, lambda o: o.address("listen", example="0.0.0.0:8471"), "listen", "'vært:port'"),
        ({"listen": 8471}, lambda o: o.address("listen", example="0.0.0.0:8471"), "listen", "ikke 8471"),
        (
            {"plan": 5},
            lambda o: o.table_of("plan", what="en tabel med navn = værdi"),
            "plan",
            "en tabel med navn",
        ),
    ],
)
def test_errors_name_the_file_the_key_and_what_is_expected(
    values: dict[str, Any], read: Any, key: str, says: str
) -> None:
    error = refused(lambda: read(table(**values)))
    assert (error.file, error.key) == ("beredt.toml", f"links.radio.{key}")
    assert says in str(error)
    assert str(error).startswith(f"beredt.toml: links.radio.{key}: ")


def test_unknown_keys_are_refused_with_the_known_ones_and_the_nearest() -> None:
    error = refused(lambda: Options({"devcie": "x"}, "links.radio", known=["kind", "device", "host"]))
    assert error.key == "links.radio.devcie"
    assert "mente du 'device'?" in str(error)
    assert "kendte nøgler: device, host, kind" in str(error)


def test_finish_refuses_keys_nothing_read() -> None:
    options = table(port=300, colour="red")
    options.integer("port", 256)
    error = refused(options.finish)
    assert error.key == "links.radio.colour" and "kendte nøgler: port" in str(error)


def test_sub_tables_carry_the_dotted_key_and_the_file() -> None:
    plan = table(status_plan={"ok": 1}).table_of("status_plan", what="en tabel")
    error = refused(lambda: plan.integer("ok", 0, low=0x8000, high=0xFFFF))
    assert (error.file, error.key) == ("beredt.toml", "links.radio.status_plan.ok")


def test_an_error_found_by_a_transport_is_located_in_the_config_file() -> None:
    error = ConfigError("expected an integer", key="links.lora.port")
    located = error.in_file("/etc/beredt/beredt.toml")
    assert (located.file, located.key, located.message) == (
        "/etc/beredt/beredt.toml",
        "links.lora.port",
        error.message,
    )
    assert str(located) == "/etc/beredt/beredt.toml: links.lora.port: expected an integer"
