"""The first-parent log and its blobs, read as git produces them (`HistoryStream`).

A thread parses `git log` (`compiler.git_log.parse_log`) as its output arrives and asks
`git cat-file --batch` for each blob it names; the caller reads the blobs back meanwhile.
The two git processes (subprocess.Popen, their output through pipes) are started by
`compiler.git_repository.GitRepository.stream`, which says what to raise when git log fails;
this module only reads and writes their pipes, and ends them.
"""

from __future__ import annotations

import contextlib
import fcntl
import queue
import subprocess
import threading
from collections.abc import Callable, Iterator
from typing import IO, Any

from compiler.git_log import Commit, parse_log

Blob = tuple[str, str, bytes]  # SHA, the path it was first named by, content


class HistoryStream:
    """The first-parent log and its blobs, read concurrently: a thread parses `git log` as
    it arrives and asks `git cat-file --batch` for each new blob at once, while the caller
    consumes the blobs (parsing them, the costly part) as they come back. git's two
    processes and our parsing then run side by side instead of one after another.

    Iterate `blobs()` to the end, then read `commits` (oldest first). A blob `skip` is true
    of (its SHA, the path it is named by) is not asked for: the caller knows it already.
    `log` failing (a non-zero exit) raises `failed(its exit code, its stderr)` from `blobs`.
    Use it as a context manager (or call `close`): its end ends both processes, whether or
    not they are done, and closes their pipes.
    """

    def __init__(
        self,
        log: subprocess.Popen[bytes],
        cat_file: subprocess.Popen[bytes],
        prefix: str,
        skip: Callable[[str, str], bool] | None = None,
        *,
        failed: Callable[[int, bytes], Exception],
    ) -> None:
        self._log, self._cat_file, self._prefix = log, cat_file, prefix
        self._log_out, self._log_errors = _piped(log.stdout), _piped(log.stderr)
        self._requests, self._answers = _piped(cat_file.stdin), _piped(cat_file.stdout)
        self._skip, self._failed = skip, failed
        for pipe in (self._log_out, self._answers):
            _widen(pipe)
        self._requested: queue.SimpleQueue[tuple[str, str] | None] = queue.SimpleQueue()
        self._newest_first: list[Commit] = []
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._read_log, daemon=True)
        self._thread.start()

    @property
    def commits(self) -> list[Commit]:
        return self._newest_first[::-1]

    def blobs(self) -> Iterator[Blob]:
        while (request := self._requested.get()) is not None:
            sha, path = request
            yield sha, path, _read_blob(self._answers, sha)
        self._thread.join()
        if self._failure is not None:
            raise self._failure
        errors = self._log_errors.read()  # its output read to the end: it is ending
        if self._log.wait() != 0:
            raise self._failed(self._log.returncode, errors)

    def _read_log(self) -> None:
        seen: set[str] = set()
        pending = b""
        try:
            while chunk := self._log_out.read(1 << 16):
                pending = self._parse(pending + chunk, seen, final=False)
            self._parse(pending, seen, final=True)
        except BaseException as exc:  # handed to the consumer, who raises it
            self._failure = exc
        finally:
            with contextlib.suppress(OSError):
                self._requests.close()
            self._requested.put(None)

    def _parse(self, data: bytes, seen: set[str], *, final: bool) -> bytes:
        """Parse the complete records in `data`, ask for their new blobs; return the rest."""
        end = len(data) if final else data.rfind(b"\x1e")
        if end <= 0:
            return data
        try:
            commits = parse_log(data[:end], self._prefix)
        except (ValueError, IndexError):
            if final:
                raise
            return data  # a record separator inside a message: wait for more
        requests = []
        for commit in commits:
            for change in commit.changes:
                for sha, path in (
                    (change.old_blob, change.old_path),
                    (change.new_blob, change.new_path),
                ):
                    if sha is None or path is None or sha in seen:
                        continue
                    if self._skip is not None and self._skip(sha, path):
                        continue  # (named by another path, it is asked again)
                    seen.add(sha)
                    requests.append((sha, path))
        # Announced before they are asked for: the consumer must be reading the answers
        # while we write, or a large batch fills both pipes and everyone waits.
        for request in requests:
            self._requested.put(request)
        self._requests.write("".join(f"{sha}\n" for sha, _ in requests).encode())
        self._requests.flush()
        self._newest_first.extend(commits)
        return data[end:]

    def __enter__(self) -> HistoryStream:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """End both processes (killed, if still running: done or not, nothing more is read
        of them), then the thread, which reads to their end, and close every pipe."""
        for process in (self._log, self._cat_file):
            if process.poll() is None:
                process.kill()
        self._thread.join()
        for process in (self._log, self._cat_file):
            for pipe in (process.stdin, process.stdout, process.stderr):
                if pipe is not None:
                    with contextlib.suppress(OSError, ValueError):
                        pipe.close()
            process.wait()


# git writes ahead into the pipe while we parse; with the default 64 KiB it soon waits for
# us (the thread reading the log waits for the interpreter lock), and the log takes longer.
_PIPE_SIZE = 1 << 20  # Linux's default limit for an unprivileged process


def _piped(pipe: IO[bytes] | None) -> IO[bytes]:
    if pipe is None:
        raise ValueError("a git process of the history stream was started without a pipe")
    return pipe


def _widen(pipe: Any) -> None:
    """Let `pipe` hold more of git's output, where the system allows (Linux)."""
    setting = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setting is not None:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            fcntl.fcntl(pipe.fileno(), setting, _PIPE_SIZE)


def _read_blob(stream: IO[bytes], sha: str) -> bytes:
    """One answer of `git cat-file --batch`: a header `<sha> blob <size>`, the content, and a
    newline; anything else (`<sha> missing`, another type) is a ValueError."""
    header = stream.readline().split()
    if len(header) != 3 or header[1] != b"blob":
        raise ValueError(f"git cat-file could not read blob {sha}: {b' '.join(header)!r}")
    data = stream.read(int(header[2]))
    stream.read(1)  # the newline after each object
    return data
