"""One parser for every HOST:PORT a user types: record --listen/--metrics and serve --listen."""

from __future__ import annotations

import pytest

from wsreplay.address import parse_listen
from wsreplay.exceptions import ConfigurationError


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ("127.0.0.1", 0)),
        ("9000", ("127.0.0.1", 9000)),
        (":9000", ("127.0.0.1", 9000)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
        ("[::1]:8080", ("::1", 8080)),
        ("[::1]", ("::1", 0)),
        ("localhost", ("localhost", 0)),
        (" 127.0.0.1:1 ", ("127.0.0.1", 1)),
        (("", 7), ("127.0.0.1", 7)),
        (("::1", 7), ("::1", 7)),
    ],
)
def test_forms_default_to_loopback(value: object, expected: tuple[str, int]) -> None:
    assert parse_listen(value) == expected  # type: ignore[arg-type]


def test_default_port_applies_only_when_none_is_given() -> None:
    assert parse_listen("localhost", 9000) == ("localhost", 9000)
    assert parse_listen(None, 9000) == ("127.0.0.1", 9000)
    assert parse_listen(":0", 9000) == ("127.0.0.1", 0)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("host:http", "--listen 'host:http': the port must be a number"),
        (":70000", "port 70000 is out of range"),
        ("host:-1", "the port must be a number"),
        (("h", 99999), "out of range"),
    ],
)
def test_bad_ports_get_one_line_naming_the_option(value: object, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match) as err:
        parse_listen(value)  # type: ignore[arg-type]
    assert "\n" not in str(err.value)


def test_errors_name_the_option_that_was_given() -> None:
    with pytest.raises(ConfigurationError, match=r"^--metrics 'x:y'"):
        parse_listen("x:y", option="--metrics")
