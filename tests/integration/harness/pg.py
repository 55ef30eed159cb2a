"""A private PostgreSQL server for the integration tests (tests/pg/pg-test-server:
initdb as the `postgres` user into a folder under /tmp, Unix socket only),
and the database handles the harness passes around instead of an SQLite path.

    server = PgServer().start()          # once per pytest session
    db = server.new_database("m_happy")  # a fresh, empty database: a PgDb
    alliance_server(..., db_path=db)     # janus gets `db_url = db.url`
    harness.store.rows(db, "SELECT ... WHERE visit_id = ?", (vid,))
    server.restart() / server.kill() + server.start()    # faults
    server.stop()

The suite runs on PostgreSQL when ALLIANCE_TEST_DB=postgresql (see
conftest.py); PgServer also serves tests that need it whatever the default.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Optional

REPO_ROOT = Path(__file__).resolve().parents[3]
SCRIPT = REPO_ROOT / "tests" / "pg" / "pg-test-server"


def wanted() -> bool:
    """The suite's store is PostgreSQL (ALLIANCE_TEST_DB=postgresql)."""
    v = os.environ.get("ALLIANCE_TEST_DB", "sqlite").strip().lower()
    if v not in ("sqlite", "postgresql", "pg"):
        raise RuntimeError(f"ALLIANCE_TEST_DB must be sqlite or postgresql (got {v!r})")
    return v in ("postgresql", "pg")


class PgDb:
    """One database of the server: what a test passes where an SQLite path
    would go (janus.db_path). `url` is a libpq URI; no password (the
    socket is trusted, the folder private)."""

    def __init__(self, server: "PgServer", name: str, url: str) -> None:
        self.server, self.name, self.url = server, name, url

    def __repr__(self) -> str:
        return f"PgDb({self.name})"

    def __str__(self) -> str:
        return self.url

    def connect(self):
        import psycopg2          # Debian's python3-psycopg2
        con = psycopg2.connect(self.url)
        con.set_session(readonly=True, autocommit=True)
        return con


class PgServer:
    def __init__(self, folder: Optional[Path] = None) -> None:
        # under /tmp: the postgres user must reach it (pytest's basetemp is 0700 root)
        self.folder = Path(folder) if folder else Path(f"/tmp/alliance-pg-{os.getpid()}-{secrets.token_hex(3)}")
        self.started = False
        self._n = 0

    def _run(self, *args: str, check: bool = True) -> str:
        p = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=120)
        if check and p.returncode != 0:
            raise RuntimeError(f"pg-test-server {' '.join(args)} failed: {p.stderr.strip()}")
        return p.stdout.strip()

    def start(self) -> "PgServer":
        self._run("start", str(self.folder))
        self.started = True
        return self

    def stop(self) -> None:
        if self.folder.exists():
            self._run("stop", str(self.folder), check=False)

    def kill(self) -> None:
        """SIGKILL the postmaster (a crash; start() recovers)."""
        self._run("kill", str(self.folder))

    def restart(self) -> None:
        self._run("restart", str(self.folder))

    def destroy(self) -> None:
        self._run("destroy", str(self.folder), check=False)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.started = False

    def new_database(self, hint: str = "db") -> PgDb:
        self._n += 1
        name = re.sub(r"[^a-z0-9_]", "_", f"t{self._n}_{hint}".lower())[:60]
        url = self._run("createdb", str(self.folder), name)
        return PgDb(self, name, url)

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join((self.folder / "server.log").read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""
