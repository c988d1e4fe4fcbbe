"""A throw-away PostgreSQL server for the test session (Debian's postgresql 15 binaries).

The machines run as root and ``initdb``/``postgres`` refuse root: the cluster is made and run as
the ``postgres`` user, in a folder under /tmp it owns, listening on 127.0.0.1 and a unix socket in
that folder only. Where the server cannot start, tests fail with the reason when ``CI`` is set and
are skipped with the reason otherwise.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from tests.support.fixtures import free_port

PG_BIN = Path(os.environ.get("TFLITE_DEPLOY_PG_BIN", "/usr/lib/postgresql/15/bin"))


@dataclass
class PostgresServer:
    folder: Path
    port: int

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; returns its SQLAlchemy URL."""
        import sqlalchemy as sa

        name = "t_" + uuid.uuid4().hex[:12]
        eng = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with eng.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        eng.dispose()
        return self.url(name)


def _as_postgres(cmd: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    line = " ".join(shlex.quote(c) for c in cmd)
    if os.geteuid() == 0:
        return subprocess.run(["su", "postgres", "-s", "/bin/sh", "-c", line], capture_output=True, text=True,
                              timeout=timeout)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL test server cannot start: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL test server cannot start: {reason}")


def start_server() -> tuple[PostgresServer | None, str]:
    """Start a cluster; returns (server, "") or (None, why not)."""
    for tool in ("initdb", "pg_ctl", "postgres"):
        if not (PG_BIN / tool).exists():
            return None, f"{PG_BIN / tool} is missing (apt-get install postgresql; tools/setup.sh --tests does it)"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return None, "there is no 'postgres' user to run the server as (install Debian's postgresql)"
    folder = Path(tempfile.mkdtemp(prefix="tflite-deploy-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data = folder / "data"
    init = _as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                         "--no-sync", "-E", "UTF8"], timeout=120)
    if init.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        return None, f"initdb failed: {init.stderr.strip()[-500:]}"
    port = free_port()
    opts = f"-p {port} -k {folder} -h 127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    start = _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"), "-w",
                          "-t", "60", "-o", opts, "start"], timeout=90)
    if start.returncode != 0:
        log = (folder / "server.log").read_text(errors="replace")[-800:] if (folder / "server.log").exists() else ""
        shutil.rmtree(folder, ignore_errors=True)
        return None, f"pg_ctl start failed: {start.stderr.strip()[-400:]} {log}"
    return PostgresServer(folder, port), ""


def stop_server(server: PostgresServer) -> None:
    _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(server.folder / "data"), "-m", "fast", "-w", "stop"])
    shutil.rmtree(server.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole session, stopped and deleted at the end."""
    server, why = start_server()
    if server is None:
        _unavailable(why)
    try:
        yield server
    finally:
        stop_server(server)
