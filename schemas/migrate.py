"""Applies schemas/sql migrations in order, once each, safely from several processes at once.

Files are `NNN_name.sql`; a version may come in two variants, `NNN_name.plain.sql` and
`NNN_name.timescale.sql`, of which the one fitting the server is applied. A file whose
first line is `-- hourglass: no-transaction` runs statement by statement outside a
transaction (TimescaleDB continuous aggregates need that).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

import psycopg

from schemas import telemetry_convert

#: Advisory lock key ("hourglas" in ASCII), so two migrators queue instead of racing.
LOCK_KEY = 0x686F75726772_6C61
_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+?)(?:\.(plain|timescale))?\.sql$")


@dataclass(frozen=True)
class Migration:
    """One SQL file to apply."""

    version: int
    name: str
    variant: str | None
    sql: str

    @property
    def transactional(self) -> bool:
        """Whether the file runs inside one transaction."""
        return not self.sql.lstrip().startswith("-- hourglass: no-transaction")


def available() -> list[Migration]:
    """All migration files shipped in the package, in version order."""
    out = []
    for entry in resources.files("schemas").joinpath("sql").iterdir():
        m = _NAME.match(entry.name)
        if m:
            out.append(
                Migration(int(m[1]), m[2], m[3], entry.read_text(encoding="utf-8"))
            )
    return sorted(out, key=lambda m: (m.version, m.variant or ""))


def choose(migrations: list[Migration], timescale: bool) -> list[Migration]:
    """Pick, per version, the plain or the Timescale variant (or the only file)."""
    want = "timescale" if timescale else "plain"
    return [m for m in migrations if m.variant in (None, want)]


def timescale_available(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    """True when the timescaledb extension is installed and preloaded on the server."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'),"
        " current_setting('shared_preload_libraries')"
    ).fetchone()
    return bool(row and row[0] and "timescaledb" in str(row[1]))


def _statements(sql: str) -> list[str]:
    """Split a no-transaction file into statements (such files hold no `;` in bodies)."""
    body = "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def migrate(url: str, log: Callable[[str], None] = print, before: int | None = None) -> list[str]:
    """Apply what is missing (only versions below `before`, when given: tests build an
    older schema so); return the names applied. Safe to run twice or concurrently."""
    applied_now: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL, variant text,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            for mig in choose(available(), timescale_available(conn)):
                if mig.version in done or (before is not None and mig.version >= before):
                    continue
                label = f"{mig.version:03d}_{mig.name}"
                label += f" ({mig.variant})" if mig.variant else ""
                log(f"applying {label}")
                if mig.transactional:
                    with conn.transaction():
                        conn.execute(mig.sql.encode())
                        _record(conn, mig)
                else:
                    for stmt in _statements(mig.sql):
                        conn.execute(stmt.encode())
                    _record(conn, mig)
                applied_now.append(label)
            if telemetry_convert.pending(conn):  # 019's data step: batched, resumable
                log("converting narrow telemetry rows (019), a batch a transaction")
                telemetry_convert.convert(conn, log=log)
                applied_now.append("019 telemetry conversion")
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    return applied_now


def _record(conn: psycopg.Connection[tuple[object, ...]], mig: Migration) -> None:
    conn.execute(
        "INSERT INTO schema_migrations (version, name, variant) VALUES (%s, %s, %s)",
        (mig.version, mig.name, mig.variant),
    )
