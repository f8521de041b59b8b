"""Upgrades keep data: a database built and filled by the previous release, upgraded.

The previous release is a git tag (``release-N``; the newest is the one production runs).
Its own code, taken from git, migrates a database and fills it the way production does:
``hourglass load`` of the example fleet, then its collector, dispatcher and simulator
running against a private Mosquitto with failures injected, plus the rows those leave
empty (a credit, a pause, a survey, a dead letter). Then today's migrations run over it:
every table and column the old release had keeps exactly its rows, migrating twice changes
nothing, and today's collector and dispatcher work on the upgraded data.

To release: tag the commit that lands, ``git tag -a release-N -m "..."``; this test then
upgrades from it. A clone without tags fails here: ``git fetch --tags``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import psycopg
import pytest

from collector import store as collector_store
from collector.decode import decode
from collector.model import Message, Received
from dispatcher.domain.policy import TimerPolicy
from dispatcher.service.engine import run_pass
from schemas.migrate import migrate
from tests.agent.brokers import Broker
from tests.conftest import ADMIN_URL, eventually, free_port

ROOT = Path(__file__).resolve().parent.parent
#: Tables the previous release's run leaves empty, filled by hand below (_fill).
FILLED_BY_HAND = ("credits", "pauses", "surveys", "dead_letters", "ingest_floor")


def previous_release() -> str:
    """The newest release-N tag."""
    try:
        out = subprocess.run(["git", "tag", "--list", "release-*", "--sort=-v:refname"],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.fail(f"cannot read the release tags from git ({exc}): run the tests in a git "
                    "clone of the project")
    tags = out.split()
    if not tags:
        pytest.fail("no release-N tag in this clone: fetch them (git fetch --tags), or tag the "
                    "release production runs (git tag -a release-1 <commit>)")
    return tags[0]


@pytest.fixture(scope="module")
def old_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The previous release's code, from git."""
    tag = previous_release()
    dest = tmp_path_factory.mktemp("old-release")
    archive = subprocess.run(["git", "archive", "--format=tar", tag], cwd=ROOT,
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return dest


@pytest.fixture
def db() -> Iterator[str]:
    name = f"hg_upgrade_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def old(tree: Path, env: dict[str, str], *args: str, log: Path | None = None,
        ) -> subprocess.Popen[bytes]:
    """The old release's `hourglass` command, its own code first on the path."""
    full = {**os.environ, **env, "PYTHONPATH": str(tree)}
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - the child owns it
    return subprocess.Popen([sys.executable, "-m", "hourglass.cli", *args], cwd=tree, env=full,
                            stdout=out, stderr=subprocess.STDOUT if log else subprocess.DEVNULL)


def run_old(tree: Path, env: dict[str, str], *args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "hourglass.cli", *args], cwd=tree,
                          env={**os.environ, **env, "PYTHONPATH": str(tree)},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def tables(conn: psycopg.Connection[Any]) -> dict[str, list[str]]:
    """Every ordinary table of the public schema (partitions as their parent) -> columns."""
    rows = conn.execute(
        "SELECT c.relname, array_agg(a.attname ORDER BY a.attnum) FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'"
        " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
        " WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition GROUP BY c.relname").fetchall()
    return {r[0]: list(r[1]) for r in rows}


def snapshot(conn: psycopg.Connection[Any], shape: dict[str, list[str]]) -> dict[str, list[Any]]:
    """Every row of every table, only the given columns, as text, in a stable order."""
    out: dict[str, list[Any]] = {}
    for table, cols in shape.items():
        sel = ", ".join(f'"{c}"::text' for c in cols)
        order = ", ".join(str(i + 1) for i in range(len(cols)))
        out[table] = conn.execute(f'SELECT {sel} FROM "{table}" ORDER BY {order}').fetchall()
    return out


def _fill(conn: psycopg.Connection[Any]) -> None:
    """The rows a short run leaves empty: a credit and a survey on a closed incident, a
    pause, a dead letter."""
    row = conn.execute("SELECT id, customer_id FROM incidents ORDER BY id LIMIT 1").fetchone()
    assert row is not None, "the old release's run opened no incident"
    incident, customer = row
    now = datetime.now(UTC)
    conn.execute("INSERT INTO pauses (incident_id, reason, started_at, ended_at, started_by,"
                 " ended_by) VALUES (%s, 'customer_denied_access', %s, %s, 'manager:t-maria',"
                 " 'manager:t-maria')", (incident, now, now))
    conn.execute("INSERT INTO credits (incident_id, customer_id, amount, currency, percent,"
                 " periods, late_seconds, policy, issued_at) VALUES (%s, %s, 22.50, 'USD', 5, 1,"
                 " 600, '{\"percent\": \"5\"}', %s) ON CONFLICT DO NOTHING",
                 (incident, customer, now))
    conn.execute("INSERT INTO surveys (incident_id, score, comment, at)"
                 " VALUES (%s, 9, 'fast', %s) ON CONFLICT DO NOTHING", (incident, now))
    conn.execute("INSERT INTO dead_letters (topic, reason, payload) VALUES"
                 " ('hg/v1/iad1/web-01/telemetry', 'not JSON', 'x')")
    conn.execute("INSERT INTO ingest_floor (host_id, seq) VALUES ('gx-app-02', 3)")


def test_the_previous_release_data_survives_the_upgrade(old_tree: Path, db: str,
                                                        tmp_path: Path) -> None:
    broker = Broker(tmp_path / "broker")
    broker.start()
    env = {"HOURGLASS_DATABASE_URL": db, "HOURGLASS_MQTT_URL": broker.url,
           "HOURGLASS_COLLECTOR_HTTP_ADDR": f"127.0.0.1:{free_port()}",
           "HOURGLASS_HTTP_ADDR": f"127.0.0.1:{free_port()}", "HOURGLASS_DISPATCHER_TICK_S": "1"}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        run_old(old_tree, env, "db", "migrate")
        run_old(old_tree, env, "load", "docs/fleet.example.yaml")
        run_old(old_tree, env, "token", "create", "--role", "technician", "--person", "t-ana")
        log = tmp_path / "old.log"
        procs.append(old(old_tree, env, "collector", "run", log=log))
        procs.append(old(old_tree, env, "dispatcher", "run", log=log))
        time.sleep(1.5)
        procs.append(old(old_tree, env, "simulate", "--fleet", "docs/fleet.example.yaml",
                         "--interval", "1", "--fail", "web-01:disk:1s", "--fail",
                         "db-01:fan:2s", "--state", str(tmp_path / "sim"), log=log))

        def busy() -> bool:
            with psycopg.connect(db) as conn:
                row = conn.execute("SELECT (SELECT count(*) FROM jobs),"
                                   " (SELECT count(*) FROM telemetry)").fetchone()
            return bool(row and row[0] >= 2 and row[1] > 500)

        eventually(busy, 60, "the old release's incidents dispatched and telemetry stored", 0.5)
        time.sleep(3)
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        broker.stop()
    with psycopg.connect(db) as conn:
        _fill(conn)
        conn.commit()
        shape = tables(conn)
        before = snapshot(conn, shape)
    empty = sorted(t for t, rows in before.items() if not rows)
    print(f"\nprevious release {previous_release()}: "
          + ", ".join(f"{t} {len(r)}" for t, r in sorted(before.items()) if r))
    print(f"empty in the data set: {', '.join(empty)}")
    for core in ("sites", "customers", "hosts", "technicians", "host_state", "components",
                 "ingest_keys", "telemetry", "incidents", "incident_events", "jobs", "timers",
                 "api_tokens", "outbox", "spares",
                 "schema_migrations", *FILLED_BY_HAND):
        assert before.get(core), f"the data set has no {core} rows"

    applied = migrate(db, log=lambda m: None)
    assert applied, "today's code adds no migration to the previous release: nothing to test?"
    with psycopg.connect(db) as conn:
        now_shape = tables(conn)
        for table, cols in shape.items():
            assert table in now_shape, f"the upgrade dropped table {table}"
            gone = set(cols) - set(now_shape[table])
            assert not gone, f"the upgrade dropped {table} columns {sorted(gone)}"
        after = snapshot(conn, shape)
    for table in shape:
        if table == "schema_migrations":
            assert set(after[table]) >= set(before[table])  # only new versions recorded
            continue
        assert after[table] == before[table], f"the upgrade changed rows of {table}"
    assert migrate(db, log=lambda m: None) == [], "a second migrate must change nothing"

    # today's code on the upgraded data: the collector stores a message, the loop runs
    with psycopg.connect(db, autocommit=True) as conn:
        (seq,) = conn.execute("SELECT max(seq) + 1 FROM ingest_keys WHERE host_id = 'web-01'"
                              ).fetchone() or (1,)
        payload = (b'{"v":1,"kind":"telemetry","host":"web-01","site":"iad1","seq":%d,'
                   b'"ts":"2026-12-03T09:00:00Z","interval_s":30,"readings":[{"component":'
                   b'"cpu:0","metric":"temp.core0_c","value":41}],"components":[]}' % seq)
        msg = decode(Received("hg/v1/iad1/web-01/telemetry", payload, 1, 1, datetime.now(UTC)))
        assert isinstance(msg, Message), msg
        result = collector_store.write_batch(conn, collector_store.Directory(), [msg], [])
        assert result.accepted == 1
        run_pass(conn, TimerPolicy(), datetime.now(UTC), "upgrade-test")
    shutil.rmtree(tmp_path / "sim", ignore_errors=True)
