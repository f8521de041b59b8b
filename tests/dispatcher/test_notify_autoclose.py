"""Auto-close after the quiet period: table-driven with an injected clock, then on a database."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from dispatcher.domain import policy
from dispatcher.service.engine import auto_close
from tests.dispatcher.world import T0, P, at, events, heal, open_incident, setup_fleet, tick

QUIET = policy.TimerPolicy(auto_close_after=timedelta(hours=72))
H72 = timedelta(hours=72)
SECOND = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("state", "verified_at", "now", "closes"),
    [
        ("verified", T0, T0 + H72 - SECOND, False),  # 71:59:59 of quiet
        ("verified", T0, T0 + H72, True),  # 72:00:00: closes
        ("verified", T0, T0 + H72 + SECOND, True),
        ("verified", T0, T0 + timedelta(days=30), True),  # a dispatcher down for weeks
        ("closed", T0, T0 + H72, False),  # the customer confirmed first
        ("replaced", None, T0 + H72, False),  # not verified: the clock still runs
        ("on_site", T0, T0 + H72, False),
    ],
)
def test_auto_close_rule(state: str, verified_at: datetime | None, now: datetime,
                         closes: bool) -> None:
    assert policy.should_auto_close(state, verified_at, QUIET, now) is closes


def test_quiet_period_is_configuration() -> None:
    p = policy.TimerPolicy(auto_close_after=timedelta(hours=1))
    assert policy.auto_close_at(T0, p) == T0 + timedelta(hours=1)
    assert policy.should_auto_close("verified", T0, p, T0 + timedelta(hours=1))


def test_unconfirmed_incident_closes_itself_as_auto(pg_url: str) -> None:
    """Verified at 0:40; the customer says nothing; closed at 72:40, on record, once."""
    with psycopg.connect(pg_url, autocommit=True) as db:
        setup_fleet(db)
        i, confirmed = open_incident(db), open_incident(db)
        tick(pg_url, at(0))
        heal(db, i, at(40))
        heal(db, confirmed, at(40))
        tick(pg_url, at(41))
        db.execute("UPDATE incidents SET state = 'closed', closed_at = %s WHERE id = %s",
                   (at(50), confirmed))  # this customer confirmed (as the API does)
        verified = at(40)
        tick(pg_url, verified + H72 - SECOND)
        assert state(db, i) == ("verified", None)
        # A process that died and comes back days later still closes it, at the due time.
        tick(pg_url, verified + H72 + timedelta(days=2))
        assert state(db, i) == ("closed", verified + H72)
        [closed] = events(db, i, "closed")
        assert closed["at"] == verified + H72
        assert closed["reason"] == "not confirmed by the customer within 72 h of the verified fix"
        actor = db.execute("SELECT actor FROM incident_events WHERE incident_id = %s"
                           " AND kind = 'closed'", (i,)).fetchone()
        assert actor == ("auto",)
        assert auto_close(db, P, verified + H72 + timedelta(days=3)) == 0  # nothing twice
        assert len(events(db, i, "closed")) == 1
        assert state(db, confirmed) == ("closed", at(50))
        assert events(db, confirmed, "closed") == []  # not touched by auto-close


def state(db: psycopg.Connection[Any], incident: int) -> tuple[Any, ...] | None:
    """(state, closed_at) of an incident."""
    return db.execute("SELECT state, closed_at FROM incidents WHERE id = %s",
                      (incident,)).fetchone()
