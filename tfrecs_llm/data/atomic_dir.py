"""Publishing a directory or file all at once, readable as a plain write would leave it.

A model directory or export version is written into a hidden staging directory next to its
destination, flushed to disk, given the permissions the process's umask gives new directories
(``tempfile.mkdtemp`` makes them private, 0700, which a TF Serving process running as another
user cannot read; files are written with the umask's modes already), and then renamed into place. Replacing an existing directory swaps the two
with one ``renameat2(RENAME_EXCHANGE)`` where the kernel offers it, so a crash at any moment
leaves either the old or the new directory at the destination, never neither.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import tempfile
from pathlib import Path

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def process_umask() -> int:
    """The process's umask, read without changing it where the OS allows."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # no other way to read it: set, then restore
    os.umask(mask)
    return mask


def make_staging_dir(destination: Path) -> Path:
    """An empty hidden directory beside ``destination`` (same filesystem, so renames are atomic)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{destination.name}.staging-", dir=destination.parent))


def finish_staging(staging: Path, mode: int = 0o777) -> None:
    """Flushes every file under ``staging`` to disk and gives ``staging`` the permissions of a
    directory made with ``mkdir(mode)``: ``mode`` minus the umask (TensorFlow makes a
    SavedModel's folders with 0755)."""
    for root, _, files in os.walk(staging):
        for name in files:
            with open(os.path.join(root, name), "rb") as handle:
                os.fsync(handle.fileno())
        _fsync_dir(root)
    os.chmod(staging, mode & ~process_umask())


def publish_dir(staging: Path, destination: Path) -> None:
    """Moves the finished ``staging`` to ``destination``, replacing what is there (atomically
    where the kernel can swap directories); the replaced directory is then deleted."""
    if not destination.exists():
        os.rename(staging, destination)
    elif _exchange(staging, destination):
        shutil.rmtree(staging)  # now holds the old directory
    else:
        old = Path(tempfile.mkdtemp(prefix=f".{destination.name}.old-", dir=destination.parent))
        os.rename(destination, old / destination.name)
        os.rename(staging, destination)
        shutil.rmtree(old)
    _fsync_dir(str(destination.parent))


def write_file_atomically(path: Path, text: str) -> None:
    """Replaces ``path`` with ``text`` in one rename, with the permissions of a plain write."""
    handle, staging = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(staging, 0o666 & ~process_umask())
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise


def _exchange(first: Path, second: Path) -> bool:
    """Swaps two paths with ``renameat2(RENAME_EXCHANGE)``; False where that is unavailable."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EXDEV):
        return False
    raise OSError(code, os.strerror(code), str(second))


def _fsync_dir(path: str) -> None:
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
