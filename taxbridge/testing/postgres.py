"""A throwaway PostgreSQL server for tests and benchmarks: ``initdb`` into a temporary folder,
``postgres`` on a free loopback port, stopped and removed afterwards.

It needs the server binaries (Debian's ``postgresql`` package; on PATH or under
``/usr/lib/postgresql/<version>/bin``). Run as root it runs the server as the ``postgres``
user, as ``initdb`` refuses root; the server is in a session of its own, so signals meant for
the test's processes never reach it. Durability is off (``fsync``): the data is thrown away.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def server_binaries() -> Path | None:
    """The folder holding ``initdb`` and ``postgres``, or None when PostgreSQL is not here."""
    found = shutil.which("initdb")
    if found and (Path(found).resolve().parent / "postgres").exists():
        return Path(found).resolve().parent
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / "initdb").exists() and (folder / "postgres").exists():
            return folder
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _server_user() -> dict[str, Any]:
    """Run as root, the server runs as the ``postgres`` user (``initdb`` refuses root)."""
    if os.geteuid() != 0:
        return {}
    owner = pwd.getpwnam("postgres")
    return {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}


@contextlib.contextmanager
def temporary_server(*, max_connections: int = 200) -> Iterator[str]:
    """Start a server; yield the URL of its ``postgres`` database (user ``taxbridge``, trust
    authentication on loopback only)."""
    binaries = server_binaries()
    if binaries is None:
        raise FileNotFoundError("PostgreSQL server binaries (initdb, postgres) were not found")
    folder = Path(tempfile.mkdtemp(prefix="taxbridge-pg-"))
    data = folder / "data"
    data.mkdir()
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        for path in (folder, data):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    process: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run(
            [str(binaries / "initdb"), "-D", str(data), "-U", "taxbridge", "--auth=trust",
             "-E", "UTF8", "--no-sync"],
            check=True,
            capture_output=True,
            **_server_user(),
        )  # fmt: skip
        port = _free_port()
        settings = ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c",
                    "full_page_writes=off", "-c", f"max_connections={max_connections}"]  # fmt: skip
        with (folder / "server.log").open("wb") as log:  # the server keeps its own copy
            process = subprocess.Popen(
                [str(binaries / "postgres"), "-D", str(data), "-k", str(folder), "-h",
                 "127.0.0.1", "-p", str(port), *settings],
                stdout=log,
                stderr=log,
                start_new_session=True,
                **_server_user(),
            )  # fmt: skip
        url = f"postgresql://taxbridge@127.0.0.1:{port}/postgres"
        _wait_until_ready(url, process, folder)
        yield url
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(folder, ignore_errors=True)


def _wait_until_ready(url: str, process: subprocess.Popen[bytes], folder: Path) -> None:
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            log = (folder / "server.log").read_text(errors="replace")
            raise RuntimeError(f"PostgreSQL did not start:\n{log[-2000:]}")
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def fresh_database(server_url: str, name: str | None = None) -> str:
    """Create an empty database on the server; its URL."""
    import psycopg

    name = name or f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + f"/{name}"
