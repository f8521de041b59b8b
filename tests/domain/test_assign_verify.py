"""Table-driven tests of assignment and verification, with an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from dispatcher.domain import assign, verify

NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)  # 09:00 in New York
NY = ZoneInfo("America/New_York")


def tech(id: str, skills: str = "disk", start: str = "07:00", end: str = "19:00",
         site: str = "iad1", role: str = "technician", jobs: int = 0) -> assign.Technician:
    return assign.Technician(id, site, role, frozenset(skills.split(",")),
                             time.fromisoformat(start), time.fromisoformat(end), jobs)


@pytest.mark.parametrize(
    ("kind", "techs", "previous", "expected"),
    [
        ("disk", [tech("t-ana")], [], "t-ana"),
        ("disk", [tech("t-ana", jobs=2), tech("t-bob", jobs=1)], [], "t-bob"),  # least loaded
        ("disk", [tech("t-ana", jobs=1), tech("t-bob", jobs=1)], [], "t-ana"),  # then by id
        ("fan", [tech("t-ana"), tech("t-bob", skills="fan")], [], "t-bob"),  # skill filter
        ("disk", [tech("t-ana", start="19:00", end="07:00")], [], None),  # off shift (night)
        ("disk", [tech("t-ana", start="00:00", end="00:00")], [], "t-ana"),  # round the clock
        ("disk", [tech("t-ana", site="lon1")], [], None),  # another site
        ("disk", [tech("t-mia", role="manager")], [], None),  # managers are not dispatched
        ("host", [tech("t-ana", skills="memory")], [], "t-ana"),  # any skill for a host
        ("disk", [tech("t-ana"), tech("t-bob")], ["t-ana"], "t-bob"),  # the one transfer
        ("disk", [tech("t-ana"), tech("t-bob"), tech("t-cy")], ["t-ana", "t-bob"], None),
    ],
)
def test_choose(kind: str, techs: list[assign.Technician], previous: list[str],
                expected: str | None) -> None:
    got = assign.choose(kind, "iad1", techs, previous, "t-mia", NOW, NY)
    if expected is None:
        assert isinstance(got, assign.Escalate)
        assert got.manager == "t-mia"
        assert got.reason
    else:
        assert got == assign.Assign(expected)


@pytest.mark.parametrize(
    ("start", "end", "local", "on"),
    [("07:00", "19:00", "06:59", False), ("07:00", "19:00", "07:00", True),
     ("07:00", "19:00", "19:00", False), ("19:00", "07:00", "23:30", True),
     ("19:00", "07:00", "06:00", True), ("19:00", "07:00", "12:00", False)],
)
def test_on_shift_in_site_local_time(start: str, end: str, local: str, on: bool) -> None:
    h, m = map(int, local.split(":"))
    now = datetime(2026, 11, 23, h, m, tzinfo=NY)
    assert assign.on_shift(tech("t", start=start, end=end), now, NY) is on


T0 = NOW


def obs(id: str, kind: str, slot: str | None, serial: str | None, status: str,
        after_s: float) -> verify.Observation:
    return verify.Observation(id, kind, slot, serial, status, T0 + timedelta(seconds=after_s))


DISK = verify.Failed("disk:OLD1", "disk", "sda", "OLD1", T0)
FAN = verify.Failed("fan:fan1", "fan", "fan1", None, T0)


@pytest.mark.parametrize(
    ("failed", "observations", "expected_s"),
    [
        (DISK, [obs("disk:NEW1", "disk", "sda", "NEW1", "ok", 30)], 30),
        (DISK, [obs("disk:OLD1", "disk", "sda", "OLD1", "ok", 30)], None),  # same disk: no fix
        (DISK, [obs("disk:NEW1", "disk", "sdb", "NEW1", "ok", 30)], None),  # other slot
        (DISK, [obs("disk:NEW1", "disk", "sda", "NEW1", "failed", 30)], None),  # new but bad
        (DISK, [obs("disk:NEW1", "disk", "sda", "NEW1", "ok", -5)], None),  # before detection
        (FAN, [obs("fan:fan1", "fan", "fan1", None, "ok", 12)], 12),
        (FAN, [obs("fan:fan2", "fan", "fan2", None, "ok", 12)], None),
        (FAN, [obs("fan:fan1", "fan", "fan1", None, "ok", 40),
               obs("fan:fan1", "fan", "fan1", None, "ok", 20)], 20),
    ],
)
def test_proof_of_the_fix(failed: verify.Failed, observations: list[verify.Observation],
                     expected_s: float | None) -> None:
    got = verify.proof(failed, observations)
    when = None if got is None else got.status_ts
    assert when == (None if expected_s is None else T0 + timedelta(seconds=expected_s))
