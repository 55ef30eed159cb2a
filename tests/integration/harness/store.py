"""Read-only access to the plugin's store (`server.db_path`: an SQLite
file, or a harness.pg.PgDb), for checking what was stored.

Queries are written for SQLite with `?` placeholders; on PostgreSQL the
placeholders become psycopg2's and booleans come back as 0/1, so the same
simple queries (SELECT ... FROM table WHERE col = ?) read both. Queries
using SQLite-only functions are for SQLite-only tests.

Every call opens its own read-only connection (`mode=ro`) and closes it,
so it always sees the latest commit and never holds a lock or a WAL
snapshot that would keep Janus from checkpointing. Nothing here writes.

    rows(db, "SELECT * FROM answers WHERE pulse_id = ?", (pid,))  -> [dict]
    one(db, sql, args)                                             -> dict | None
    await wait_row(db, sql, args, timeout=5)                       -> dict (first row)
    visit_snapshot(db, visit_id)   -> every stored row about one visit
                                      (pulses, answers, answer_items, scores, alerts)
    with read_only_db(folder) as db:   a valid SQLite file on a read-only bind
                                       mount (as root, file modes would not stop
                                       writes); unmounted on exit
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence


def connect_ro(db: Path) -> sqlite3.Connection:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    con.row_factory = sqlite3.Row
    return con


def _pg_rows(db, sql: str, args: Sequence[Any]) -> List[Dict[str, Any]]:
    con = db.connect()
    try:
        cur = con.cursor()
        cur.execute(sql.replace("%", "%%").replace("?", "%s"), tuple(args))
        names = [d[0] for d in cur.description] if cur.description else []
        return [{n: (int(v) if isinstance(v, bool) else v) for n, v in zip(names, r)}
                for r in cur.fetchall()]
    finally:
        con.close()


def rows(db: Path, sql: str, args: Sequence[Any] = ()) -> List[Dict[str, Any]]:
    if hasattr(db, "url"):
        return _pg_rows(db, sql, args)
    con = connect_ro(db)
    try:
        return [dict(r) for r in con.execute(sql, tuple(args)).fetchall()]
    finally:
        con.close()


def one(db: Path, sql: str, args: Sequence[Any] = ()) -> Optional[Dict[str, Any]]:
    r = rows(db, sql, args)
    assert len(r) <= 1, f"expected at most one row for {sql!r} {args}, got {r}"
    return r[0] if r else None


async def wait_rows(db: Path, sql: str, args: Sequence[Any] = (),
                    predicate: Optional[Callable[[List[Dict[str, Any]]], bool]] = None,
                    timeout: float = 5.0) -> List[Dict[str, Any]]:
    """Poll until the query returns rows (and predicate(rows) holds)."""
    deadline = time.monotonic() + timeout
    while True:
        r = rows(db, sql, args)
        if r and (predicate is None or predicate(r)):
            return r
        if time.monotonic() > deadline:
            raise AssertionError(f"store: {sql!r} {tuple(args)} did not reach the expected "
                                 f"rows within {timeout}s; last: {r}")
        await asyncio.sleep(0.05)


async def wait_row(db: Path, sql: str, args: Sequence[Any] = (),
                   predicate: Optional[Callable[[Dict[str, Any]], bool]] = None,
                   timeout: float = 5.0) -> Dict[str, Any]:
    r = await wait_rows(db, sql, args, (lambda rs: predicate(rs[0])) if predicate else None,
                        timeout)
    return r[0]


def visit_snapshot(db: Path, visit_id: str) -> Dict[str, List[Dict[str, Any]]]:
    """Every row about the visit's pulses and answers, in a stable order."""
    q = {
        "visits": ("SELECT * FROM visits WHERE visit_id = ?", "visit_id"),
        "pulses": ("SELECT * FROM pulses WHERE visit_id = ? ORDER BY pulse_id", None),
        "answers": ("SELECT a.* FROM answers a JOIN pulses p USING (pulse_id) "
                    "WHERE p.visit_id = ? ORDER BY a.pulse_id", None),
        "answer_items": ("SELECT i.* FROM answer_items i JOIN pulses p USING (pulse_id) "
                         "WHERE p.visit_id = ? ORDER BY i.pulse_id, i.item_id", None),
        "scores": ("SELECT s.* FROM scores s JOIN pulses p USING (pulse_id) "
                   "WHERE p.visit_id = ? ORDER BY s.pulse_id, s.name", None),
        "alerts": ("SELECT * FROM alerts WHERE visit_id = ? ORDER BY id", None),
    }
    if hasattr(db, "url"):
        con = db.connect()
        try:
            con.autocommit = False
            con.set_session(isolation_level="REPEATABLE READ", readonly=True)   # one snapshot
            cur = con.cursor()
            out = {}
            for name, (sql, _) in q.items():
                cur.execute(sql.replace("?", "%s"), (visit_id,))
                names = [d[0] for d in cur.description]
                out[name] = [{n: (int(v) if isinstance(v, bool) else v) for n, v in zip(names, r)}
                             for r in cur.fetchall()]
            con.rollback()
            return out
        finally:
            con.close()
    con = connect_ro(db)
    try:
        con.execute("BEGIN")            # one read snapshot for all tables
        out = {name: [dict(r) for r in con.execute(sql, (visit_id,)).fetchall()]
               for name, (sql, _) in q.items()}
        con.execute("COMMIT")
        return out
    finally:
        con.close()


def answer_of(db: Path, pulse_id: str) -> Dict[str, Any]:
    """{"answer": row or None, "items": {item: value}, "scores": {name: value}}."""
    return {
        "answer": one(db, "SELECT * FROM answers WHERE pulse_id = ?", (pulse_id,)),
        "items": {r["item_id"]: r["value"] for r in
                  rows(db, "SELECT item_id, value FROM answer_items WHERE pulse_id = ?", (pulse_id,))},
        "scores": {r["name"]: r["value"] for r in
                   rows(db, "SELECT name, value FROM scores WHERE pulse_id = ?", (pulse_id,))},
    }


def write(db, statements: Sequence[tuple]) -> None:
    """Test set-up only (what an older build or an operator might have left
    in the database): run (sql, args) statements in one transaction, with
    `?` placeholders, on either backend."""
    if hasattr(db, "url"):
        import psycopg2
        con = psycopg2.connect(db.url)
        try:
            with con, con.cursor() as cur:
                for sql, args in statements:
                    cur.execute(sql.replace("%", "%%").replace("?", "%s"), tuple(args))
        finally:
            con.close()
        return
    con = sqlite3.connect(str(db), timeout=10)
    try:
        con.execute("PRAGMA foreign_keys = ON")
        with con:
            for sql, args in statements:
                con.execute(sql, tuple(args))
    finally:
        con.close()


@contextlib.contextmanager
def read_only_db(folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "alliance.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t(x)")
    con.close()
    os.chmod(db, 0o600)
    subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], check=True)
        yield db
    finally:
        subprocess.run(["umount", str(folder)], check=False)
