"""Upgrades keep data: a database built and filled by a previous release, then upgraded.

Each release is a line ``release-N <commit>`` in releases.txt (and a git tag of the same
name, where the clone has tags); every one is a case here, so the newest always tests "the
release production runs -> this commit". The release's own code, taken from git, migrates
an empty database and fills it (tests/upgrade_data.py: its ``hourglass load``, tokens and
collector, then the dispatcher's rows in SQL). Today's migrations
(``schemas.migrate.migrate``, what ``hourglass db migrate`` runs) then upgrade it: every
table and view of the release, and every column it had, must hold exactly the same rows; a
second migrate must change nothing; today's collector, API and dispatcher loop must work
on the result.

To add a release: add its line to releases.txt, and tag the commit that ships,

    echo "release-3 $(git rev-parse <commit>)" >> releases.txt
    git tag -a release-3 -m "release 3" <commit> && git push origin release-3

A table or column that release added is then an old one, and this test fails until
tests/upgrade_data.py gives it rows (and a value in each column). A migration that is
meant to rewrite old data goes in REWRITES below, with why. A clone without history fails
here: ``git fetch --unshallow``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn

from collector import store as collector_store
from collector.decode import decode
from collector.model import Message, Received
from dispatcher.domain.policy import TimerPolicy
from dispatcher.http.app import create_app
from dispatcher.service.engine import run_pass
from schemas.migrate import migrate
from tests import upgrade_data as data
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
#: What a release needs to migrate and fill a database (git archive paths).
TREE = ("schemas", "hourglass", "agent", "collector", "dispatcher", "pyproject.toml",
        "docs/fleet.example.yaml")
#: "table.column" -> why a migration rewrites its values on purpose (none does yet).
REWRITES: dict[str, str] = {}
#: Tables an upgrade may add rows to, keeping the old ones: why.
APPENDS = {"schema_migrations": "each migration records its version there"}
#: Old tables (a full-match pattern of the name) a migration replaces by another table or
#: view with the same columns that must hold every one of their rows: its name, and why.
REPLACED: dict[str, tuple[str, str]] = {
    r"telemetry_(default|[0-9]{8})": (
        "telemetry", "partitions of the narrow telemetry table: migration 019 moves their "
        "rows into telemetry_rows (a row per message) and drops them; the telemetry view, "
        "with the old columns, reads those rows (and telemetry itself must equal before)"),
}
Rows = dict[str, list[tuple[str | None, ...]]]  # a snapshot: table -> its rows, as text


def _releases() -> tuple[list[str], str]:
    """The releases, oldest first, as commits git can archive (or why there are none).

    releases.txt names each release's commit, so a clone without tags (CI's) tests them
    all; a release-N tag the file does not list is tested too.
    """
    found: dict[str, str] = {}
    listed = ROOT / "releases.txt"
    if listed.exists():
        for n, line in enumerate(listed.read_text().splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            name, _, commit = line.partition(" ")
            if not name.removeprefix("release-").isdigit() or not commit.strip():
                return [], f"releases.txt line {n}: want 'release-N <commit>', got {line!r}"
            found[name] = commit.strip()
    try:
        out = subprocess.run(["git", "tag", "--list", "release-*"], cwd=ROOT, check=True,
                             capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return [], (f"cannot ask git for the releases ({exc}); run the tests in a git clone "
                    "of the project")
    for tag in out.split():
        if tag.removeprefix("release-").isdigit():
            found.setdefault(tag, tag)
    if not found:
        return [], ("no release in releases.txt and no release-N tag: add the commit "
                    "production runs to releases.txt ('release-1 <commit>')")
    RELEASE_COMMITS.update(found)
    return sorted(found, key=lambda t: int(t.removeprefix("release-"))), ""


RELEASE_COMMITS: dict[str, str] = {}  # release name -> what git archive takes
RELEASES, NO_RELEASES = _releases()


@dataclass(frozen=True)
class Table:
    """One table or view as information_schema tells it."""

    columns: tuple[str, ...]
    key: tuple[str, ...]  # the primary key's columns; empty for views and keyless tables
    partition: bool  # a partition of another table (its rows are the parent's too)


def tables(conn: psycopg.Connection[Any]) -> dict[str, Table]:
    """Every table and view of the public schema, with its columns in order."""
    cols: dict[str, list[str]] = {}
    for t, c in conn.execute("SELECT table_name, column_name FROM information_schema.columns"
                             " WHERE table_schema = 'public' ORDER BY table_name,"
                             " ordinal_position"):
        cols.setdefault(t, []).append(c)
    keys: dict[str, list[str]] = {}
    for t, c in conn.execute(
            "SELECT k.table_name, k.column_name FROM information_schema.table_constraints t"
            " JOIN information_schema.key_column_usage k USING (constraint_schema,"
            " constraint_name, table_name) WHERE t.constraint_type = 'PRIMARY KEY'"
            " AND t.table_schema = 'public' ORDER BY k.table_name, k.ordinal_position"):
        keys.setdefault(t, []).append(c)
    kinds = [r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables"
                                        " WHERE table_schema = 'public'")]
    parts = {r[0] for r in conn.execute("SELECT c.relname FROM pg_class c JOIN pg_namespace n"
                                        " ON n.oid = c.relnamespace WHERE n.nspname = 'public'"
                                        " AND c.relispartition")}
    return {t: Table(tuple(cols[t]), tuple(keys.get(t, ())), t in parts) for t in kinds}


def snapshot(conn: psycopg.Connection[Any], shape: dict[str, Table],
             skip: frozenset[str] = frozenset()) -> Rows:
    """Every row of every table in shape, its columns (less `skip`) as text, by primary key."""
    out = {}
    for name, t in shape.items():
        cols = [c for c in t.columns if f"{name}.{c}" not in skip]
        text = ", ".join(f'"{c}"::text' for c in cols)
        order = ", ".join([f'"{c}"' for c in t.key] + [str(i + 1) for i in range(len(cols))])
        out[name] = conn.execute(f'SELECT {text} FROM "{name}" ORDER BY {order}').fetchall()
    return out


def empty_columns(conn: psycopg.Connection[Any], shape: dict[str, Table]) -> list[str]:
    """The "table.column"s that hold no value in any row (partitions: see their parent)."""
    out = []
    for name, t in shape.items():
        if t.partition:
            continue
        counts = conn.execute(f"""SELECT {', '.join(f'count("{c}")' for c in t.columns)}
                                  FROM "{name}" """).fetchone() or ()
        out += [f"{name}.{c}" for c, n in zip(t.columns, counts, strict=True) if n == 0]
    return out


def old_tree(tag: str, dest: Path) -> Path:
    """The release's code, from git."""
    got = subprocess.run(["git", "archive", "--format=tar", RELEASE_COMMITS.get(tag, tag),
                          *TREE], cwd=ROOT, capture_output=True, timeout=60)
    if got.returncode != 0:
        pytest.fail(f"git archive {tag} failed ({got.stderr.decode(errors='replace').strip()});"
                    " a shallow clone lacks the release's commit: git fetch --unshallow")
    with tarfile.open(fileobj=BytesIO(got.stdout)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def seed(tree: Path, url: str) -> dict[str, str]:
    """Migrate and fill the database with the release's own code; its API tokens."""
    shutil.copy(Path(data.__file__), tree / "upgrade_data.py")
    proc = subprocess.run([sys.executable, "upgrade_data.py", url], cwd=tree, timeout=120,
                          env={**{k: v for k, v in os.environ.items()
                                  if not k.startswith("HOURGLASS_")}, "PYTHONPATH": str(tree)},
                          capture_output=True, text=True)
    assert proc.returncode == 0, f"the release's own code failed:\n{proc.stderr[-4000:]}"
    tokens: dict[str, str] = json.loads(proc.stdout.splitlines()[-1])
    return tokens


@pytest.mark.parametrize("tag", RELEASES or ["no release"])
def test_an_upgrade_from_a_release_keeps_every_row(tag: str, blank_db: str,
                                                   tmp_path: Path) -> None:
    if not RELEASES:
        pytest.fail(NO_RELEASES)
    tokens = seed(old_tree(tag, tmp_path / tag), blank_db)
    old, before = filled(tag, blank_db)
    applied = migrate(blank_db, log=lambda m: None)  # none when tag is this very commit
    print(f"upgraded by {', '.join(applied) or 'nothing'}")
    upgraded = kept(tag, blank_db, old, before)
    assert migrate(blank_db, log=lambda m: None) == [], "a second migrate applied something"
    with psycopg.connect(blank_db) as conn:
        assert snapshot(conn, tables(conn)) == upgraded, "a second migrate changed rows"
    today_works(blank_db, tokens)


def filled(tag: str, url: str) -> tuple[dict[str, Table], Rows]:
    """The dispatcher's rows added to what the release wrote; the release's tables and
    their rows, once every table has rows and every column a value."""
    with psycopg.connect(url) as conn:
        data.fill(conn)
        conn.commit()
        old = tables(conn)
        before = snapshot(conn, old, frozenset(REWRITES))
        unfilled = empty_columns(conn, old)
    print(f"\n{tag}: " + ", ".join(f"{t} {len(r)}" for t, r in sorted(before.items()) if r))
    empty = [t for t, rows in before.items() if not rows and not old[t].partition]
    assert not empty, (f"{tag} has tables the data set leaves empty: {', '.join(sorted(empty))};"
                       " give them rows in tests/upgrade_data.py")
    assert not unfilled, (f"{tag} has columns no row of the data set fills: {unfilled}; give "
                          "them values in tests/upgrade_data.py")
    if "telemetry_default" in old:  # plain PostgreSQL: telemetry partitioned by day
        days = [t for t, s in old.items() if s.partition and before[t]]
        assert "telemetry_default" in days, days
        assert len(days) >= 3, f"the data set's telemetry fills only {days}"
    return old, before


def kept(tag: str, url: str, old: dict[str, Table], before: Rows) -> Rows:
    """Check every old table, column and row is still there, unchanged; the whole
    upgraded database's rows."""
    replaced = {name: successor for name in old for pattern, (successor, _) in REPLACED.items()
                if re.fullmatch(pattern, name)}
    with psycopg.connect(url) as conn:
        new = tables(conn)
        for name, t in old.items():
            kept_as = replaced.get(name, name)
            assert kept_as in new, f"the upgrade from {tag} dropped {name}"
            gone = set(t.columns) - set(new[kept_as].columns)
            assert not gone, f"the upgrade from {tag} dropped {name} columns {sorted(gone)}"
        after = snapshot(conn, {n: t for n, t in old.items() if n not in replaced},
                         frozenset(REWRITES))
        upgraded = snapshot(conn, new)
    for name, successor in replaced.items():
        lost = Counter(before[name]) - Counter(upgraded[successor])
        assert not lost, f"the upgrade from {tag} lost {name} rows (not in {successor}): {lost}"
    for name in old:
        if name in replaced:
            continue
        if name in APPENDS:
            lost = set(before[name]) - set(after[name])
            assert not lost, f"the upgrade from {tag} changed or lost {name} rows {lost}"
        else:
            assert after[name] == before[name], _diff(tag, name, before[name], after[name])
    return upgraded


def _diff(tag: str, name: str, before: list[Any], after: list[Any]) -> str:
    lost = [r for r in before if r not in after][:3]
    new = [r for r in after if r not in before][:3]
    return (f"the upgrade from {tag} changed {name}: {len(before)} rows before, {len(after)}"
            f" after; e.g. before {lost}, after {new}")


def today_works(url: str, tokens: dict[str, str]) -> None:
    """Today's collector stores a message, the API lists incidents, the loop runs a pass."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT max(seq) + 1 FROM ingest_keys WHERE host_id = 'web-01'"
                           ).fetchone()
        assert row is not None
        at = data.T0 + timedelta(seconds=30)
        payload = (b'{"v":1,"kind":"telemetry","host":"web-01","site":"iad1","seq":%d,'
                   b'"ts":"%s","interval_s":7200,"readings":[{"component":"host:web-01",'
                   b'"metric":"cpu.percent","value":12.5}],"components":[]}'
                   % (row[0], data.iso(at).encode()))
        msg = decode(Received("hg/v1/iad1/web-01/telemetry", payload, 1, 1, at))
        assert isinstance(msg, Message), msg
        result = collector_store.write_batch(conn, collector_store.Directory(), [msg], [])
        assert result.accepted == 1, result
        assert conn.execute("SELECT value FROM telemetry WHERE host_id = 'web-01' AND time = %s",
                            (at,)).fetchall() == [(12.5,)]
        incidents = [r[0] for r in conn.execute("SELECT id FROM incidents ORDER BY id DESC")]
        with serve(url) as base:
            listed = _get(base, "/api/v1/incidents?limit=200", tokens["admin"])
            assert [i["id"] for i in listed["items"]] == incidents
            breached = next(i for i in listed["items"] if i["credit"])
            assert breached["credit"] == {"amount": "45.00", "currency": "USD", "percent": 10.0}
            one = _get(base, f"/api/v1/incidents/{breached['id']}", tokens["acme"])
            assert [e["kind"] for e in one["timeline"]][:2] == ["detected", "dispatched"]
            mine = _get(base, "/api/v1/incidents", tokens["acme"])["items"]
            assert {i["customer"] for i in mine} == {"acme"}
        later = data.T0 + timedelta(minutes=10)  # the nic's ack timeout is due by then
        run_pass(conn, TimerPolicy(), later, "upgrade-test")
        assert conn.execute("SELECT count(*) FROM timers WHERE fired_by = 'upgrade-test'"
                            ).fetchone() == (2,)
        assert conn.execute("SELECT count(*) FROM timers WHERE fired_at IS NULL AND due_at <= %s",
                            (later,)).fetchone() == (0,)


def _get(base: str, path: str, token: str) -> Any:
    got = httpx.get(base + path, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert got.status_code == 200, (path, got.status_code, got.text)
    return got.json()


@contextlib.contextmanager
def serve(url: str) -> Iterator[str]:
    """Today's API on a free local port while the block runs (uvicorn in a thread)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(url), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, name="upgrade-uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped at start"
            assert time.monotonic() < deadline, "uvicorn did not start within 15 s"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
