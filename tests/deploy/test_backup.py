"""Backup and restore as docs/operations.md tells it: pg_dump of a live database, pg_restore
into a new one, and every table holds the same rows (plain PostgreSQL: telemetry in daily
partitions; a TimescaleDB restore also needs timescaledb_pre_restore(), not tested here)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest

from collector import store
from collector.decode import decode
from collector.model import Message, Received
from dispatcher.fleet import load_fleet_file
from dispatcher.store.fleet import apply_fleet
from dispatcher.store.tokens import create
from schemas.migrate import migrate
from schemas.states import Role
from tests import upgrade_data as data
from tests.deploy.shipped import ROOT


def pg_tool(name: str) -> str:
    """pg_dump or pg_restore, or the test fails naming the package."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: apt-get install postgresql-client")
    return path


def row_counts(url: str) -> dict[str, int]:
    """Rows of every table of the public schema (each partition on its own)."""
    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1")]
        counts = {}
        for t in tables:
            row = conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()
            assert row is not None
            counts[t] = int(row[0])
        return counts


def fill(url: str) -> None:
    """The example fleet, a token, and three days of the upgrade test's traffic ingested
    (telemetry partitions, components, incidents, timers, dedup keys)."""
    with psycopg.connect(url, autocommit=True) as conn:
        apply_fleet(conn, load_fleet_file(ROOT / "docs" / "fleet.example.yaml"))
        create(conn, Role("admin"), None, None)
        for day in (data.START, data.T0):
            store.ensure_partitions(conn, day, retention_days=3650)
        directory = store.Directory()
        for mid, batch in enumerate(data._batches(data.traffic()), start=1):
            decoded = [decode(Received(topic, payload, mid, 1, at))
                       for at, topic, payload in batch]
            store.write_batch(conn, directory, [m for m in decoded if isinstance(m, Message)],
                              [m for m in decoded if not isinstance(m, Message)])


def test_pg_dump_and_restore_keep_every_row(tmp_path: Path, pg_url: str, blank_db: str) -> None:
    fill(pg_url)
    before = row_counts(pg_url)
    assert before["incidents"] > 0
    assert sum(n for t, n in before.items() if t.startswith("telemetry")) > 0
    dump = tmp_path / "hourglass.dump"
    subprocess.run([pg_tool("pg_dump"), "--format=custom", f"--file={dump}", pg_url],
                   check=True, capture_output=True)
    subprocess.run([pg_tool("pg_restore"), "--no-owner", "--exit-on-error",
                    f"--dbname={blank_db}", str(dump)], check=True, capture_output=True)
    assert row_counts(blank_db) == before
    assert migrate(blank_db, log=lambda m: None) == []  # the restored schema is current
