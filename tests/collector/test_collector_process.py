"""The collector as a real process between a real Mosquitto and a real PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector.store import ensure_partitions
from hourglass.config import mqtt_endpoint
from tests.conftest import eventually, free_port

EXAMPLES = "schemas/mqtt/examples"
HEALTH_PORT = free_port()


def load(name: str) -> dict[str, Any]:
    with open(os.path.join(EXAMPLES, name)) as f:
        data: dict[str, Any] = json.load(f)
        return data


def seed(url: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO sites (id, name) VALUES ('iad1', 'Ashburn 1')")
        conn.execute("INSERT INTO customers (id, name, sla_minutes) VALUES ('acme', 'Acme', 60)")
        conn.execute("INSERT INTO hosts (id, customer_id, site_id, monthly_fee)"
                     " VALUES ('web-01', 'acme', 'iad1', 450)")


@pytest.fixture
def collector(pg_url: str, mosquitto: str) -> Iterator[subprocess.Popen[bytes]]:
    seed(pg_url)
    env = {**os.environ, "HOURGLASS_DATABASE_URL": pg_url, "HOURGLASS_MQTT_URL": mosquitto,
           "HOURGLASS_COLLECTOR_BATCH_MS": "50",
           "HOURGLASS_COLLECTOR_HTTP_ADDR": f"127.0.0.1:{HEALTH_PORT}"}
    proc = subprocess.Popen([sys.executable, "-m", "hourglass.cli", "collector", "run"], env=env)
    time.sleep(1.5)  # let it connect and subscribe before anything is published
    yield proc
    proc.terminate()
    proc.wait(timeout=15)


def publisher(url: str) -> mqtt.Client:
    host, port, _ = mqtt_endpoint(url)
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5,
                    client_id="test-publisher")
    c.connect(host, port)
    c.loop_start()
    return c


def test_stores_once_detects_and_dead_letters_bad_input(
    collector: subprocess.Popen[bytes], pg_url: str, mosquitto: str
) -> None:
    pub = publisher(mosquitto)
    sends = [
        ("hg/v1/iad1/web-01/birth", json.dumps(load("birth.valid.json")).encode()),
        ("hg/v1/iad1/web-01/telemetry", b"this is not json"),
        ("hg/v1/iad1/web-01/telemetry", json.dumps({"v": 1, "kind": "telemetry"}).encode()),
        ("hg/v1/iad1/ghost-9/state", json.dumps(
            {**load("state.valid.json"), "host": "ghost-9"}).encode()),
        ("hg/v1/iad1/web-01/telemetry", json.dumps(load("telemetry.valid.json")).encode()),
        # the same (host, seq) again, as a redelivery after a crash would send it
        ("hg/v1/iad1/web-01/telemetry", json.dumps(load("telemetry.valid.json")).encode()),
        ("hg/v1/iad1/web-01/telemetry",
         json.dumps(load("telemetry-failed-disk.valid.json")).encode()),
        ("hg/v1/iad1/web-01/event", json.dumps(load("event.valid.json")).encode()),
    ]
    for topic, payload in sends:
        pub.publish(topic, payload, qos=1).wait_for_publish(5)

    def counts() -> tuple[int, ...] | None:
        with psycopg.connect(pg_url) as conn:
            row = conn.execute(
                "SELECT (SELECT count(*) FROM dead_letters), (SELECT count(*) FROM ingest_keys),"
                " (SELECT count(*) FROM incidents), (SELECT count(*) FROM telemetry),"
                " (SELECT count(*) FROM components WHERE host_id = 'web-01')").fetchone()
        assert row is not None
        return tuple(row) if row[0] == 3 and row[1] == 4 else None

    dead, keys, incidents, readings, components = eventually(counts, 15, "the batch stored", 0.1)
    assert (dead, keys, incidents) == (3, 4, 1)
    assert readings == 5 + 1  # the duplicate telemetry wrote nothing
    assert components == 6
    with psycopg.connect(pg_url) as conn:
        reasons = [r[0] for r in conn.execute("SELECT reason FROM dead_letters ORDER BY id")]
        inc = conn.execute("SELECT component, failure, state, detected_at, deadline - detected_at"
                           " FROM incidents").fetchone()
        events = conn.execute("SELECT count(*) FROM incident_events").fetchone()
    assert reasons[0].startswith("not JSON")
    assert reasons[1].startswith("schema:")
    assert "unknown host 'ghost-9'" in reasons[2]
    assert inc is not None
    assert inc[:3] == ("disk:ZL2ABCD1", "smart_failed", "detected")
    # the evidence's time: one batch is taken in the agent's seq order, so the event (seq 8,
    # detected 09:04:11) opens it before the failed snapshot (seq 9, 09:04:30) repeats it
    assert inc[3].isoformat() == "2026-11-23T09:04:11+00:00"
    assert inc[4].total_seconds() == 3600
    assert events == (1,)  # the event repeating the same failure opened nothing more
    assert collector.poll() is None, "the collector must keep running after bad input"
    pub.loop_stop()


def test_daily_partitions_are_made_ahead_and_dropped_past_retention(pg_url: str) -> None:
    from datetime import UTC, datetime

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE telemetry_rows_20200101 PARTITION OF telemetry_rows"
                     " FOR VALUES FROM ('2020-01-01') TO ('2020-01-02')")
        ensure_partitions(conn, datetime(2026, 11, 23, 12, tzinfo=UTC), retention_days=90)
        names = {r[0] for r in conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid")}
    assert {"telemetry_rows_20261122", "telemetry_rows_20261123",
            "telemetry_rows_20261126"} <= names
    assert "telemetry_rows_20200101" not in names  # the whole day dropped, past retention


def test_health_and_metrics(collector: subprocess.Popen[bytes], mosquitto: str) -> None:
    base = f"http://127.0.0.1:{HEALTH_PORT}"
    eventually(lambda: httpx.get(base + "/readyz").status_code == 200, 15, "ready", 0.1)
    assert httpx.get(base + "/healthz").text == "ok\n"
    pub = publisher(mosquitto)
    pub.publish("hg/v1/iad1/web-01/telemetry", b"not json", qos=1).wait_for_publish(5)
    eventually(lambda: 'hourglass_collector_messages_total{outcome="dead"} 1.0'
               in httpx.get(base + "/metrics").text, 15, "the dead letter counted", 0.1)
    assert "hourglass_collector_broker_connected 1.0" in httpx.get(base + "/metrics").text
    pub.loop_stop()


def test_a_writer_that_fails_stops_the_collector_with_the_error(pg_url: str,
                                                                 mosquitto: str) -> None:
    """Not an outage (those are waited out) but a broken schema: exit and be restarted,
    rather than hold every later acknowledgement behind the dead writer's batch."""
    seed(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP TABLE ingest_floor")  # the claim now fails on every batch
    env = {**os.environ, "HOURGLASS_DATABASE_URL": pg_url, "HOURGLASS_MQTT_URL": mosquitto,
           "HOURGLASS_COLLECTOR_HTTP_ADDR": ""}
    proc = subprocess.Popen([sys.executable, "-m", "hourglass.cli", "collector", "run"],
                            env=env, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        pub = publisher(mosquitto)
        pub.publish("hg/v1/iad1/web-01/telemetry",
                    json.dumps(load("telemetry.valid.json")).encode(), qos=1).wait_for_publish(5)
        _, err = proc.communicate(timeout=20)
        pub.loop_stop()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert "collector writer failed" in err
    assert "ingest_floor" in err  # the database's own words name what is wrong
