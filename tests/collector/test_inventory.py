"""Inventory from birth: replacements recorded, vanished parts opened as failures, by seq."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from agent import messages
from collector import store
from collector.decode import decode
from collector.inventory import Change, Part, diff
from collector.model import Message, Received

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
A1, A2 = Part("dimm:A1", "dimm", "A1", "M-1"), Part("dimm:A2", "dimm", "A2", "M-2")
D1 = Part("disk:D1", "disk", "sda", "D1")


@pytest.mark.parametrize(("previous", "current", "missing_before", "expected"), [
    ([], [A1, D1], [], []),  # a first birth is the inventory, not a change
    ([A1, D1], [A1, D1], [], []),
    ([A1, D1], [A1], [], [Change(D1, "missing", "D1", None)]),
    ([A1, D1], [A1, Part("disk:D2", "disk", "sda", "D2")], [],
     [Change(Part("disk:D2", "disk", "sda", "D2"), "replaced", "D1", "D2")]),
    ([A1], [Part("dimm:A1", "dimm", "A1", "M-9")], [],
     [Change(Part("dimm:A1", "dimm", "A1", "M-9"), "replaced", "M-1", "M-9")]),
    ([A1], [A1, A2], [], [Change(A2, "added", None, "M-2")]),
    ([A1], [A1, A2], [A2], [Change(A2, "returned", "M-2", "M-2")]),
    ([A1], [A1, Part("dimm:A2", "dimm", "A2", "M-7")], [A2],
     [Change(Part("dimm:A2", "dimm", "A2", "M-7"), "replaced", "M-2", "M-7")]),
    # a vanished NIC or sensor is configuration, not a failed part
    ([A1, Part("nic:veth0", "nic", None, None)], [A1], [], []),
])
def test_diff(previous: list[Part], current: list[Part], missing_before: list[Part],
              expected: list[Change]) -> None:
    assert diff(previous, current, missing_before) == expected


def birth(seq: int, at: int, parts: list[Part]) -> Message:
    body = messages.birth(
        "h-01", "s1", seq, T0 + timedelta(seconds=at), agent_version="1", boot_id=f"b{seq}",
        interval_s=30.0, chassis={}, components=[
            messages.Component(p.id, p.kind, p.slot, serial=p.serial) for p in parts])
    got = decode(Received("hg/v1/s1/h-01/birth", json.dumps(body).encode(), seq, 1,
                          T0 + timedelta(seconds=at + 1)))
    assert isinstance(got, Message)
    return got


@pytest.fixture
def db(pg_url: str) -> psycopg.Connection[tuple[object, ...]]:
    with psycopg.connect(pg_url) as conn:
        conn.execute("INSERT INTO sites (id, name) VALUES ('s1', 'Site 1')")
        conn.execute("INSERT INTO customers (id, name) VALUES ('c1', 'C1')")
        conn.execute("INSERT INTO hosts (id, customer_id, site_id) VALUES ('h-01', 'c1', 's1')")
    return psycopg.connect(pg_url, autocommit=True)


def run(conn: psycopg.Connection[tuple[object, ...]], births: list[Message]) -> None:
    directory = store.Directory()
    directory.reload(conn)  # type: ignore[arg-type]
    for m in births:
        store.write_batch(conn, directory, [m], [])  # type: ignore[arg-type]


def test_dimm_gone_after_reboot_opens_an_incident_and_its_return_verifies(
        db: psycopg.Connection[tuple[object, ...]]) -> None:
    new_a2 = Part("dimm:A2", "dimm", "A2", "M-7")
    with db:
        run(db, [birth(1, 0, [A1, A2, D1]), birth(5, 600, [A1, D1]),
                 birth(9, 1200, [A1, new_a2, D1])])
        incidents = db.execute("SELECT component, kind, failure, slot, serial, detected_at"
                               " FROM incidents").fetchall()
        changes = db.execute("SELECT component, change, old_serial, new_serial, at, seq, prev_seq"
                             " FROM inventory_changes ORDER BY id").fetchall()
        a2 = db.execute("SELECT status, failure, status_ts, serial FROM components"
                        " WHERE id = 'dimm:A2'").fetchone()
    assert incidents == [("dimm:A2", "dimm", "dimm_missing", "A2", "M-2",
                          T0 + timedelta(seconds=600))]
    assert changes == [
        ("dimm:A2", "missing", "M-2", None, T0 + timedelta(seconds=600), 5, 1),
        ("dimm:A2", "replaced", "M-2", "M-7", T0 + timedelta(seconds=1200), 9, 5)]
    # the new DIMM in the slot reports ok from the birth that lists it: what verifies the fix
    assert a2 == ("ok", None, T0 + timedelta(seconds=1200), "M-7")


def test_a_stale_birth_changes_nothing(db: psycopg.Connection[tuple[object, ...]]) -> None:
    d2 = Part("disk:D2", "disk", "sda", "D2")
    with db:
        # seq 5 (disk replaced) arrives before the older seq 3 (old disk): 3 is stale
        run(db, [birth(1, 0, [A1, D1]), birth(5, 600, [A1, d2]), birth(3, 300, [A1, D1])])
        changes = db.execute("SELECT component, change, old_serial, new_serial, seq"
                             " FROM inventory_changes ORDER BY id").fetchall()
        incidents = db.execute("SELECT count(*) FROM incidents").fetchone()
        birth_seq = db.execute("SELECT birth_seq FROM host_state").fetchone()
    assert changes == [("disk:D2", "replaced", "D1", "D2", 5)]
    assert incidents == (0,)
    assert birth_seq == (5,)


def test_a_disk_gone_is_disk_missing_once(db: psycopg.Connection[tuple[object, ...]]) -> None:
    with db:
        run(db, [birth(1, 0, [A1, D1]), birth(2, 60, [A1]), birth(3, 120, [A1])])
        got = db.execute("SELECT failure, detected_at FROM incidents").fetchall()
    assert got == [("disk_missing", T0 + timedelta(seconds=60))]


def test_a_replacement_closes_the_parts_predictions(
        db: psycopg.Connection[tuple[object, ...]]) -> None:
    d2 = Part("disk:D2", "disk", "sda", "D2")
    with db:
        run(db, [birth(1, 0, [A1, D1])])
        db.execute("INSERT INTO predictions (host_id, site_id, customer_id, component, kind,"
                   " prediction, rule, slot, detected_at, last_seen) VALUES ('h-01', 's1', 'c1',"
                   " 'disk:D1', 'disk', 'smart_counter_rising', 'smart_baseline', 'sda', %s, %s)",
                   (T0, T0))
        run(db, [birth(4, 900, [A1, d2])])
        got = db.execute("SELECT state, closed_at FROM predictions").fetchall()
    assert got == [("done", T0 + timedelta(seconds=900))]


def test_the_dispatcher_verifies_a_missing_dimm_by_the_birth_that_lists_it_again(
        db: psycopg.Connection[tuple[object, ...]]) -> None:
    from dispatcher.service.engine import verify_open

    with db:
        run(db, [birth(1, 0, [A1, A2]), birth(2, 60, [A1])])
        verify_open(db, T0 + timedelta(seconds=100))  # type: ignore[arg-type]
        before = db.execute("SELECT state FROM incidents").fetchone()
        run(db, [birth(3, 120, [A1, Part("dimm:A2", "dimm", "A2", "M-7")])])
        verify_open(db, T0 + timedelta(seconds=200))  # type: ignore[arg-type]
        after = db.execute("SELECT state, verified_at FROM incidents").fetchone()
    assert before == ("detected",)
    assert after == ("verified", T0 + timedelta(seconds=120))
