"""Recorded telemetry sequences through decode, rules and the store, on a real database.

Each row is a host's story (healthy, failing, flapping, stale out-of-order, silent); the
clock is injected as the messages' receive times and the sweep's `now`. Every story is
run twice: one message per batch in arrival order, and all in one batch, which must
end in the same state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from agent import messages
from collector import store
from collector.decode import decode
from collector.model import Message, Received

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
DISK, FAN = "disk:SN0001", "fan:fan1"


@dataclass(frozen=True)
class Step:
    """One message: its seq, its time (s after T0), the disk and the fan; or a disk event."""

    seq: int
    at: int
    disk: str = "ok"  # ok | failed
    rpm: float = 5400.0
    event: bool = False  # an event reporting the disk's state instead of telemetry


def telemetry(step: Step) -> Message:
    """The message an agent would send for this step, decoded as the collector does."""
    failed = step.disk == "failed"
    disk = messages.ComponentState(DISK, "disk", step.disk, "sda", "SN0001",
                                   "smart_failed" if failed else None)
    kind = "event" if step.event else "telemetry"
    body = messages.event(
        "h-01", "s1", step.seq, T0 + timedelta(seconds=step.at), state=disk,
        detected_at=T0 + timedelta(seconds=step.at), evidence={"tool": "smartctl"},
    ) if step.event else messages.telemetry(
        "h-01", "s1", step.seq, T0 + timedelta(seconds=step.at), interval_s=30.0,
        readings=[messages.Reading(FAN, "fan.rpm", step.rpm),
                  messages.Reading(DISK, "smart.attr_5_raw", 1208.0 if failed else 0.0)],
        components=[disk, messages.ComponentState(FAN, "fan", "ok", "fan1")])
    raw = Received(f"hg/v1/s1/h-01/{kind}", json.dumps(body).encode(), step.seq, 1,
                   T0 + timedelta(seconds=step.at + 1))  # received a second after sending
    got = decode(raw)
    assert isinstance(got, Message)
    return got


HEALTHY = [Step(1, 0), Step(2, 30), Step(3, 60), Step(4, 90)]
FAILING = [Step(1, 0), Step(2, 30, "failed"), Step(3, 60, "failed"), Step(4, 90, "failed")]
FLAPPING_FAN = [Step(1, 0), Step(2, 30, rpm=0.0), Step(3, 60), Step(4, 90)]
STOPPED_FAN = [Step(1, 0), Step(2, 30, rpm=0.0), Step(3, 60, rpm=0.0), Step(4, 90, rpm=0.0)]
# seq 3 (failed) overtakes seq 2 (healthy): the stale healthy must not undo the failure
STALE_HEALTHY = [Step(1, 0), Step(3, 60, "failed"), Step(2, 30)]
# ... until a newer healthy report (the replaced disk) arrives
STALE_THEN_FIXED = [*STALE_HEALTHY, Step(4, 90)]
# an event delayed behind a newer healthy snapshot: the incident opens, status stays ok
STALE_EVENT = [Step(1, 0), Step(3, 60), Step(2, 30, "failed", event=True)]
EVENT_FIRST = [Step(1, 0), Step(2, 25, "failed", event=True), Step(3, 30, "failed")]
REPEATED = [Step(1, 0), Step(2, 30, "failed"), Step(2, 30, "failed"), Step(3, 60, "failed")]

CASES = [
    # (name, story, incidents (component, failure, detected s), disk status, its status_ts
    # in s, or (one-by-one, one-batch) where the two differ)
    ("healthy", HEALTHY, [], "ok", 0),
    ("failing", FAILING, [(DISK, "smart_failed", 30)], "failed", 30),
    # one 0 rpm reading is a glitch (kept in telemetry as evidence); two in a row a stop,
    # detected at the second, the reading that proved it
    ("flapping fan", FLAPPING_FAN, [], "ok", 0),
    ("stopped fan", STOPPED_FAN, [(FAN, "fan_stopped", 60)], "ok", 0),
    ("stale healthy", STALE_HEALTHY, [(DISK, "smart_failed", 60)], "failed", 60),
    ("stale then fixed", STALE_THEN_FIXED, [(DISK, "smart_failed", 60)], "ok", 90),
    # one by one the late event changes nothing; in one batch it lands before the newer
    # snapshot, so "ok" counts from that snapshot: both end healthy, neither loses evidence
    ("stale event", STALE_EVENT, [(DISK, "smart_failed", 30)], "ok", (0, 60)),
    ("event then telemetry", EVENT_FIRST, [(DISK, "smart_failed", 25)], "failed", 25),
    ("redelivered", REPEATED, [(DISK, "smart_failed", 30)], "failed", 30),
]


def seed(url: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO sites (id, name) VALUES ('s1', 'Site 1')")
        conn.execute("INSERT INTO customers (id, name) VALUES ('c1', 'C1')")
        conn.execute("INSERT INTO hosts (id, customer_id, site_id) VALUES ('h-01', 'c1', 's1')")


@pytest.mark.parametrize("batched", [False, True], ids=["one-by-one", "one-batch"])
@pytest.mark.parametrize(("name", "story", "incidents", "status", "since"), CASES,
                         ids=[c[0] for c in CASES])
def test_story(pg_url: str, batched: bool, name: str, story: list[Step],
               incidents: list[tuple[str, str, int]], status: str,
               since: int | tuple[int, int]) -> None:
    seed(pg_url)
    directory = store.Directory()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        directory.reload(conn)
        msgs = [telemetry(s) for s in story]
        for batch in ([msgs] if batched else [[m] for m in msgs]):
            store.write_batch(conn, directory, batch, [])
        got = conn.execute("SELECT component, failure, detected_at FROM incidents"
                           " ORDER BY id").fetchall()
        disk = conn.execute("SELECT status, status_ts FROM components WHERE id = %s",
                            (DISK,)).fetchone()
        keys = conn.execute("SELECT count(*) FROM ingest_keys").fetchone()
    assert got == [(c, f, T0 + timedelta(seconds=s)) for c, f, s in incidents]
    if isinstance(since, tuple):
        since = since[1] if batched else since[0]
    assert disk == (status, T0 + timedelta(seconds=since))
    assert keys == (len({s.seq for s in story}),)


@pytest.mark.parametrize(("silent_s", "opened"), [(89, False), (91, True)])
def test_silent_host_is_down_after_three_missed_intervals(pg_url: str, silent_s: int,
                                                          opened: bool) -> None:
    seed(pg_url)
    directory = store.Directory()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        directory.reload(conn)
        store.write_batch(conn, directory, [telemetry(Step(1, 0))], [])
        last = T0 + timedelta(seconds=1)  # the receive time of the only message
        store.sweep_host_down(conn, directory, 3, last + timedelta(seconds=silent_s))
        got = conn.execute("SELECT component, failure, detected_at FROM incidents").fetchall()
    assert got == ([("host:h-01", "host_down", last + timedelta(seconds=90))] if opened else [])
