"""A real PostgreSQL for tests: the server on 127.0.0.1:5432 (or SHOP_TEST_PG_URL), else a throwaway cluster
from the PostgreSQL binaries on PATH, else a skip that says why. Each test gets a fresh database, dropped after.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def _reachable(url: str) -> str | None:
    """None when `url` accepts connections, else the reason."""
    try:
        psycopg.connect(url, connect_timeout=2).close()
        return None
    except psycopg.Error as exc:
        return f"{type(exc).__name__}: {str(exc).strip()[:200]}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_owner() -> list[str] | None:
    """Command prefix to run the PostgreSQL binaries (initdb refuses root), or None when it cannot."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return None
    return ["runuser", "-u", "postgres", "--"] if shutil.which("runuser") else None


def _throwaway_cluster(workdir: Path, prefix: list[str]) -> tuple[str, int]:
    """Start a trust-auth cluster on a free loopback port; returns (url, postmaster pid)."""
    if prefix:
        owner = pwd.getpwnam("postgres")
        os.chown(workdir, owner.pw_uid, owner.pw_gid)
    data, port = workdir / "data", _free_port()
    subprocess.run(
        [*prefix, "initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *prefix,
            "pg_ctl",
            "-D",
            str(data),
            "-w",
            "-t",
            "30",
            "-l",
            str(workdir / "log"),
            "start",
            "-o",
            f"-p {port} -c listen_addresses=127.0.0.1 -k {workdir}",
        ],
        check=True,
        capture_output=True,
    )
    pid = int((data / "postmaster.pid").read_text().splitlines()[0])
    return f"postgresql://postgres@127.0.0.1:{port}/postgres", pid


def _stop(pid: int) -> None:
    os.kill(pid, signal.SIGINT)  # "fast" shutdown: roll back sessions, checkpoint, exit
    for _ in range(300):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def server() -> Iterator[str]:
    """Session fixture body: the admin URL of a reachable server."""
    url = os.environ.get("SHOP_TEST_PG_URL", DEFAULT_SERVER)
    why = _reachable(url)
    if why is None:
        yield url
        return
    if not (shutil.which("initdb") and shutil.which("pg_ctl")):
        pytest.skip(f"no PostgreSQL at {url} ({why}) and no initdb/pg_ctl on PATH to start one")
    prefix = _as_owner()
    if prefix is None:
        pytest.skip(f"no PostgreSQL at {url} ({why}); initdb refuses root and there is no 'postgres' user")
    workdir = Path(tempfile.mkdtemp(prefix="shop-pg-"))
    url, pid = _throwaway_cluster(workdir, prefix)
    try:
        yield url
    finally:
        _stop(pid)
        shutil.rmtree(workdir, ignore_errors=True)


def fresh_database(admin_url: str) -> Iterator[str]:
    """Fixture body: the URL of a new, empty database, dropped afterwards."""
    name = f"shop_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield psycopg.conninfo.make_conninfo(admin_url, dbname=name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
