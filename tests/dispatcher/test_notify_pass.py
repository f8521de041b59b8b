"""Timeline events and low-stock alerts become outbox rows exactly once, on a real database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from dispatcher.store import outbox
from tests.conftest import eventually
from tests.dispatcher.world import T0, at, open_incident, setup_fleet


@pytest.fixture
def db(pg_url: str) -> Iterator[psycopg.Connection[Any]]:
    """The small fleet, with contacts and an account team for acme."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        setup_fleet(conn)
        conn.execute("UPDATE customers SET account_manager = 'am-lee' WHERE id = 'acme'")
        conn.execute("INSERT INTO account_team (customer_id, person_id) VALUES ('acme', 'am-kim')")
        conn.execute("INSERT INTO contacts (person_id, channel, address) VALUES"
                     " ('t-ana', 'email', 'ana@example.net'),"
                     " ('t-maria', 'email', 'maria@example.net'),"
                     " ('t-maria', 'webhook', 'http://127.0.0.1:9/maria'),"
                     " ('am-lee', 'email', 'lee@example.net'),"
                     " ('am-kim', 'email', 'kim@example.net')")
        yield conn


def queued(db: psycopg.Connection[Any]) -> list[tuple[str, str, str]]:
    """(recipient, channel, reason) of every outbox row, in order."""
    return [tuple(r) for r in db.execute(  # type: ignore[misc]
        "SELECT recipient, channel, reason FROM outbox ORDER BY id")]


def add_event(conn: psycopg.Connection[Any], incident: int, kind: str, detail: str) -> None:
    """Append a timeline event as the dispatcher's modules do."""
    conn.execute("INSERT INTO incident_events (incident_id, at, actor, kind, detail)"
                 " VALUES (%s, %s, 'dispatcher', %s, %s::jsonb)", (incident, at(1), kind, detail))


def test_events_become_messages_once(db: psycopg.Connection[Any]) -> None:
    """Opened → the account team; dispatched → the technician; escalated → the manager."""
    i = open_incident(db)
    add_event(db, i, "dispatched", '{"technician": "t-ana"}')
    add_event(db, i, "acknowledged", "{}")
    add_event(db, i, "escalated", '{"step": "risk", "to": "t-maria", "role": "manager"}')
    assert outbox.notify_pass(db, at(2)) == 4
    expected = [("am-lee", "email", "incident_opened"), ("am-kim", "email", "incident_opened"),
                ("t-ana", "email", "dispatched"), ("t-maria", "email", "escalated"),
                ("t-maria", "webhook", "escalated")]
    assert queued(db) == expected
    assert outbox.notify_pass(db, at(3)) == 0  # the cursor moved: nothing twice
    assert queued(db) == expected
    refs = {r[0] for r in db.execute("SELECT ref FROM outbox WHERE recipient = 't-ana'")}
    assert len(refs) == 1
    assert refs.pop().startswith(f"incident:{i}:event:")


def test_an_event_committed_late_with_a_lower_id_is_not_skipped(
        pg_url: str, db: psycopg.Connection[Any]) -> None:
    """A transaction that took its event id first but commits last is still notified."""
    i = open_incident(db)
    outbox.notify_pass(db, at(0))
    with psycopg.connect(pg_url) as slow:  # not autocommit: its transaction stays open
        add_event(slow, i, "dispatched", '{"technician": "t-ana"}')
        add_event(db, i, "escalated", '{"step": "risk", "to": "t-maria"}')
        outbox.notify_pass(db, at(2))
        got = queued(db)
        assert ("t-maria", "email", "escalated") in got  # visible: told at once
        assert ("t-ana", "email", "dispatched") not in got
        slow.commit()
    outbox.notify_pass(db, at(3))
    got = queued(db)
    assert got.count(("t-ana", "email", "dispatched")) == 1
    assert got.count(("t-maria", "email", "escalated")) == 1

    def pruned() -> bool:
        """The cursor passed both events (once no transaction anywhere predates them)."""
        outbox.notify_pass(db, at(4))
        return db.execute("SELECT count(*) FROM notified_events").fetchone() == (0,)

    eventually(pruned, timeout=20, what="the notifier's cursor to pass both events")
    assert len(queued(db)) == len(got)


def test_two_notifiers_at_once_queue_each_message_once(
        pg_url: str, db: psycopg.Connection[Any]) -> None:
    """The cursor row is claimed with SKIP LOCKED: a second notifier waits its turn."""
    i = open_incident(db)
    add_event(db, i, "dispatched", '{"technician": "t-ana"}')
    with psycopg.connect(pg_url, autocommit=True) as other:
        with db.transaction():
            db.execute("SELECT 1 FROM notifier_cursor FOR UPDATE")
            assert outbox.notify_pass(other, at(1)) == 0
        assert outbox.notify_pass(other, at(1)) == 2
        assert outbox.notify_pass(db, at(1)) == 0
    assert queued(db).count(("t-ana", "email", "dispatched")) == 1


def test_low_stock_alert_tells_the_site_manager_once(db: psycopg.Connection[Any]) -> None:
    db.execute("INSERT INTO spares (site_id, part, kind, count) VALUES"
               " ('iad1', 'ST8000NM000A', 'disk', 1)")
    db.execute("INSERT INTO spare_alerts (site_id, part, kind, available, threshold, at)"
               " VALUES ('iad1', 'ST8000NM000A', 'disk', 1, 1, %s)", (T0,))
    outbox.notify_pass(db, at(1))
    outbox.notify_pass(db, at(2))
    assert queued(db) == [("t-maria", "email", "low_spares"), ("t-maria", "webhook", "low_spares")]
    (body,) = db.execute("SELECT body FROM outbox WHERE channel = 'email'").fetchone() or ("",)
    assert "ST8000NM000A (disk) at iad1: 1 available, threshold 1" in body


def test_credit_issued_queues_the_signed_billing_webhook(db: psycopg.Connection[Any]) -> None:
    """The credit's event queues billing once, with the credit as the body."""
    i = open_incident(db)
    (credit,) = db.execute(
        "INSERT INTO credits (incident_id, customer_id, amount, currency, percent, periods,"
        " late_seconds, policy, issued_at) VALUES (%s, 'acme', 22.50, 'USD', 5, 1, 61,"
        " '{}', %s) RETURNING id", (i, at(62))).fetchone() or (0,)
    add_event(db, i, "credit_issued",
              f'{{"credit": {credit}, "amount": "22.50", "currency": "USD", "percent": "5"}}')
    outbox.notify_pass(db, at(63), billing_url="http://127.0.0.1:9/billing")
    outbox.notify_pass(db, at(64), billing_url="http://127.0.0.1:9/billing")
    rows = db.execute("SELECT ref, address, body FROM outbox WHERE channel = 'billing'").fetchall()
    assert len(rows) == 1
    ref, address, body = rows[0]
    assert (ref, address) == (f"credit-{credit}", "http://127.0.0.1:9/billing")
    assert f'"id":{credit}' in body
    assert '"amount":"22.50"' in body
    assert ("am-lee", "email", "credit_issued") in queued(db)
