"""The TimescaleDB path: the same schema as plain PostgreSQL to every query.

The first tests read the SQL itself and run everywhere; the last runs against a real
server wherever the timescaledb extension is installed and preloaded (not on the
development machine, where it cannot be installed: it is skipped there, saying so).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from importlib import resources

import psycopg
import pytest

from collector import store
from collector.decode import decode
from collector.model import Message, Received
from schemas.migrate import available, choose, timescale_available
from tests.conftest import ADMIN_URL

SQL = resources.files("schemas").joinpath("sql")


def sql(name: str) -> str:
    return SQL.joinpath(name).read_text(encoding="utf-8")


def columns(text: str) -> list[str]:
    """The column definitions of `CREATE TABLE telemetry (...)`, whitespace folded."""
    m = re.search(r"CREATE TABLE telemetry \((.*?)\n\)", text, re.S)
    assert m is not None
    return [" ".join(c.split()) for c in m[1].split(",")]


def aliases(text: str) -> list[str]:
    """The output column names of the hourly roll-up's SELECT."""
    m = re.search(r"SELECT (.*?)\nFROM telemetry", text, re.S)
    assert m is not None
    items, depth, start = [], 0, 0
    for i, ch in enumerate(m[1] + ","):  # split at the commas outside parentheses
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            items.append(m[1][start:i])
            start = i + 1
    return [re.split(r"\s+AS\s+|\s+", c.strip())[-1] for c in items]


def test_both_variants_define_the_same_telemetry_table_and_index() -> None:
    plain, ts = sql("002_telemetry.plain.sql"), sql("002_telemetry.timescale.sql")
    assert columns(plain) == columns(ts)
    index = "CREATE INDEX telemetry_host_time ON telemetry (host_id, time DESC);"
    assert index in plain
    assert index in ts


def test_both_hourly_rollups_answer_with_the_same_columns() -> None:
    plain, ts = sql("003_telemetry_hourly.plain.sql"), sql("003_telemetry_hourly.timescale.sql")
    assert aliases(plain) == aliases(ts) == ["bucket", "host_id", "component", "metric", "avg",
                                             "min", "max", "n"]
    assert "GROUP BY 1, host_id, component, metric" in plain
    assert "GROUP BY bucket, host_id, component, metric" in ts


def test_the_timescale_variant_sets_chunks_compression_retention_and_the_aggregate() -> None:
    ts = sql("002_telemetry.timescale.sql")
    assert "create_hypertable('telemetry', 'time', chunk_time_interval => INTERVAL '1 day')" in ts
    assert "timescaledb.compress_segmentby = 'host_id'" in ts
    assert "add_compression_policy('telemetry', INTERVAL '2 days')" in ts
    assert "add_retention_policy('telemetry', INTERVAL '90 days')" in ts
    agg = sql("003_telemetry_hourly.timescale.sql")
    assert agg.startswith("-- hourglass: no-transaction")  # a continuous aggregate needs it
    assert "WITH (timescaledb.continuous)" in agg
    assert "add_continuous_aggregate_policy('telemetry_hourly'" in agg


def test_029_segments_timescale_compression_by_series_and_plain_by_decimals() -> None:
    ts = sql("029_telemetry_decimals.timescale.sql")
    assert "timescaledb.compress_segmentby = 'host_id, component, metric'" in ts
    assert "timescaledb.compress_orderby = 'time DESC'" in ts
    assert "version >= ARRAY[2, 14] OR NOT compressed" in ts  # older versions: a warning
    plain = sql("029_telemetry_decimals.plain.sql")
    assert "ADD COLUMN d bytea" in plain
    assert "telemetry_value(u.x, u.v, r.d, u.i)" in plain


def test_migrate_picks_one_variant_per_version() -> None:
    every = available()
    for timescale in (False, True):
        chosen = choose(every, timescale)
        versions = [m.version for m in chosen]
        assert len(versions) == len(set(versions)), "two files of one version applied"
        want = "timescale" if timescale else "plain"
        assert {m.variant for m in chosen if m.version in (2, 3)} == {want}


def _has_timescale() -> bool:
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=5) as conn:
            return timescale_available(conn)
    except psycopg.OperationalError:
        return False


@pytest.mark.skipif(not _has_timescale(), reason="the timescaledb extension is not installed "
                    "and preloaded on the test server (it cannot be installed here)")
def test_on_timescale_the_collector_writes_a_hypertable_and_the_aggregate_reads_it(
        pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        variants = dict(conn.execute("SELECT version, variant FROM schema_migrations"
                                     " WHERE version IN (2, 3)").fetchall())
        assert variants == {2: "timescale", 3: "timescale"}
        assert conn.execute("SELECT count(*) FROM timescaledb_information.hypertables"
                            " WHERE hypertable_name = 'telemetry'").fetchone() == (1,)
        jobs = {r[0] for r in conn.execute("SELECT proc_name FROM timescaledb_information.jobs")}
        assert {"policy_compression", "policy_retention",
                "policy_refresh_continuous_aggregate"} <= jobs
        conn.execute("INSERT INTO sites (id, name) VALUES ('iad1', 'Ashburn 1')")
        conn.execute("INSERT INTO customers (id, name) VALUES ('acme', 'Acme')")
        conn.execute("INSERT INTO hosts (id, customer_id, site_id) VALUES ('web-01', 'acme',"
                     " 'iad1')")
        body = json.loads(resources.files("schemas").joinpath(
            "mqtt", "examples", "telemetry.valid.json").read_text())
        m = decode(Received("hg/v1/iad1/web-01/telemetry", json.dumps(body).encode(), 1, 1,
                            datetime.now(UTC)))
        assert isinstance(m, Message)
        directory = store.Directory()
        directory.reload(conn)
        result = store.write_batch(conn, directory, [m], [])
        assert result.rows == len(body["readings"])
        # Timescale owns chunks: no partitions, but its retention jobs take our figures
        store.ensure_partitions(conn, datetime.now(UTC), 30, rollup_days=400)
        assert conn.execute("SELECT count(*) FROM pg_class WHERE relname ~ "
                            "'^telemetry_[0-9]{8}$'").fetchone() == (0,)
        drops = sorted(r[0] for r in conn.execute(
            "SELECT config->>'drop_after' FROM timescaledb_information.jobs"
            " WHERE proc_name = 'policy_retention'"))
        assert drops == ["30 days", "400 days"]  # raw telemetry, the hourly aggregate
        conn.execute("CALL refresh_continuous_aggregate('telemetry_hourly', NULL, NULL)")
        n = conn.execute("SELECT sum(n) FROM telemetry_hourly WHERE host_id = 'web-01'"
                         ).fetchone()
        assert n == (len(body["readings"]),)
