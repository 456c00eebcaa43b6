"""gateway.http.body: a request body is read whole up to the cap, and refused as soon as it exceeds it."""

from __future__ import annotations

import pytest

from gateway.errors import BadRequest, RequestTooLarge
from gateway.http.body import ClientGone, declared_length, read_body
from gateway.types import Message


class ScriptedReceive:
    """An ASGI `receive` that plays back a list of messages and counts how many were taken."""

    def __init__(self, *messages: Message) -> None:
        self._messages = list(messages)
        self.taken = 0

    async def __call__(self) -> Message:
        if self.taken == len(self._messages):
            raise AssertionError("read past the last message")
        self.taken += 1
        return self._messages[self.taken - 1]


def chunk(body: bytes, more: bool = True) -> Message:
    return {"type": "http.request", "body": body, "more_body": more}


DISCONNECT: Message = {"type": "http.disconnect"}


# -- declared_length ----------------------------------------------------------------------------------


def test_declared_length_is_read_from_content_length() -> None:
    assert declared_length([(b"content-type", b"application/json"), (b"content-length", b"42")]) == 42


def test_a_request_without_content_length_declares_nothing() -> None:
    assert declared_length([(b"transfer-encoding", b"chunked")]) is None


@pytest.mark.parametrize("value", [b"abc", b"-1", b"", b"4 2", b"1_000", b"+5", b"0x10", b"\xd9\xa3"])
def test_a_content_length_that_is_not_a_decimal_number_is_a_bad_request(value: bytes) -> None:
    with pytest.raises(BadRequest, match="invalid Content-Length"):
        declared_length([(b"content-length", value)])


# -- read_body ----------------------------------------------------------------------------------------


async def test_a_body_in_one_message_is_returned() -> None:
    assert await read_body(ScriptedReceive(chunk(b'{"model":"x"}', more=False)), 100, 13) == b'{"model":"x"}'


async def test_a_body_is_assembled_from_several_messages() -> None:
    receive = ScriptedReceive(chunk(b'{"mo'), chunk(b""), chunk(b'del":'), chunk(b'"x"}', more=False))

    assert await read_body(receive, 100, None) == b'{"model":"x"}'
    assert receive.taken == 4


async def test_a_message_without_body_or_more_body_is_an_empty_body() -> None:
    assert await read_body(ScriptedReceive({"type": "http.request"}), 100, None) == b""


async def test_a_body_exactly_at_the_cap_is_accepted() -> None:
    receive = ScriptedReceive(chunk(b"x" * 6), chunk(b"y" * 4, more=False))

    assert await read_body(receive, 10, None) == b"x" * 6 + b"y" * 4


async def test_a_declared_length_over_the_cap_is_refused_before_reading() -> None:
    receive = ScriptedReceive(chunk(b"x" * 11, more=False))

    with pytest.raises(RequestTooLarge):
        await read_body(receive, 10, 11)

    assert receive.taken == 0


async def test_a_chunked_body_over_the_cap_is_refused_without_reading_the_rest() -> None:
    receive = ScriptedReceive(chunk(b"x" * 6), chunk(b"x" * 6), chunk(b"x" * 6), chunk(b"", more=False))

    with pytest.raises(RequestTooLarge):
        await read_body(receive, 10, None)

    assert receive.taken == 2


@pytest.mark.parametrize("more", [False, True])
async def test_a_body_over_the_cap_in_its_first_message_is_refused(more: bool) -> None:
    receive = ScriptedReceive(chunk(b"x" * 11, more=more), chunk(b"", more=False))

    with pytest.raises(RequestTooLarge):
        await read_body(receive, 10, None)

    assert receive.taken == 1


async def test_a_disconnect_before_the_body_is_client_gone() -> None:
    with pytest.raises(ClientGone):
        await read_body(ScriptedReceive(DISCONNECT), 100, None)


async def test_a_disconnect_in_the_middle_of_the_body_is_client_gone() -> None:
    with pytest.raises(ClientGone):
        await read_body(ScriptedReceive(chunk(b"part"), DISCONNECT), 100, None)
