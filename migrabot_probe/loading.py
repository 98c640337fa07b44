"""Migration modules compiled from exactly the bytes that were hashed, and the signature that
tells a warm session its imported code is no longer what is on disk.

The approval binds to each migration file's sha256. Python's own import would run a cached
``.pyc`` whenever the source's size and whole-second mtime match the ``.pyc`` header, so a
same-size edit within the same second ran the old code under the new file's hash. Migration
modules are loaded here instead: the source bytes are read once, hashed and compiled (the
compiled code cached by the hash of path and source, in memory and in a private folder), and
that hash is recorded as what is loaded. Plans report it, and the run checks it.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import marshal
import os
import stat
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any

#: module name -> sha256 (line endings normalised) of the source its code was compiled from
LOADED: dict[str, str] = {}
_compiled: dict[str, CodeType] = {}


def content_sha256(content: bytes) -> str:
    """Line endings normalised to LF: a checkout with other line endings is not an edit."""
    return hashlib.sha256(content.replace(b"\r\n", b"\n").replace(b"\r", b"\n")).hexdigest()


def file_sha256(path: str) -> str:
    with open(path, "rb") as source:
        return content_sha256(source.read())


class HashedLoader(importlib.machinery.SourceFileLoader):
    """A source loader that never reads a ``.pyc``: it compiles what it hashed."""

    def get_code(self, fullname: str) -> CodeType:
        source = self.get_data(self.path)
        key = hashlib.sha256(self.path.encode() + b"\0" + source).hexdigest()
        code = _compiled.get(key) or _cached(key) or _compile(key, source, self.path)
        LOADED[fullname] = content_sha256(source)
        return code


class MigrationFinder(importlib.abc.MetaPathFinder):
    """Finds the modules directly inside the given migration packages, for ``HashedLoader``."""

    def __init__(self, packages: Iterable[str]) -> None:
        self.packages = set(packages)

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> Any:
        if fullname.rpartition(".")[0] not in self.packages:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and type(spec.loader) is importlib.machinery.SourceFileLoader and spec.origin:
            spec.loader = HashedLoader(fullname, spec.origin)
        return spec


def install(packages: Iterable[str]) -> MigrationFinder:
    """Load the modules of these migration packages through ``HashedLoader`` from now on."""
    for finder in [f for f in sys.meta_path if isinstance(f, MigrationFinder)]:
        sys.meta_path.remove(finder)
    finder = MigrationFinder(packages)
    sys.meta_path.insert(0, finder)
    return finder


def forget(packages: Iterable[str], signature: dict[str, str]) -> None:
    """Drop the imported migration modules whose file is gone or no longer has the content they
    were compiled from, so that the next load imports those afresh (the rest are the same code)."""
    prefixes = tuple(f"{package}." for package in packages)
    for name in [name for name in sys.modules if name.startswith(prefixes)]:
        path = getattr(sys.modules[name], "__file__", None)
        if path is None or signature.get(path) != LOADED.get(name):
            del sys.modules[name]
            LOADED.pop(name, None)
    importlib.invalidate_caches()  # new files in a folder already listed


def folder_signature(folders: Iterable[str]) -> dict[str, str]:
    """Every migration source file in the folders with the sha256 of its content (what Django's
    loader would import: ``*.py`` not starting with ``_`` or ``~``, plus the package's
    ``__init__.py``). A file is hashed again unless its stat data is the same as when it was
    last hashed *and* it had not been changed within ``RACY_SECONDS`` of that hashing: any write
    or ``utime`` moves ctime, and a change within the same tick of a coarse clock is caught
    because a hash taken so soon after a change is never trusted (git's "racy" rule)."""
    found = {}
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            name = entry.name
            if name.endswith(".py") and (name == "__init__.py" or name[0] not in "_~") and entry.is_file():
                found[entry.path] = _hash_unless_unchanged(entry.path, entry.stat())
    return found


RACY_SECONDS = 2
_hashed: dict[str, tuple[tuple[int, int, int, int], str]] = {}


def _hash_unless_unchanged(path: str, info: os.stat_result) -> str:
    key = (info.st_mtime_ns, info.st_ctime_ns, info.st_size, info.st_ino)
    known = _hashed.get(path)
    if known is not None and known[0] == key:
        return known[1]
    now = time.time_ns()
    digest = file_sha256(path)
    if now - max(info.st_mtime_ns, info.st_ctime_ns) > RACY_SECONDS * 1_000_000_000:
        _hashed[path] = (key, digest)
    else:
        _hashed.pop(path, None)
    return digest


# --- what else a warm session imported: stat data is enough to notice a deploy -----------------

Stat = tuple[int, int, int]


def module_stats(exclude: Iterable[str] = ()) -> dict[str, Stat]:
    """The source files of every imported module (Django, third-party apps, the project) but the
    migration packages' own, with their mtime (ns), size and inode."""
    prefixes = tuple(f"{package}." for package in exclude)
    found = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if path and not name.startswith(prefixes):
            found[path] = _stat(path)
    return found


def changed_module(seen: dict[str, Stat]) -> str | None:
    """The first imported source file that changed on disk since ``seen``, if any."""
    return next((path for path, before in seen.items() if _stat(path) != before), None)


def _stat(path: str) -> Stat:
    try:
        info = os.stat(path)
    except OSError:
        return (0, 0, 0)
    return (info.st_mtime_ns, info.st_size, info.st_ino)


# --- the compiled-code cache ---------------------------------------------------------------


def _compile(key: str, source: bytes, path: str) -> CodeType:
    code = compile(source, path, "exec", dont_inherit=True)
    _compiled[key] = code
    folder = _cache_folder()
    if folder is not None:
        temporary = folder / f".{key}.{os.getpid()}"
        try:
            temporary.write_bytes(marshal.dumps(code))
            temporary.replace(folder / key)
        except OSError:
            pass
    return code


def _cached(key: str) -> CodeType | None:
    folder = _cache_folder()
    if folder is None:
        return None
    try:
        code = marshal.loads((folder / key).read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        return None
    if not isinstance(code, CodeType):
        return None
    _compiled[key] = code
    return code


@cache
def _cache_folder() -> Path | None:
    """A folder only this user can write (marshal data is code), per Python bytecode version;
    None where it cannot be had."""
    magic = importlib.util.MAGIC_NUMBER.hex()
    root = Path(tempfile.gettempdir()) / f"migrabot-code-{os.getuid()}"
    try:
        root.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(root)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
            return None
        folder = root / magic
        folder.mkdir(mode=0o700, exist_ok=True)
    except OSError:
        return None
    return folder
