"""Table-driven tests of the stateful rules on recorded reading sequences, clock injected.

Each sequence is (seq, seconds after T0, {metric: value}) for one component; the table
says which seqs fire. Stories: healthy, failing, flapping, and stale out-of-order.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from agent import messages
from collector import stateful
from collector.decode import decode
from collector.model import Message, Received
from collector.stateful import RuleParams

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
Seq = list[tuple[int, float, dict[str, float]]]
DISK, DIMM, TEMP, NIC, RAID, FAN = ("disk:SN1", "dimm:A1", "temp:cpu0", "nic:eth0", "raid:md0",
                                    "fan:fan1")
H = 3600.0


def msg(seq: int, at: float, component: str, values: dict[str, float]) -> Message:
    body = messages.telemetry(
        "h-01", "s1", seq, T0 + timedelta(seconds=at), interval_s=30.0,
        readings=[messages.Reading(component, k, v) for k, v in values.items()], components=[])
    got = decode(Received("hg/v1/s1/h-01/telemetry", json.dumps(body).encode(), seq, 1,
                          T0 + timedelta(seconds=at)))
    assert isinstance(got, Message)
    return got


def play(component: str, story: Seq, params: RuleParams | None = None
         ) -> list[tuple[int, str, str]]:
    """(seq, class, slug) of every firing, in arrival order, states carried between messages."""
    states: dict[stateful.Key, stateful.Stored] = {}
    fired = []
    for seq, at, values in story:
        updates, found = stateful.evaluate(states, msg(seq, at, component, values),
                                           params or RuleParams())
        states.update(updates)
        fired += [(seq, klass, d.failure) for klass, d in found]
    return fired


def ce(n: float) -> dict[str, float]:
    return {"edac.ce_count": n}


def temp(c: float, high: float = 80.0) -> dict[str, float]:
    return {"temp.celsius": c, "temp.high_celsius": high}


R5 = "smart.attr_5_raw"
CASES: list[tuple[str, str, Seq, list[tuple[int, str, str]]]] = [
    # SMART baselines per serial: the first value is the baseline, not a finding
    ("smart healthy", DISK, [(1, 0, {R5: 8.0}), (2, 30, {R5: 8.0}), (3, 60, {R5: 8.0})], []),
    ("smart rising", DISK, [(1, 0, {R5: 8.0}), (2, 30, {R5: 9.0}), (3, 60, {R5: 9.0})],
     [(2, "prediction", "smart_counter_rising"), (3, "prediction", "smart_counter_rising")]),
    ("smart 197 appears later", DISK,
     [(1, 0, {R5: 0.0}), (2, 30, {R5: 0.0, "smart.attr_197_raw": 3.0}),
      (3, 60, {R5: 0.0, "smart.attr_197_raw": 4.0})],
     [(3, "prediction", "smart_counter_rising")]),
    ("smart 188 small step is noise", DISK,
     [(1, 0, {"smart.attr_188_raw": 0.0}), (2, 30, {"smart.attr_188_raw": 1.0})], []),
    ("smart 188 jump", DISK,
     [(1, 0, {"smart.attr_188_raw": 0.0}), (2, 30, {"smart.attr_188_raw": 7.0}),
      (3, 60, {"smart.attr_188_raw": 7.0})],
     [(2, "prediction", "smart_command_timeouts")]),
    ("nvme media errors rising is a failure", DISK,
     [(1, 0, {"smart.media_errors": 2.0}), (2, 30, {"smart.media_errors": 2.0}),
      (3, 60, {"smart.media_errors": 3.0})], [(3, "failure", "nvme_media_errors")]),
    # stale: seq 2 (older, lower count) arrives after seq 3; it must neither re-baseline
    # nor make seq 4 look like a second rise
    ("nvme stale out of order", DISK,
     [(1, 0, {"smart.media_errors": 2.0}), (3, 60, {"smart.media_errors": 3.0}),
      (2, 30, {"smart.media_errors": 2.0}), (4, 90, {"smart.media_errors": 3.0})],
     [(3, "failure", "nvme_media_errors")]),
    # ECC: 24 corrected errors within 24 h predicts; the same spread over 3 days does not
    ("ecc healthy", DIMM, [(1, 0, ce(5)), (2, 6 * H, ce(5)), (3, 12 * H, ce(5))], []),
    ("ecc 24 in 24 h", DIMM, [(1, 0, ce(0)), (2, 2 * H, ce(10)), (3, 10 * H, ce(24))],
     [(3, "prediction", "ecc_correctable_rate")]),
    ("ecc 30 over 3 days", DIMM,
     [(1, 0, ce(0)), (2, 2 * H, ce(10)), (3, 30 * H, ce(20)), (4, 58 * H, ce(30))], []),
    ("ecc counter reset counts from zero", DIMM,
     [(1, 0, ce(100)), (2, H, ce(110)), (3, 2 * H, ce(14))],
     [(3, "prediction", "ecc_correctable_rate")]),
    ("ecc stale out of order", DIMM,
     [(1, 0, ce(0)), (3, 2 * H, ce(20)), (2, H, ce(10)), (4, 3 * H, ce(20))], []),
    # temperature: above high for 10 minutes; a flap below high but within hysteresis
    # keeps the streak, a real dip ends it
    ("temp healthy", TEMP, [(i, i * 60.0, temp(60)) for i in range(1, 20)], []),
    ("temp sustained", TEMP, [(i, i * 60.0, temp(85)) for i in range(1, 13)],
     [(11, "prediction", "temp_high_sustained"), (12, "prediction", "temp_high_sustained")]),
    ("temp flapping within hysteresis", TEMP,
     [(i, i * 60.0, temp(85 if i % 2 else 79)) for i in range(1, 13)],
     [(11, "prediction", "temp_high_sustained"), (12, "prediction", "temp_high_sustained")]),
    ("temp dips reset", TEMP,
     [(i, i * 60.0, temp(85 if i % 5 else 70)) for i in range(1, 13)], []),
    # NIC errors: 100 within an hour predicts, a trickle does not
    ("nic trickle", NIC, [(i, i * 600.0, {"nic.rx_errors": float(i)}) for i in range(1, 10)], []),
    ("nic burst", NIC, [(1, 0, {"nic.rx_errors": 0.0, "nic.tx_errors": 0.0}),
                        (2, 60, {"nic.rx_errors": 60.0, "nic.tx_errors": 50.0})],
     [(2, "prediction", "nic_errors_rising")]),
    # RAID: syncing longer than 24 h; the agent stops sending sync_percent when done
    ("raid rebuild done in time", RAID,
     [(1, 0, {"md.sync_percent": 1.0}), (2, 6 * H, {"md.sync_percent": 60.0}),
      (3, 10 * H, {"md.disks_faulty": 0.0}), (4, 13 * H, {"md.disks_faulty": 0.0})], []),
    ("raid rebuild slow", RAID,
     [(1, 0, {"md.sync_percent": 1.0}), (2, 12 * H, {"md.sync_percent": 30.0}),
      (3, 24 * H, {"md.sync_percent": 55.0})], [(3, "prediction", "raid_rebuild_slow")]),
    # fans: one 0 rpm reading is a glitch, two in a row a stop (a failure)
    ("fan flapping", FAN, [(1, 0, {"fan.rpm": 5400.0}), (2, 30, {"fan.rpm": 0.0}),
                           (3, 60, {"fan.rpm": 5400.0}), (4, 90, {"fan.rpm": 0.0})], []),
    ("fan stopped", FAN, [(1, 0, {"fan.rpm": 5400.0}), (2, 30, {"fan.rpm": 0.0}),
                          (3, 60, {"fan.rpm": 0.0})], [(3, "failure", "fan_stopped")]),
]


@pytest.mark.parametrize(("name", "component", "story", "expected"), CASES,
                         ids=[c[0] for c in CASES])
def test_rule_story(name: str, component: str, story: Seq,
                    expected: list[tuple[int, str, str]]) -> None:
    assert play(component, story) == expected


def test_thresholds_are_configuration() -> None:
    story: Seq = [(1, 0, ce(0)), (2, H, ce(5))]
    assert play(DIMM, story) == []
    assert play(DIMM, story, RuleParams(ecc_ce_per_24h=5)) == [
        (2, "prediction", "ecc_correctable_rate")]


def test_a_new_serial_starts_a_new_baseline() -> None:
    states: dict[stateful.Key, stateful.Stored] = {}
    old = msg(1, 0, DISK, {R5: 0.0})
    updates, _ = stateful.evaluate(states, old, RuleParams())
    (key,) = [k for k in updates if k[2] == "smart_baseline"]
    seq, state = updates[key]
    # the same component id now reports another serial (a slot-named disk, say)
    body = json.loads(msg(2, 30, DISK, {R5: 50.0}).payload)
    body["components"] = [{"id": DISK, "kind": "disk", "status": "ok", "serial": "SN2"}]
    new = decode(Received("hg/v1/s1/h-01/telemetry", json.dumps(body).encode(), 2, 1, T0))
    assert isinstance(new, Message)
    updates, found = stateful.evaluate({key: (seq, state)}, new, RuleParams())
    assert found == []
    assert updates[key][1]["serial"] == "SN2"


def test_a_healthy_fleet_writes_no_state_after_the_first_message() -> None:
    states: dict[stateful.Key, stateful.Stored] = {}
    values = {R5: 0.0, "smart.media_errors": 0.0}
    first, _ = stateful.evaluate(states, msg(1, 0, DISK, values), RuleParams())
    states.update(first)
    again, _ = stateful.evaluate(states, msg(2, 30, DISK, values), RuleParams())
    fan, _ = stateful.evaluate({}, msg(3, 60, FAN, {"fan.rpm": 5400.0}), RuleParams())
    assert first
    assert again == {}
    assert fan == {}


@pytest.mark.parametrize(("name", "component", "story", "expected"), CASES,
                         ids=[c[0] for c in CASES])
def test_no_rule_changes_a_state_in_place(name: str, component: str, story: Seq,
                                          expected: list[tuple[int, str, str]]) -> None:
    """collector.findings shares one parsed state among every reader of the same JSON
    text, so a step must return a new state rather than change the one it was given."""
    import copy

    states: dict[stateful.Key, stateful.Stored] = {}
    for seq, at, values in story:
        before = copy.deepcopy(states)
        updates, _ = stateful.evaluate(states, msg(seq, at, component, values), RuleParams())
        assert states == before, name
        states.update(updates)
