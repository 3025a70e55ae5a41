"""server.reading: when the bytes read so far hold a whole request. Properties over
generated requests cut at every point, and a table of the requests handed over early."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server import reading
from server.reading import MAX_BODY, Progress, find_head, progress, without_expect

HEAD_LIMIT = reading.head_limit(4094, 100, 8190)  # gunicorn's defaults

names = st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12).filter(
    lambda name: name.lower() not in {"content-length", "transfer-encoding", "expect"}
)
values = st.text("abcdefghijklmnopqrstuvwxyz0123456789 ;=/", max_size=30).map(str.strip)
headers = st.lists(st.tuples(names, values), max_size=6)
bodies = st.binary(max_size=300)


def _head(method: str, fields: list[tuple[str, str]]) -> bytes:
    lines = [f"{method} /ofrep/v1/evaluate/flags/a HTTP/1.1", "Host: x"]
    lines += [f"{name}: {value}" for name, value in fields]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@st.composite
def requests(draw: st.DrawFn) -> tuple[bytes, bool]:
    """A whole request, and whether it asks for 100 Continue before a body."""
    fields = draw(headers)
    body = draw(bodies)
    framing = draw(st.sampled_from(["none", "length", "chunked"]))
    expect = framing != "none" and draw(st.booleans())
    if expect:
        fields.insert(draw(st.integers(0, len(fields))), ("Expect", "100-continue"))
    if framing == "none":
        return _head("GET", fields), False
    if framing == "length":
        return _head("POST", [*fields, ("Content-Length", str(len(body)))]) + body, expect
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=4)))
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True) if b > a]
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces)
    trailer = draw(st.sampled_from([b"", b"X-Check: 1\r\n"]))
    request = _head("POST", [*fields, ("Transfer-Encoding", "chunked")])
    return request + chunked + b"0\r\n" + trailer + b"\r\n", expect


@given(requests(), st.data())
def test_a_request_is_whole_exactly_when_all_of_it_is_here(
    made: tuple[bytes, bool], data: st.DataObject
) -> None:
    request, expect = made
    assert progress(request, HEAD_LIMIT, MAX_BODY) is Progress.WHOLE
    cut = data.draw(st.integers(0, len(request) - 1))
    head = find_head(request[:cut])
    expected = Progress.CONTINUE if expect and head is not None else Progress.MORE
    assert progress(request[:cut], HEAD_LIMIT, MAX_BODY) is expected


@given(requests(), st.data())
def test_a_scan_fed_in_pieces_answers_as_a_look_at_the_whole(
    made: tuple[bytes, bool], data: st.DataObject
) -> None:
    """The worker's incremental Scan, after each piece, says what progress says of all the
    bytes so far."""
    request, _ = made
    scan = reading.Scan(HEAD_LIMIT, MAX_BODY)
    cuts = sorted(data.draw(st.lists(st.integers(1, len(request)), max_size=12)))
    for cut in [*cuts, len(request)]:
        assert scan.look(request[:cut]) is progress(request[:cut], HEAD_LIMIT, MAX_BODY)


@given(requests(), requests())
def test_bytes_of_the_next_request_do_not_change_the_answer(
    first: tuple[bytes, bool], second: tuple[bytes, bool]
) -> None:
    assert progress(first[0] + second[0], HEAD_LIMIT, MAX_BODY) is Progress.WHOLE


@given(st.binary(min_size=1, max_size=2000), st.integers(1, 500), st.integers(1, 500))
def test_the_buffer_is_bounded_whatever_is_sent(data: bytes, limit: int, body: int) -> None:
    """Past the most a head and a body may take, nothing waits for more."""
    padded = data * (1 + (limit + body + 1100) // len(data))
    assert progress(padded, limit, body) is Progress.WHOLE


@given(requests())
def test_the_expect_line_alone_is_dropped(made: tuple[bytes, bool]) -> None:
    request, expect = made
    head = find_head(request)
    assert head is not None
    dropped = without_expect(request, head)
    # in the head: the body is the client's bytes, and may read "100-continue" itself
    assert b"100-continue" not in dropped.partition(b"\r\n\r\n")[0]
    assert (len(request) - len(dropped) == len(b"Expect: 100-continue\r\n")) is expect
    assert progress(dropped, HEAD_LIMIT, MAX_BODY) is Progress.WHOLE


LONG_HEAD = b"GET / HTTP/1.1\r\nX: " + b"a" * HEAD_LIMIT


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", Progress.MORE),
        (b"G", Progress.MORE),
        (b"GET / HTTP/1.1\r\nHost: x\r\n", Progress.MORE),
        (b"\r\n\r\nGET / HTTP/1.1\r\n", Progress.MORE),  # empty lines before it are skipped
        (b"GET / HTTP/1.1\r\n\r\n", Progress.WHOLE),
        (b"GET / HTTP/1.1\n\n", Progress.WHOLE),  # bare LF: whole, the parser answers it
        (LONG_HEAD, Progress.WHOLE),  # longer than the parser takes: it answers it
        (LONG_HEAD[:HEAD_LIMIT], Progress.MORE),
        (b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nabcd", Progress.MORE),
        (b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nabcde", Progress.WHOLE),
        (b"POST / HTTP/1.1\r\ncontent-length:  0 \r\n\r\n", Progress.WHOLE),
        (b"POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1), Progress.WHOLE),
        (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", Progress.WHOLE),
        (b"POST / HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n", Progress.WHOLE),
        (b"POST / HTTP/1.1\r\nContent-Length: 9" + b"9" * 30 + b"\r\n\r\n", Progress.WHOLE),
        (b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", Progress.WHOLE),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", Progress.WHOLE),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            Progress.WHOLE,
        ),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", Progress.MORE),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab", Progress.MORE),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", Progress.WHOLE),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n", Progress.MORE),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", Progress.WHOLE),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % (MAX_BODY + 1),
            Progress.WHOLE,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1" * 2000,
            Progress.WHOLE,  # a chunk-size line that never ends
        ),
        (b"POST / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n", Progress.WHOLE),  # no body
        (
            b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
            Progress.CONTINUE,
        ),
    ],
)
def test_progress_cases(data: bytes, expected: Progress) -> None:
    assert progress(data, HEAD_LIMIT, MAX_BODY) is expected


def test_the_head_limit_follows_gunicorns_limits() -> None:
    assert reading.head_limit(10, 2, 5) == 10 + 2 + 2 * (5 + 2) + 2
    assert reading.head_limit(0, 0, 0) > reading.head_limit(8190, 100, 8190)  # 0: no limit


def test_a_whole_chunked_request_looked_at_again_is_still_whole() -> None:
    """Found by the property above: after a look that found the trailers' end, a look at
    the same bytes searched only past it and said MORE."""
    request = (
        b"POST /ofrep/v1/evaluate/flags/a HTTP/1.1\r\nHost: x\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n1\r\n\x00\r\n0\r\nX-Check: 1\r\n\r\n"
    )
    scan = reading.Scan(HEAD_LIMIT, MAX_BODY)
    assert [scan.look(request), scan.look(request)] == [reading.Progress.WHOLE] * 2
