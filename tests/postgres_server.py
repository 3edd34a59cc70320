"""A real PostgreSQL server for tests and benchmarks: ``initdb`` + ``pg_ctl`` on a temporary
folder and a free loopback port (Debian's ``postgresql`` package provides the binaries; ``make
test`` installs it when missing). As root, the server runs as the ``postgres`` user, since
PostgreSQL refuses to run as root."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


def postgres_bin() -> Path:
    """The folder holding initdb and pg_ctl.

    Raises:
        FileNotFoundError: PostgreSQL's server binaries are not installed.
    """
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if candidates:
        return Path(candidates[-1]).parent
    raise FileNotFoundError(
        "PostgreSQL's initdb/pg_ctl are not installed; `make test` installs Debian's postgresql "
        "package (or: apt-get install postgresql)"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_postgres(*settings: str) -> Iterator[str]:
    """Starts a throwaway PostgreSQL; yields ``postgresql://tfrecs@127.0.0.1:PORT/postgres``.

    ``settings`` are extra ``name=value`` server settings (e.g. ``fsync=off``).
    """
    binaries = postgres_bin()
    root = Path(tempfile.mkdtemp(prefix="tfrecs-pg-"))
    data = root / "data"
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        os.chmod(root, 0o755)
        shutil.chown(root, "postgres")
    port = _free_port()
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 " + " ".join(f"-c {s}" for s in settings)
    run = lambda *command: subprocess.run(  # noqa: E731
        [*as_user, *command], check=True, capture_output=True, text=True, timeout=120
    )
    try:
        run(str(binaries / "initdb"), "-D", str(data), "-U", "tfrecs", "--auth=trust", "-E", "UTF8", "--no-sync")
        run(str(binaries / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-o", options, "-w", "start")
    except subprocess.CalledProcessError as error:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {error.stderr or error.stdout}") from error
    try:
        yield f"postgresql://tfrecs@127.0.0.1:{port}/postgres"
    finally:
        stop_postgres(data)
        shutil.rmtree(root, ignore_errors=True)


def stop_postgres(data: Path) -> None:
    """Stops the server of data folder ``data`` (fast shutdown; a stopped one is left alone)."""
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*as_user, str(postgres_bin() / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                   capture_output=True, text=True, timeout=120)


def fresh_database(server_url: str, name: str) -> str:
    """Creates database ``name`` on the server (dropping an old one); returns its URL."""
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + f"/{name}"
