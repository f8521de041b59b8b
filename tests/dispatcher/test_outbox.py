"""The outbox on a real database: one row per channel the person has, idempotent by ref."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from dispatcher.store import outbox

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _contacts(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    conn.execute("INSERT INTO contacts (person_id, channel, address) VALUES"
                 " ('t-ana', 'email', 'ana@example.net'),"
                 " ('t-ana', 'webhook', 'http://127.0.0.1:9/hook'),"
                 " ('am-lee', 'email', 'lee@example.net')")


def _rows(conn: psycopg.Connection[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return conn.execute("SELECT recipient, channel, address, reason, ref, state, due_at"
                        " FROM outbox ORDER BY recipient, channel").fetchall()


def test_enqueue_writes_one_row_per_channel_once(pg_url: str) -> None:
    """Two channels, two rows; enqueueing the same ref again adds nothing."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        _contacts(conn)
        for _ in range(2):
            outbox.enqueue(conn, recipient="t-ana", reason="dispatched", subject="Job 1",
                           body="Go to rack r12", ref="incident:1:event:2", at=T0)
        assert _rows(conn) == [
            ("t-ana", "email", "ana@example.net", "dispatched", "incident:1:event:2",
             "pending", T0),
            ("t-ana", "webhook", "http://127.0.0.1:9/hook", "dispatched",
             "incident:1:event:2", "pending", T0),
        ]


def test_enqueue_is_part_of_the_callers_transaction(pg_url: str) -> None:
    """A rolled-back decision leaves no message behind."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        _contacts(conn)
        try:
            with conn.transaction():
                outbox.enqueue(conn, recipient="am-lee", reason="claim_opened",
                               subject="Claim", body="b", ref="claim:1", at=T0)
                raise RuntimeError("the decision failed")
        except RuntimeError:
            pass
        assert _rows(conn) == []
        outbox.enqueue(conn, recipient="am-lee", reason="claim_opened", subject="Claim",
                       body="b", ref="claim:1", at=T0)
        assert [r[:2] for r in _rows(conn)] == [("am-lee", "email")]


def test_person_without_contact_gets_nothing(pg_url: str) -> None:
    """No channel, no row (and no error)."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        outbox.enqueue(conn, recipient="t-nobody", reason="escalated", subject="s", body="b",
                       ref="r", at=T0)
        assert _rows(conn) == []
        assert not outbox.has_contact(conn, "t-nobody")


def test_billing_webhook_is_idempotent_by_credit(pg_url: str) -> None:
    """The credit webhook is queued once per credit id."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for _ in range(2):
            outbox.enqueue_billing(conn, url="http://127.0.0.1:9/billing", credit=7,
                                   body='{"id": 7}', at=T0)
        assert [r[:5] for r in _rows(conn)] == [
            ("billing", "billing", "http://127.0.0.1:9/billing", "credit_issued", "credit-7")]
