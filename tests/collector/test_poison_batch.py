"""A batch a message spoils: the rest is stored, the spoiler is a dead letter, and a dead
letter the database refuses too is counted and dropped, never retried forever."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import psycopg

from collector.decode import decode
from collector.model import DeadLetter, Message, Received
from collector.service import Collector
from hourglass.config import load_config
from tests.collector.live import seed
from tests.collector.test_hostile_ingest import example

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def received(topic: str, payload: bytes, index: int) -> Received:
    return Received(topic, payload, index + 1, 0, NOW, 0, index)  # QoS 0: nothing to ack


def test_one_by_one_stores_the_good_and_drops_what_cannot_be_stored(pg_url: str) -> None:
    seed(pg_url, "lab1", {"r1": ["web-01"]})
    col = Collector(load_config(env={"HOURGLASS_DATABASE_URL": pg_url,
                                     "HOURGLASS_COLLECTOR_HTTP_ADDR": ""}))
    good = {**example("telemetry"), "seq": 1}
    poison = example("birth")
    poison["components"] = [{**poison["components"][0], "serial": "ZL\x00"}]
    raws = [received("hg/v1/lab1/web-01/telemetry", json.dumps(good).encode(), 0),
            received("hg/v1/lab1/web-01/birth", json.dumps(poison).encode(), 1)]
    items: list[tuple[Received, Message | DeadLetter]] = [(r, decode(r)) for r in raws]
    # a dead letter whose topic PostgreSQL cannot even encode (a lone surrogate)
    bad = received("hg/v1/lab1/web-01/\udc80", b"x", 2)
    items.append((bad, DeadLetter(bad.topic, "unknown kind", b"x", NOW)))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        col._write(conn, items)  # type: ignore[arg-type]
        keys = conn.execute("SELECT kind, seq FROM ingest_keys").fetchall()
        dead = conn.execute("SELECT topic, reason FROM dead_letters").fetchall()
    assert keys == [("telemetry", 1)]
    assert len(dead) == 1
    assert dead[0][0] == "hg/v1/lab1/web-01/birth"
    assert dead[0][1].startswith("stored alone, refused by the store:")
    assert col.stats["isolated_batches"] == 1
    assert col.stats["dropped"] == 1
    assert col.stats["accepted"] == 1
