"""The auditor: the pure check table-driven, then on a real database through the engine loop
and the Prometheus text."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from dispatcher import metrics
from dispatcher.service import auditor
from dispatcher.service.engine import Engine
from tests.dispatcher.world import P, act, open_incident, pause, setup_fleet, tick

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
# An incident dispatched a minute ago with its acknowledgement timer pending.
BASE = auditor.Facts(incident=7, state="dispatched", changed_at=NOW - MIN,
                     last_activity=NOW - MIN, next_timer_due=NOW + 4 * MIN, plan_pending=False,
                     open_pause=False, live_job=True, next_assign_at=None, escalated_to=None)


@pytest.mark.parametrize(("facts", "stranded"), [
    (BASE, False),
    (replace(BASE, next_timer_due=NOW - MIN), False),  # due a minute ago: fires on a pass
    (replace(BASE, next_timer_due=NOW - 3 * MIN), True),  # three minutes past due: stuck
    (replace(BASE, next_timer_due=None), True),  # a live job, but nothing watches it
    (replace(BASE, next_timer_due=None, escalated_to="t-maria"), False),  # the manager owns it
    (replace(BASE, next_timer_due=None, open_pause=True, state="paused"), False),
    (replace(BASE, next_timer_due=None, plan_pending=True), False),  # planned on a pass
    (replace(BASE, next_timer_due=None, plan_pending=True, changed_at=NOW - 3 * MIN), True),
    (replace(BASE, next_timer_due=None, state="detected", live_job=False), False),
    (replace(BASE, next_timer_due=None, state="detected", live_job=False,
             next_assign_at=NOW + MIN), False),  # no one fit: tried again in a minute
    (replace(BASE, next_timer_due=None, state="detected", live_job=False,
             next_assign_at=NOW - 3 * MIN), True),  # the retry never happened
    # a timer found the fix already proven (timers.fixed_by): the next pass verifies it
    (replace(BASE, state="replaced", next_timer_due=None, stale_fire_at=NOW - MIN), False),
    (replace(BASE, state="replaced", next_timer_due=None, stale_fire_at=NOW - 3 * MIN), True),
])
def test_next_action(facts: auditor.Facts, stranded: bool) -> None:
    assert (auditor.next_action(facts, NOW) is None) is stranded
    result = auditor.check([facts], NOW)
    assert result.checked == 1
    assert [s.incident for s in result.stranded] == ([7] if stranded else [])
    assert result.oldest_s == (60.0 if stranded else 0.0)


def test_oldest_is_the_longest_without_activity() -> None:
    facts = [replace(BASE, incident=n, next_timer_due=None, last_activity=NOW - n * MIN)
             for n in (3, 9, 5)]
    result = auditor.check(facts, NOW)
    assert [s.incident for s in result.stranded] == [3, 9, 5]
    assert result.oldest_s == 540.0


def audits(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The auditor's log records (other modules may warn during the same passes)."""
    return [r for r in caplog.records if r.name == "dispatcher.service.auditor"]


@pytest.fixture
def db(pg_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        setup_fleet(conn)
        yield conn


def gauges(url: str) -> dict[str, float]:
    """The auditor's two gauges as /metrics renders them (on the API's dict-row connection)."""
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        text = metrics.render(conn)
    found = dict(re.findall(r"^(hourglass_incidents_without_next_action\w*) (\S+)$", text,
                            re.MULTILINE))
    return {k: float(v) for k, v in found.items()}


def test_an_incident_whose_timers_vanished_is_reported(
        pg_url: str, db: psycopg.Connection[Any], caplog: pytest.LogCaptureFixture) -> None:
    now = datetime.now(UTC)
    healthy = open_incident(db, detected=now - 1.5 * MIN)
    lost = open_incident(db, detected=now - 1.5 * MIN)
    tick(pg_url, now - 1.5 * MIN)  # both dispatched, their timers planned
    db.execute("DELETE FROM timers WHERE incident_id = %s", (lost,))
    with caplog.at_level(logging.ERROR, logger="dispatcher.service.auditor"):
        result = auditor.run(db, now)
    assert result.checked == 2
    assert [s.incident for s in result.stranded] == [lost]
    assert result.stranded[0].state == "dispatched"
    assert result.oldest_s == pytest.approx(90, abs=1)  # dispatched 90 s ago
    [record] = audits(caplog)
    assert record.levelno == logging.ERROR
    assert f"#{lost} (dispatched, 90 s)" in record.getMessage()
    assert f"#{healthy} " not in record.getMessage()
    g = gauges(pg_url)
    assert g["hourglass_incidents_without_next_action"] == 1
    assert g["hourglass_incidents_without_next_action_oldest_seconds"] >= 90


def test_incidents_in_every_normal_state_have_a_next_action(
        pg_url: str, db: psycopg.Connection[Any], caplog: pytest.LogCaptureFixture) -> None:
    now = datetime.now(UTC)
    t0 = now - 2 * MIN
    ids = [open_incident(db, detected=t0) for _ in range(5)]
    tick(pg_url, t0)
    assert act(pg_url, ids[1], "acknowledge", t0 + 0.1 * MIN)
    assert act(pg_url, ids[2], "acknowledge", t0 + 0.1 * MIN)
    assert act(pg_url, ids[2], "on-site", t0 + 0.2 * MIN)
    assert act(pg_url, ids[3], "decline", t0 + 0.3 * MIN, reason="another room")
    assert pause(pg_url, ids[4], t0 + 0.4 * MIN)
    open_incident(db, detected=now)  # not dispatched yet: the next pass assigns it
    with caplog.at_level(logging.ERROR, logger="dispatcher.service.auditor"):
        result = auditor.run(db, now)
    assert (result.checked, result.stranded) == (6, ())
    assert audits(caplog) == []
    assert gauges(pg_url) == {"hourglass_incidents_without_next_action": 0,
                          "hourglass_incidents_without_next_action_oldest_seconds": 0}


def test_the_engine_loop_audits_every_few_seconds(
        pg_url: str, db: psycopg.Connection[Any], caplog: pytest.LogCaptureFixture) -> None:
    clock = [datetime.now(UTC)]
    engine = Engine(pg_url, 1.0, P, clock=lambda: clock[0], audit_every_s=10)
    incident = open_incident(db, detected=clock[0])
    with caplog.at_level(logging.ERROR, logger="dispatcher.service.auditor"):
        engine.run_once(db)  # dispatches and plans: nothing stranded
        first = engine.last_audit
        assert first is not None
        assert (first.checked, first.stranded) == (1, ())
        db.execute("DELETE FROM timers WHERE incident_id = %s", (incident,))
        clock[0] += timedelta(seconds=5)
        engine.run_once(db)
        assert engine.last_audit is first  # not yet: five seconds since the last audit
        clock[0] += timedelta(seconds=5)
        engine.run_once(db)
    latest = engine.last_audit
    assert latest is not None
    assert [s.incident for s in latest.stranded] == [incident]
    assert [r.levelno for r in audits(caplog)] == [logging.ERROR]
