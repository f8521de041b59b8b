"""Table-driven tests of every timed rule of the promise, with an injected clock."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dispatcher.domain import assign, policy, sla
from dispatcher.domain.policy import TimerKind as K

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
P = policy.TimerPolicy()  # 5-min ack, risk 15 min before the deadline, 30-min verify
UTCZ = ZoneInfo("UTC")


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def job(state: str = "dispatched", dispatched: float = 1, replaced: float | None = None,
        id: int = 7, tech: str = "t-ana") -> policy.Job:
    return policy.Job(id, tech, state, at(dispatched), None if replaced is None else at(replaced))


def snap(state: str = "dispatched", j: policy.Job | None = None, tried: int = 1,
         pauses: tuple[sla.Pause, ...] = (), acted: frozenset[tuple[str, str]] = frozenset(),
         sla_minutes: float = 60) -> policy.Snapshot:
    return policy.Snapshot(1, state, T0, sla_minutes, pauses, j, tried, acted)


def due(s: policy.Snapshot) -> dict[str, float]:
    """The plan as {kind: minutes after T0}."""
    return {t.kind.value: (t.due_at - T0).total_seconds() / 60 for t in policy.plan(s, P)}


@pytest.mark.parametrize(
    ("s", "expected"),
    [
        (snap("detected", None, 0), {"breach": 60, "risk": 45}),
        (snap("dispatched", job()), {"breach": 60, "risk": 45, "ack_timeout": 6}),
        (snap("acknowledged", job("acknowledged")), {"breach": 60, "risk": 45}),
        (snap("on_site", job("on_site")), {"breach": 60}),  # someone is there: no risk
        (snap("replaced", job("replaced", replaced=50)), {"breach": 60, "verify_timeout": 80}),
        (snap("paused", job()), {}),  # a pause disarms every timer
        (snap("verified", None), {}),
        (snap("closed", None), {}),
        # A 10-min contract is shorter than the risk lead: its breach comes first.
        (snap("dispatched", job(), sla_minutes=10), {"breach": 10, "ack_timeout": 6}),
        (snap("dispatched", job(), sla_minutes=30), {"breach": 30, "risk": 15, "ack_timeout": 6}),
        # A 15-minute pause shifts the deadline, the risk and the ack window alike.
        (snap("dispatched", job(), pauses=(sla.Pause(at(3), at(18)),)),
         {"breach": 75, "risk": 60, "ack_timeout": 21}),
        # A pause before the dispatch does not stretch the ack window.
        (snap("dispatched", job(dispatched=20), pauses=(sla.Pause(at(3), at(18)),)),
         {"breach": 75, "risk": 60, "ack_timeout": 25}),
        # Risk and breach act once per incident; an ack timeout once per job.
        (snap("dispatched", job(), acted=frozenset({("risk", ""), ("breach", "")})),
         {"ack_timeout": 6}),
        (snap("dispatched", job(id=8), acted=frozenset({("ack_timeout", "job=7")})),
         {"breach": 60, "risk": 45, "ack_timeout": 6}),
        (snap("dispatched", job(id=7), acted=frozenset({("ack_timeout", "job=7")})),
         {"breach": 60, "risk": 45}),
    ],
)
def test_plan(s: policy.Snapshot, expected: dict[str, float]) -> None:
    assert due(s) == expected


def spec(s: policy.Snapshot, kind: K) -> policy.TimerSpec:
    return next(t for t in policy.plan(s, P) if t.kind == kind)


@pytest.mark.parametrize(
    ("armed", "later", "now_min", "live"),
    [
        (snap(j=job()), snap(j=job()), 6, True),  # due, nothing changed: acts
        (snap(j=job()), snap(j=job()), 5.99, False),  # not due yet
        (snap(j=job()), snap(j=job()), 600, True),  # late still acts (once: the row is fired)
        (snap(j=job()), snap("acknowledged", job("acknowledged")), 6, False),  # acknowledged
        (snap(j=job()), snap("paused", job()), 6, False),  # paused meanwhile
        (snap(j=job()), snap(j=job(), pauses=(sla.Pause(at(2), at(2)),)), 6, False),  # new epoch
        (snap(j=job()), snap(j=job(id=8), tried=2), 6, False),  # reassigned: another job
    ],
)
def test_a_timer_acts_only_while_its_guard_holds(armed: policy.Snapshot,
                                                 later: policy.Snapshot, now_min: float,
                                                 live: bool) -> None:
    t = spec(armed, K.ACK_TIMEOUT)
    assert policy.is_live(t.kind, t.guard, t.due_at, later, P, at(now_min)) is live


def tech(id: str) -> assign.Technician:
    return assign.Technician(id, "iad1", "technician", frozenset({"disk"}), time(0),
                             time.max)


@pytest.mark.parametrize(
    ("tried", "choice", "expected"),
    [
        # First miss: the next best technician (the one transfer).
        (1, assign.Assign("t-bob"), policy.Reassign(7, "t-ana", "t-bob",
                                                     "t-ana did not acknowledge within 5 min")),
        # First miss with no one else: straight to the manager.
        (1, assign.Escalate("no technician on shift at iad1 with skill 'disk'", "t-maria"),
         ("manager", "t-maria", "no technician on shift")),
        # Second miss (after a timeout or a decline): the manager, never a third technician.
        (2, assign.Assign("t-cy"), ("manager", "t-maria", "never passed to a third technician")),
    ],
)
def test_ack_timeout_transfers_once_then_escalates(
        tried: int, choice: assign.Assign | assign.Escalate,
        expected: policy.Reassign | tuple[str, str, str]) -> None:
    got = policy.on_ack_timeout(snap(j=job(), tried=tried), choice, "t-maria", P)
    if isinstance(expected, policy.Reassign):
        assert got == expected
    else:
        assert isinstance(got, policy.Notify)
        assert (got.role, got.to, got.step) == (expected[0], expected[1], K.ACK_TIMEOUT)
        assert expected[2] in got.reason
        assert got.reason.startswith("t-ana did not acknowledge within 5 min")


def test_risk_notifies_the_site_manager_with_minutes_and_deadline() -> None:
    got = policy.on_risk(snap("acknowledged", job("acknowledged")), "t-maria", P)
    assert got == policy.Notify(K.RISK, "t-maria", "manager",
                                "no one on site 45 min into the 60-min promise; deadline "
                                "10:00:00Z")


def test_breach_notifies_the_executive() -> None:
    got = policy.on_breach(snap("on_site", job("on_site"), pauses=(sla.Pause(at(5), at(15)),)),
                           "t-eve")
    assert got == policy.Notify(K.BREACH, "t-eve", "executive",
                                "deadline 10:10:00Z passed with the incident 'on_site'")
    assert policy.on_breach(snap(), None).to is None


def test_verify_timeout_reopens_and_notifies_the_manager() -> None:
    got = policy.on_verify_timeout(snap("replaced", job("replaced", replaced=40)), "t-maria", P)
    assert (got.job, got.technician, got.notify.to, got.notify.step) == (
        7, "t-ana", "t-maria", K.VERIFY_TIMEOUT)
    assert "09:40:00Z" in got.notify.reason
    assert "30 min" in got.notify.reason


def exe(id: str, site: str, start: str = "00:00", end: str = "00:00") -> tuple[
        assign.Technician, ZoneInfo]:
    return (assign.Technician(id, site, "executive", frozenset(), time.fromisoformat(start),
                              time.fromisoformat(end)), UTCZ)


@pytest.mark.parametrize(
    ("execs", "expected"),
    [
        ([], None),
        ([exe("e-far", "lon1")], "e-far"),  # anyone in the fleet when none at the site
        ([exe("e-far", "lon1"), exe("e-here", "iad1")], "e-here"),  # the site's own first
        ([exe("e-here", "iad1", "20:00", "06:00"), exe("e-far", "lon1")], "e-far"),  # on shift
        ([exe("e-b", "iad1", "20:00", "06:00"), exe("e-a", "lon1", "20:00", "06:00")], "e-b"),
    ],
)
def test_executive_on_duty(execs: list[tuple[assign.Technician, ZoneInfo]],
                           expected: str | None) -> None:
    assert policy.executive_on_duty(execs, "iad1", at(0)) == expected


@pytest.mark.parametrize(
    ("pauses", "now", "deadline", "elapsed"),
    [
        ([], at(30), 60, 30),
        ([sla.Pause(at(10), None)], at(40), 90, 10),  # while paused the clock stands still
        ([sla.Pause(at(10), at(40))], at(50), 90, 20),  # resumed: shifted by exactly 30 min
        ([sla.Pause(at(10), at(40)), sla.Pause(at(45), at(46))], at(50), 91, 19),
        ([sla.Pause(at(10), at(10))], at(50), 60, 50),  # a zero-length pause shifts nothing
    ],
)
def test_pause_and_resume_shift_the_clock(pauses: list[sla.Pause], now: datetime,
                                          deadline: float, elapsed: float) -> None:
    s = sla.status(T0, 60, pauses, None, now)
    assert s.deadline == at(deadline)
    assert s.elapsed == timedelta(minutes=elapsed)


@pytest.mark.parametrize(("job_state", "state"), [
    (None, "detected"), ("dispatched", "dispatched"), ("acknowledged", "acknowledged"),
    ("on_site", "on_site"), ("replaced", "replaced")])
def test_resume_returns_to_the_live_jobs_state(job_state: str | None, state: str) -> None:
    assert policy.resume_state(job_state) == state


def test_sql_checks_mirror_the_enums() -> None:
    sql = (Path(__file__).parents[2] / "schemas/sql/005_timers.sql").read_text()

    def check(column: str) -> set[str]:
        m = re.search(column + r"\s+text NOT NULL CHECK \(\w+ IN\s*\(([^)]*)\)\)", sql)
        assert m, column
        return set(re.findall(r"'(\w+)'", m[1]))

    assert check("kind") == {k.value for k in policy.TimerKind}
    assert check("reason") == {r.value for r in policy.PauseReason}
