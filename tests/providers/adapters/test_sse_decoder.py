"""SSEDecoder: the same events however the stream is cut into reads, in every framing servers use."""

from __future__ import annotations

import pytest

from apps.providers.adapters.base import SSEDecoder

EXPECTED = [(None, b'{"a":1}'), ("message_start", b'{"b":2}'), (None, b"line one\nline two"), (None, b'{"c":3}'),
            ("ping", b"{}"), (None, b"[DONE]")]
STREAMS = {
    "lf": (b'data: {"a":1}\n\nevent: message_start\ndata: {"b":2}\n\n: keep-alive\n\ndata: line one\n'
           b'data: line two\n\ndata:{"c":3}\n\n\nevent: ping\ndata: {}\n\ndata: [DONE]\n\n'),
}
STREAMS["crlf"] = STREAMS["lf"].replace(b"\n", b"\r\n")


def decode(stream: bytes, cuts: list[int]) -> list:
    decoder, events, start = SSEDecoder(), [], 0
    for cut in [*cuts, len(stream)]:
        events += decoder.feed(stream[start:cut])
        start = cut
    return events + decoder.close()


@pytest.mark.parametrize("framing", STREAMS)
def test_every_single_cut_gives_the_same_events(framing):
    stream = STREAMS[framing]
    assert decode(stream, []) == EXPECTED
    for cut in range(1, len(stream)):
        assert decode(stream, [cut]) == EXPECTED, cut


@pytest.mark.parametrize("framing", STREAMS)
def test_byte_by_byte_and_a_last_event_without_its_blank_line(framing):
    stream = STREAMS[framing]
    assert decode(stream, list(range(1, len(stream)))) == EXPECTED
    assert decode(b'data: {"a":1}\n\ndata: tail', [3, 20]) == [(None, b'{"a":1}'), (None, b"tail")]
