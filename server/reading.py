"""When the bytes read so far on a connection hold a whole HTTP/1.1 request.

The worker (server.worker) reads each request in its event loop, without a thread, and
hands it to a thread only once `progress` says it is whole: a client that sends its
request slowly, or nothing at all, then holds a buffer and a file descriptor, never one of
the few threads that answer everyone. Pure functions over bytes; gunicorn's parser still
parses and judges the request afterwards, so what is decided here is only *when* there is
enough to parse without waiting on the client:

- the head ends at the first empty line (CRLF CRLF, or a bare LF LF that the parser then
  refuses); a request without a body is whole there;
- a body of `Content-Length` bytes is whole once they are all here; a chunked body once
  its last chunk (size 0) and the trailer section's empty line are;
- more than the parser accepts (a head over `head_limit`, a body over `body_limit`) or a
  head the parser will refuse (an unreadable length) is handed over at once: the parser
  or the application answers it (400, 413, 431) with what is already buffered, so the
  buffer of one connection never grows past `head_limit + body_limit` and a bit;
- `Expect: 100-continue` with a body to come: the worker answers `100 Continue` itself,
  drops that header line (so that gunicorn does not answer it a second time) and waits
  for the body like any other.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

MAX_BODY: Final = 64 * 1024  # the largest request body flagserve reads (OFREP's)
CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
TIMED_OUT: Final = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
_CHUNK_LINE_LIMIT: Final = 1024  # a chunk-size line longer than this is not one


class Progress(enum.Enum):
    MORE = "more"  # wait for more bytes
    WHOLE = "whole"  # hand it over: whole, or enough for the parser to refuse it
    CONTINUE = "continue"  # answer 100 Continue, drop the Expect line, then wait for the body


@dataclass(frozen=True)
class Head:
    end: int  # where the body starts
    length: int | None  # Content-Length (None: none given)
    chunked: bool  # Transfer-Encoding ends in chunked
    expects_continue: bool  # Expect: 100-continue
    expect_line: tuple[int, int] | None  # where that header line is (start, end)
    malformed: bool  # a length or transfer coding the parser will refuse


def head_limit(request_line: int, fields: int, field_size: int) -> int:
    """The most bytes a head gunicorn accepts can have, from its limits (limit_request_line,
    limit_request_fields, limit_request_field_size; 0 means no limit to gunicorn, and is
    taken as its largest default here)."""
    line = request_line or 8190
    field = field_size or 8190
    return line + 2 + (fields or 32768) * (field + 2) + 2


def progress(data: bytes, head_limit: int, body_limit: int) -> Progress:
    """What to do with a connection that has sent `data` (the rule in the module's doc)."""
    return Scan(head_limit, body_limit).look(data)


class Scan:
    """`progress` over a request that arrives in pieces: each look starts where the last
    one stopped (the search for the head's end, the next chunk), so a request sent a byte
    at a time costs in proportion to its length, not to its length squared (a whole head
    of 800 kB looked at from the start took 1.5 ms a look). Look at the same bytes, with
    more appended each time; after changing what was looked at, start a new Scan."""

    def __init__(self, head_limit: int, body_limit: int) -> None:
        self._head_limit, self._body_limit = head_limit, body_limit
        self._searched = 0  # no head ends before this
        self.head: Head | None = None
        self._chunk = 0  # where the next chunk-size line starts (0: the body's start)
        self._trailers = 0  # where the trailer section starts (0: not reached)

    def look(self, data: bytes) -> Progress:
        if len(data) > self._head_limit + self._body_limit + _CHUNK_LINE_LIMIT:
            return Progress.WHOLE  # more than any request the parser accepts (endless trailers)
        if self.head is None:
            self.head = find_head(data, self._searched)
            if self.head is None:
                self._searched = len(data)
                return Progress.WHOLE if len(data) > self._head_limit else Progress.MORE
        head = self.head
        if head.malformed:
            return Progress.WHOLE
        if head.chunked:
            whole = self._chunked_whole(data, head.end)
        elif head.length:
            whole = head.length > self._body_limit or len(data) - head.end >= head.length
        else:
            return Progress.WHOLE
        if not whole and head.expects_continue:
            return Progress.CONTINUE
        return Progress.WHOLE if whole else Progress.MORE

    def _chunked_whole(self, data: bytes, start: int) -> bool:
        """Whether the chunked body from `start` is all here (or past what the parser takes)."""
        position = self._chunk or start
        while not self._trailers:
            line_end = data.find(b"\r\n", position)
            if line_end < 0:
                self._chunk = position
                return (
                    len(data) - start > self._body_limit or len(data) - position > _CHUNK_LINE_LIMIT
                )
            size_text = data[position:line_end].split(b";", 1)[0].strip()
            if not size_text or any(byte not in b"0123456789abcdefABCDEF" for byte in size_text):
                return True  # not a chunk size: the parser refuses it
            size = int(size_text, 16)
            if size == 0:
                self._trailers = self._searched = line_end + 2
                break
            following = line_end + 2 + size + 2
            if following - start > self._body_limit:
                return True
            if following > len(data):
                self._chunk = position
                return False
            position = following
        trailers = self._trailers
        ended = (
            data.startswith(b"\r\n", trailers)
            or data.find(b"\r\n\r\n", max(trailers, self._searched - 3)) >= 0
        )
        if not ended:  # (once ended, a look at the same bytes again must find it again)
            self._searched = len(data)
        return ended


def find_head(data: bytes, searched: int = 0) -> Head | None:
    """The head of the request `data` starts with, or None while its empty line is to come;
    `searched`: no empty line ends before that offset (a look before found none). Empty
    lines before the request line are skipped, as RFC 9112 (2.2) allows."""
    start = 0
    while data.startswith(b"\r\n", start):
        start += 2
    ends = [
        found + len(mark)
        for mark in (b"\r\n\r\n", b"\n\n")
        if (found := data.find(mark, max(start, searched - 3))) >= 0
    ]
    if not ends:
        return None
    end = min(ends)
    head = data[start:end].lower()
    if b"content-length" not in head and b"transfer-encoding" not in head and b"expect" not in head:
        return Head(end, None, False, False, None, False)  # the usual GET: nothing to read
    length: int | None = None
    chunked = expects_continue = malformed = False
    expect_line = None
    position = data.find(b"\n", start) + 1  # past the request line
    while position < end:
        line_end = data.find(b"\n", position, end)
        line_end = end if line_end < 0 else line_end + 1
        name, colon, value = data[position:line_end].partition(b":")
        name, value = name.strip().lower(), value.strip()
        if colon and name == b"content-length":
            malformed |= length is not None or not value.isdigit() or len(value) > 18
            length = int(value) if value.isdigit() and len(value) <= 18 else 0
        elif colon and name == b"transfer-encoding":
            chunked = value.lower().rsplit(b",", 1)[-1].strip() == b"chunked"
            malformed |= not chunked
        elif colon and name == b"expect" and value.lower() == b"100-continue":
            expects_continue, expect_line = True, (position, line_end)
        position = line_end
    malformed |= chunked and length is not None  # both: the parser refuses it
    return Head(end, length, chunked, expects_continue, expect_line, malformed)


def without_expect(data: bytes, head: Head) -> bytes:
    """`data` without its `Expect: 100-continue` line (answered already)."""
    if head.expect_line is None:
        return data
    first, last = head.expect_line
    return data[:first] + data[last:]
