"""Hostile payloads through a real Mosquitto to a running collector: none stops ingest.

Each payload an attacker on one customer server could publish is sent under that host's
own topics, between the valid telemetry of three live hosts; every hostile one must end in
dead_letters with a reason, and every valid message must be stored once, before and after
the collector is SIGKILLed with hostile messages waiting for it.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from tests.collector.conftest import Broker
from tests.collector.live import Collector, Host, client, seed
from tests.conftest import eventually

SITE = "lab1"
HOSTS = ["web-01", "web-02", "web-03"]
EXAMPLES = Path(__file__).parents[2] / "schemas" / "mqtt" / "examples"


def example(kind: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((EXAMPLES / f"{kind}.valid.json").read_text())
    return {**body, "site": SITE, "host": "web-01", "seq": 900_000}


def nested(body: dict[str, Any], path: tuple[str | int, ...], depth: int) -> bytes:
    """body with 5,000 levels of objects at path, as text (json.dumps stops at ~1,000)."""
    at: Any = body
    for key in path[:-1]:
        at = at[key]
    at[path[-1]] = "@DEEP@"
    return json.dumps(body).replace('"@DEEP@"', '{"a":' * depth + "1" + "}" * depth).encode()


def hostile(round_: int) -> list[tuple[str, bytes, str]]:
    """(kind, payload, what it is): the issue's ten, and two the store itself refuses."""
    def js(body: dict[str, Any]) -> bytes:
        return json.dumps({**body, "seq": body["seq"] + round_}).encode()

    tel = example("telemetry")
    deep_event = nested({**example("event"), "seq": 900_000 + round_}, ("evidence",), 5_000)
    birth = example("birth")
    birth["seq"] += round_
    birth["components"] = [{**birth["components"][0], "attrs": {}}]
    deep_birth = nested(birth, ("components", 0, "attrs", "x"), 5_000)
    nul_birth = example("birth")
    nul_birth["components"] = [{**nul_birth["components"][0], "serial": f"ZL\x00{round_}"}]
    nul_event = {**example("event"), "evidence": {"line": f"bad\x00{round_}"}}

    def seq(text: str) -> bytes:
        return json.dumps({**tel, "seq": "@"}).replace('"@"', text).encode()

    marker = f"r{round_}".encode()  # each round's payloads differ, to be counted apart
    return [
        ("telemetry", b"[" * 100_000 + marker + b"]" * 100_000, "200 KB of brackets"),
        ("telemetry", b'{"a":' * 100_000 + b'"' + marker + b'"' + b"}" * 100_000,
         "deep object nesting"),
        ("event", deep_event, "deep nesting under event"),
        ("birth", deep_birth, "deep nesting under birth"),
        ("telemetry", b"\xff\xfe" + marker + b"\xc3\x28", "invalid UTF-8"),
        ("telemetry", b" " * 3_000_000 + marker, "3 MB"),
        ("telemetry", js({**tel, "host": "web-02"}), "a valid payload naming another host"),
        ("telemetry", seq("-7").replace(b"}", b', "r": "' + marker + b'"}', 1), "seq -7"),
        ("telemetry", seq("1" + "0" * 30 + str(round_)), "seq 10^30"),
        ("telemetry", seq(f"1e40{round_}"), "seq 1e400"),
        ("birth", js(nul_birth), "a NUL in a serial (PostgreSQL refuses it)"),
        ("event", js(nul_event), "a NUL in the evidence (jsonb refuses it)"),
    ]


def dead_payloads(url: str) -> dict[bytes, str]:
    with psycopg.connect(url) as conn:
        return {bytes(p): r for p, r in conn.execute("SELECT payload, reason FROM dead_letters")}


def stored(url: str) -> dict[str, set[int]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT host_id, seq FROM ingest_keys WHERE kind = 'telemetry'")
        out: dict[str, set[int]] = {h: set() for h in HOSTS}
        for host, seq in rows:
            out[host].add(int(seq))
        return out


def test_hostile_payloads_are_dead_letters_and_ingest_goes_on(pg_url: str,
                                                             tmp_path: Path) -> None:
    broker = Broker(tmp_path)
    broker.start()
    seed(pg_url, SITE, {"r1": HOSTS})
    col = Collector(pg_url, broker.url)
    col.start()
    stop = threading.Event()
    hosts = [Host(h, SITE, broker.url, 0.2) for h in HOSTS]
    attacker = client(broker.url, "attacker-web-01")
    try:
        eventually(col.ready, 20, "the collector ready")
        for h in hosts:
            h.start(stop)
        sent: dict[bytes, str] = {}
        for round_ in (1, 2):
            if round_ == 2:  # hostile messages wait in the collector's session meanwhile
                col.kill()
            for kind, payload, what in hostile(round_):
                attacker.publish(f"hg/v1/{SITE}/web-01/{kind}", payload, qos=1) \
                    .wait_for_publish(10)
                sent[payload] = what
            if round_ == 2:
                col.start()
            eventually(lambda: set(sent) <= set(dead_payloads(pg_url)), 60,
                       f"round {round_}'s hostile payloads in dead_letters", 0.5)
        eventually(col.ready, 30, "the collector ready after the hostile rounds")
        eventually(lambda: all(len(h.published) >= 25 for h in hosts), 30,
                   "the live hosts publishing after the restart")
        stop.set()
        for h in hosts:
            h.close()

        def all_stored() -> bool:
            got = stored(pg_url)
            return all(set(h.published) <= got[h.name] for h in hosts)

        eventually(all_stored, 30, "every valid telemetry stored")
        got = stored(pg_url)
        for h in hosts:
            assert got[h.name] == set(h.published), f"{h.name}: stored exactly what it sent"
        dead = dead_payloads(pg_url)
        reasons = {what: dead[p] for p, what in sent.items()}
        assert "nests deeper than 32" in reasons["200 KB of brackets"]
        assert "nests deeper than 32" in reasons["deep object nesting"]
        assert "nests deeper than 32" in reasons["deep nesting under event"]
        assert "nests deeper than 32" in reasons["deep nesting under birth"]
        assert reasons["invalid UTF-8"].startswith("not JSON")
        assert "exceeds 1048576" in reasons["3 MB"]
        assert "published under lab1/web-01" in reasons["a valid payload naming another host"]
        assert "less than the minimum of 1" in reasons["seq -7"]
        assert "greater than the maximum" in reasons["seq 10^30"]
        assert "out of range" in reasons["seq 1e400"]
        assert "refused by the store" in reasons["a NUL in a serial (PostgreSQL refuses it)"]
        assert "refused by the store" in reasons["a NUL in the evidence (jsonb refuses it)"]
        assert col.proc is not None
        assert col.proc.poll() is None, "the collector kept running"
        assert col.metric("hourglass_collector_ready") == 1.0
        with psycopg.connect(pg_url) as conn:
            assert conn.execute("SELECT count(*) FROM incidents").fetchone() == (0,)
    finally:
        stop.set()
        attacker.disconnect()
        col.stop()
        broker.stop()


def test_ready_turns_false_while_messages_wait_and_says_why(pg_url: str,
                                                           tmp_path: Path) -> None:
    """A database that refuses work holds messages unacknowledged: /readyz 503 names it."""
    broker = Broker(tmp_path)
    broker.start()
    seed(pg_url, SITE, {"r1": HOSTS})
    col = Collector(pg_url, broker.url, HOURGLASS_COLLECTOR_STALL_S="3")
    col.start()
    pub = client(broker.url, "pub")
    try:
        eventually(col.ready, 20, "the collector ready")
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("BEGIN")  # held until ROLLBACK: every batch waits on it
            conn.execute("LOCK TABLE ingest_keys IN ACCESS EXCLUSIVE MODE")
            body = {**example("telemetry"), "seq": 5,
                    "ts": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
            pub.publish(f"hg/v1/{SITE}/web-01/telemetry", json.dumps(body), qos=1)
            status = eventually(lambda: (r := col.readyz()) and r[0] == 503 and r, 20,
                                "/readyz 503 while the batch waits")
            assert "oldest unacknowledged message waited" in status[1]
            assert (col.metric("hourglass_collector_oldest_unacked_seconds") or 0) >= 3
            conn.execute("ROLLBACK")
        eventually(col.ready, 20, "ready again once the batch committed")
    finally:
        pub.disconnect()
        col.stop()
        broker.stop()
