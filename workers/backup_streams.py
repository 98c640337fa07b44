"""Byte plumbing for backups, knowing nothing about databases.

Two directions: a child's stdout compressed into a file and hashed on the way (one pass, no
re-read), and a file hashed while it is decompressed into a chain of children. Both report what
happened (digest, sizes, how each child ended); judging it is `workers.backup`'s job. Every child
is started through `workers.children`, so it dies with the worker.

zstd level 1 with two worker threads: measured on a 2-core machine, it keeps up with
`pg_dump -Z0` on incompressible rows, where pg_dump's own single-threaded zlib (-Z default) is
about ten times slower (benchmarks/backup_bench.py). The frame carries zstd's content checksum, so
a damaged file also fails decompression, not only the sha256 comparison.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

import zstandard

from workers import children

CHUNK = 1 << 20
ZSTD_LEVEL = 1
ZSTD_THREADS = 2
COMPRESSOR = f"zstd -{ZSTD_LEVEL} ({ZSTD_THREADS} threads, libzstd {'.'.join(map(str, zstandard.ZSTD_VERSION))})"
STDERR_KEPT = 4000  # characters of a child's stderr worth showing; the end holds the error
_F_SETPIPE_SZ = 1031  # Linux fcntl: pipes of 1 MiB let the producer run ahead of the consumer


@dataclass(frozen=True)
class Exit:
    """How one child process ended."""

    argv: tuple[str, ...]
    returncode: int
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def describe(self) -> str:
        return f"{self.argv[0]} exited with {self.returncode}: {self.stderr.strip() or '(no message)'}"


@dataclass(frozen=True)
class Written:
    """The result of `compress_output`."""

    sha256: str  # of the compressed bytes, i.e. of the file
    size: int
    exit: Exit


@dataclass(frozen=True)
class Fed:
    """The result of `feed_decompressed`."""

    sha256: str  # of the whole file as read, even if a child stopped reading early
    decompressed_bytes: int
    problem: str  # what was wrong with the compressed stream itself, or ""
    exits: tuple[Exit, ...]


def compress_output(argv: Sequence[str], env: Mapping[str, str], destination: BinaryIO) -> Written:
    """Run argv; write its stdout zstd-compressed to destination, hashing exactly the bytes written."""
    sink = _Sink(destination, hashlib.sha256())
    compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=ZSTD_THREADS, write_checksum=True)
    with tempfile.TemporaryFile() as stderr:
        child = children.popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr)
        assert child.stdout is not None
        _widen_pipe(child.stdout)
        try:
            with compressor.stream_writer(_as_file(sink), closefd=False) as writer:
                while chunk := os.read(child.stdout.fileno(), CHUNK):
                    writer.write(chunk)
        finally:
            child.stdout.close()  # if we failed (disk full), the child gets EPIPE instead of hanging
            returncode = child.wait()
        return Written(sink.digest.hexdigest(), sink.size, Exit(tuple(argv), returncode, _tail(stderr)))


def feed_decompressed(source: Path, commands: Sequence[Sequence[str]], env: Mapping[str, str]) -> Fed:
    """Stream source, decompressed, into commands[0] | commands[1] | …; the last one's stdout is discarded.

    The file is hashed as it is read, in the same pass.
    """
    started: list[subprocess.Popen[bytes]] = []
    with contextlib.ExitStack() as stack:
        try:
            upstream: IO[bytes] | int = subprocess.PIPE
            errors = []
            for position, argv in enumerate(commands):
                last = position == len(commands) - 1
                errors.append(stack.enter_context(tempfile.TemporaryFile()))
                child = children.popen(
                    argv, env=env, stdin=upstream, stdout=subprocess.DEVNULL if last else subprocess.PIPE,
                    stderr=errors[-1],
                )
                if started and started[-1].stdout is not None:
                    started[-1].stdout.close()  # now the new child's stdin
                started.append(child)
                if child.stdout is not None:  # the last one's goes nowhere
                    upstream = child.stdout
            assert started[0].stdin is not None
            _widen_pipe(started[0].stdin)
            sha256, size, problem = _decompress_into(source, started[0].stdin)
            exits = tuple(
                Exit(tuple(argv), child.wait(), _tail(error))
                for argv, child, error in zip(commands, started, errors, strict=True)
            )
            return Fed(sha256, size, problem, exits)
        finally:
            for child in started:  # only on an unexpected exception are any still running
                if child.poll() is None:
                    child.kill()
                    child.wait()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _decompress_into(source: Path, stdin: IO[bytes]) -> tuple[str, int, str]:
    digest = hashlib.sha256()
    fed = _Sink(stdin)
    # A writer, not decompressobj(): it hands the output on in CHUNK pieces, so memory stays bounded
    # however well the archive compressed (a 1 MiB piece of zstd can stand for gigabytes). It cannot
    # tell a frame cut short from a whole one; the full read downstream (or the sha256) does.
    decompressor = zstandard.ZstdDecompressor().stream_writer(_as_file(fed), write_size=CHUNK, closefd=False)
    problem, feeding = "", True
    try:
        with open(source, "rb") as file:
            while chunk := file.read(CHUNK):
                digest.update(chunk)
                if not feeding:
                    continue  # keep hashing: the digest always covers the whole file
                try:
                    decompressor.write(chunk)
                except zstandard.ZstdError as error:
                    problem, feeding = f"the compressed stream is damaged ({error})", False
                except BrokenPipeError:
                    feeding = False  # the child stopped reading; its exit status says why
    finally:
        with contextlib.suppress(BrokenPipeError):
            stdin.close()  # EOF tells the child the stream is over (or cut short)
    return digest.hexdigest(), fed.size, problem


class _Sink:
    """A file-like wrapper for zstandard to write into: counts (and hashes, if asked) what passes."""

    def __init__(self, file: IO[bytes], digest: Any = None) -> None:
        self.file, self.digest, self.size = file, digest, 0

    def write(self, data: bytes) -> int:
        if self.digest is not None:
            self.digest.update(data)
        self.size += len(data)
        return self.file.write(data)

    def flush(self) -> None:
        self.file.flush()


def _as_file(sink: _Sink) -> IO[bytes]:
    # zstandard's stubs ask for a whole file; its stream writers call only write() and flush().
    return cast(IO[bytes], sink)


def _widen_pipe(pipe: IO[bytes]) -> None:
    with contextlib.suppress(OSError):  # a smaller pipe is only slower
        fcntl.fcntl(pipe.fileno(), _F_SETPIPE_SZ, CHUNK)


def _tail(file: IO[bytes]) -> str:
    file.seek(0)
    text = file.read().decode("utf-8", errors="replace")
    return text if len(text) <= STDERR_KEPT else "…" + text[-STDERR_KEPT:]
