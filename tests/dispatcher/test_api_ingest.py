"""`GET /api/v1/ingest`: the collectors' word on their input, staff only. Real server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg

from dispatcher.store.ingest import read
from tests.web.conftest import Fleet

Conn = psycopg.Connection[tuple[Any, ...]]


def get(base_url: str, token: str | None, path: str = "/api/v1/ingest") -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(base_url + path, headers=headers)


def test_who_may_ask(base_url: str, fleet: Fleet) -> None:
    assert get(base_url, None).status_code == 401
    r = get(base_url, fleet.acme)
    assert r.status_code == 403
    assert "staff" in r.json()["detail"]
    for token in (fleet.tech, fleet.manager):
        assert get(base_url, token).status_code == 200


def test_states_reasons_and_silence(base_url: str, fleet: Fleet, db: Conn) -> None:
    assert get(base_url, fleet.manager).json()["summary"].startswith("No collector has reported")
    now = datetime.now(UTC)
    db.cursor().executemany(
        "INSERT INTO collector_status (client_id, ready, detection_paused, reasons, held_sites,"
        " oldest_unacked_s, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        [("c-ok", True, False, [], [], 0.2, now),
         ("c-deaf", False, True, ["nothing heard for 20 s, not even a canary (limit 15 s)"],
          [], 0.0, now),
         ("c-gone", True, False, [], [], 0.0, now - timedelta(seconds=95))])
    try:
        body = get(base_url, fleet.manager).json()
        assert body["ok"] is False
        assert [(c["id"], c["state"]) for c in body["collectors"]] == [
            ("c-gone", "silent"), ("c-deaf", "not_ready"), ("c-ok", "ready")]
        gone = body["collectors"][0]
        assert gone["reasons"][0].startswith("no word from this collector for 9")
        assert gone["detection_paused"] is True
        assert body["summary"].startswith("Ingest impaired: c-gone: no word")
        assert "(and 1 more)" in body["summary"]
        metrics = httpx.get(base_url + "/metrics").text
        assert 'hourglass_ingest_collectors{state="silent"} 1.0' in metrics
        assert "hourglass_ingest_ok 0.0" in metrics
        db.execute("DELETE FROM collector_status WHERE client_id <> 'c-ok'")
        body = get(base_url, fleet.manager).json()
        assert body["ok"] is True
        assert body["summary"] == "Ingest flowing: 1 collector ready"
        db.execute("UPDATE collector_status SET held_sites = '{iad1}'")
        body = get(base_url, fleet.manager).json()
        assert body["ok"] is False
        assert body["summary"].startswith("Sites silent at once, not judged: iad1.")
    finally:
        db.execute("DELETE FROM collector_status")


def test_read_is_pure_on_its_rows() -> None:
    class Rows:
        def __init__(self, rows: list[dict[str, Any]]) -> None:
            self.rows = rows

        def execute(self, sql: str, *_: Any) -> Rows:
            return self if "collector_status" in sql else Rows([])

        def fetchall(self) -> list[dict[str, Any]]:
            return self.rows

        def fetchone(self) -> dict[str, Any]:  # the gap counts
            return {"open": 0, "unfilled": 0, "filled": 0, "missing": 0}

    t = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    row = {"client_id": "c", "ready": False, "detection_paused": True,
           "reasons": ["broker disconnected"], "held_sites": ["iad1"], "oldest_unacked_s": 0,
           "updated_at": t - timedelta(seconds=30)}
    got = read(Rows([row]), t)
    assert got.collectors[0].state == "not_ready"  # 30 s is the limit, not yet past it
    assert read(Rows([row]), t + timedelta(seconds=1)).collectors[0].state == "silent"


def test_gaps_are_counted_and_an_unfilled_one_is_named(base_url: str, fleet: Fleet,
                                                       db: Conn) -> None:
    now = datetime.now(UTC)
    db.cursor().executemany(
        "INSERT INTO ingest_gaps (host_id, first_seq, last_seq, seen_at, missing, requests,"
        " next_request_at, state, closed_at, reason) VALUES (%s, %s, %s, %s, %s, %s, %s, %s,"
        " %s, %s)",
        [("web-01", 10, 12, now - timedelta(minutes=1), 3, 1, now, "open", None, None),
         ("web-01", 40, 41, now - timedelta(minutes=30), 2, 6, now, "unfilled",
          now - timedelta(minutes=15), "2 of seqs 40-41 not resent within 15 min, asked 6 "
          "times; the host is offline since ..."),
         ("web-02", 7, 7, now - timedelta(minutes=5), 0, 1, now, "filled", now, None),
         ("web-02", 3, 3, now - timedelta(days=3), 0, 1, now, "filled",
          now - timedelta(days=3), None)])
    try:
        body = get(base_url, fleet.manager).json()
        assert body["gaps"]["open"] == 1
        assert body["gaps"]["unfilled"] == 1
        assert body["gaps"]["filled_24h"] == 1  # the one of three days ago is history
        assert body["gaps"]["missing_seqs"] == 5
        [worst] = body["gaps"]["unfilled_gaps"]
        assert (worst["host"], worst["first_seq"], worst["last_seq"]) == ("web-01", 40, 41)
        assert worst["reason"].startswith("2 of seqs 40-41 not resent")
        metrics = httpx.get(base_url + "/metrics").text
        assert 'hourglass_ingest_seq_gaps{state="unfilled"} 1.0' in metrics
        assert "hourglass_ingest_missing_seqs 5.0" in metrics
    finally:
        db.execute("DELETE FROM ingest_gaps")


def test_connections_the_database_dropped_are_replaced_not_a_500(base_url: str, fleet: Fleet,
                                                                 db: Conn) -> None:
    """After a database restart every pooled connection is dead: the next request still
    answers (bench/chaos saw a 500 on the first job action after a crash)."""
    assert get(base_url, fleet.manager).status_code == 200
    db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname ="
               " current_database() AND pid <> pg_backend_pid()")
    for _ in range(3):
        r = get(base_url, fleet.manager)
        assert r.status_code == 200, r.text
