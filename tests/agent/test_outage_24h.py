"""A 24-hour broker outage at a 30 s interval: the spool holds it within its cap, drops
only the oldest telemetry past a small cap, and on reconnect to a real Mosquitto sends
births and events first, then telemetry at a bounded rate, every kept seq arriving.

The Reporter is driven with an injected clock through 2,880 collections (24 h / 30 s) of a
large server's real probe output (the captured sysfs, mdstat and twelve smartctl disks),
with a fan failing and recovering now and then for events. No broker exists during the
outage at all; the publisher only meets one afterwards.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from agent.config import AgentConfig
from agent.core import Outgoing, Reporter
from agent.messages import ComponentState
from agent.probes import ProbeContext, ProbeResult, default_registry
from agent.publisher import Publisher, Will
from agent.root import Root
from agent.spool import DEFAULT_CAP_BYTES, Spool
from tests.agent.conftest import MDSTAT, SMARTCTL, SYSFS_ROOT, smart_json
from tests.conftest import eventually

#: 24 hours at a 30 s interval.
COLLECTIONS = 24 * 3600 // 30
#: A fan fails, and is replaced an hour later, every this many collections (events).
EVENT_EVERY = 240
START = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
#: Drain rate of telemetry after the outage in the reconnect test (messages per second):
#: low enough that the 50 telemetry a 1 MiB spool keeps outlast the one-second burst.
DRAIN_PER_S = 20.0


class Clock:
    """The agent's wall clock, moved by the test."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def server_result(root: Path) -> ProbeResult:
    """One collection of a large server: hwmon, EDAC, mdstat and twelve disks."""
    shutil.copytree(SYSFS_ROOT / "sys", root / "sys", symlinks=True)
    (root / "proc").mkdir(parents=True)
    shutil.copyfile(MDSTAT, root / "proc" / "mdstat")
    disks = sorted(p.name for p in SMARTCTL.glob("*.json"))[:12]
    for i, name in enumerate(disks):
        dev = f"sd{chr(ord('a') + i)}"
        path = root / "cmd" / "smartctl" / f"{dev}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(smart_json(name, serial_number=f"SER{i:04d}")))
    probes = default_registry().build(["hwmon", "edac", "mdstat", "smart"], ProbeContext("web-01"))
    return ProbeResult.merge(p.collect(Root(root)) for p in probes)


def with_fan(result: ProbeResult, failed: bool) -> ProbeResult:
    """The same collection with one healthy fan failed (or not)."""
    states = tuple(
        replace(s, status="failed", failure="fan_stopped", detail="fan reports 0 rpm")
        if failed and s.id == "fan:nct6779-fan2" else s
        for s in result.states
    )
    return replace(result, states=states)


Day = list[tuple[Outgoing, bytes]]


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Day:
    """A birth, a day of telemetry and the fan events, numbered and encoded once."""
    root = tmp_path_factory.mktemp("outage") / "root"
    clock = Clock()
    seqs = iter(range(1, 10**6))
    rep = Reporter(host="web-01", site="iad1", interval_s=30.0, probes=[],
                   root=Root(root), next_seq=lambda: next(seqs), clock=clock)
    healthy = server_result(root)
    broken = with_fan(healthy, True)
    rep.latest = healthy
    msgs = [rep.birth("s0"), rep.state(True, session="s0")]
    for i in range(COLLECTIONS):
        clock.now = START + timedelta(seconds=30 * i)
        failed = i % EVENT_EVERY >= EVENT_EVERY - 120  # the last hour of each period
        msgs += rep.report(broken if failed else healthy)
    return [(m, m.encode()) for m in msgs]


def spool_day(spool: Spool, msgs: Day) -> list[Outgoing]:
    """Store the day's messages as the agent does while no broker answers."""
    for msg, body in msgs:
        spool.put(msg.topic, body, msg.qos, msg.retain, msg.kind, seq=msg.payload["seq"])
    return [m for m, _ in msgs]


def kinds(sent: list[Outgoing], kind: str) -> list[int]:
    """The seqs of one kind of message."""
    return [m.payload["seq"] for m in sent if m.kind == kind]


def test_a_day_fits_the_default_cap(tmp_path: Path, day: Day) -> None:
    spool = Spool(tmp_path / "spool.db", "web-01", durable=False)  # fsync is not the point
    sent = spool_day(spool, day)
    total = sum(len(body) for _, body in day)
    telemetry = kinds(sent, "telemetry")
    assert len(telemetry) == COLLECTIONS
    events = [m.payload["component"] for m in sent if m.kind == "event"]
    fan = [c for c in events if c == "fan:nct6779-fan2"]
    # each period the fan fails, and recovers an hour later (the last period ends failed)
    assert len(fan) == 2 * COLLECTIONS // EVENT_EVERY - 1
    others = [c for c in events if c != "fan:nct6779-fan2"]
    assert len(others) == len(set(others)) > 0  # parts failed at start: one event each
    spool.close()
    size = (tmp_path / "spool.db").stat().st_size
    print(f"\n24 h outage: {len(sent)} messages, telemetry {total / COLLECTIONS / 1024:.1f} KiB"
          f" each, payloads {total / 2**20:.1f} MiB, spool file {size / 2**20:.1f} MiB,"
          f" cap {DEFAULT_CAP_BYTES / 2**20:.0f} MiB")
    assert total < DEFAULT_CAP_BYTES
    again = Spool(tmp_path / "spool.db", "web-01")
    assert again.count() == len(sent)  # nothing dropped under the default cap
    assert size < DEFAULT_CAP_BYTES * 1.25  # the file: payloads plus SQLite's pages
    again.close()


@pytest.fixture
def small_outage(tmp_path: Path, day: Day) -> Iterator[tuple[Spool, list[Outgoing]]]:
    """A day's outage into a 1 MiB spool (the smallest the config allows)."""
    spool = Spool(tmp_path / "spool.db", "web-01", cap_bytes=1024 * 1024, durable=False)
    sent = spool_day(spool, day)
    yield spool, sent
    spool.close()


def test_past_the_cap_the_oldest_telemetry_goes_first(
    small_outage: tuple[Spool, list[Outgoing]]
) -> None:
    spool, sent = small_outage
    kept = spool.pending(len(sent))
    seqs = {k: [json.loads(i.payload)["seq"] for i in kept if i.kind == k]
            for k in ("birth", "state", "event", "telemetry")}
    assert seqs["birth"] == kinds(sent, "birth")
    assert seqs["state"] == kinds(sent, "state")
    assert seqs["event"] == kinds(sent, "event")  # every event kept
    telemetry = kinds(sent, "telemetry")
    kept_t = seqs["telemetry"]
    assert 0 < len(kept_t) < len(telemetry)
    assert kept_t == telemetry[-len(kept_t):]  # the newest, contiguous: the oldest went
    assert sum(len(i.payload) for i in kept) <= 1024 * 1024
    print(f"\n1 MiB cap: kept {len(kept_t)} of {len(telemetry)} telemetry,"
          f" all {len(seqs['event'])} events")


def test_reconnect_sends_events_first_then_telemetry_at_a_bounded_rate(
    small_outage: tuple[Spool, list[Outgoing]], mosquitto: str
) -> None:
    spool, sent = small_outage
    kept = {json.loads(i.payload)["seq"]: i.kind for i in spool.pending(len(sent))}
    arrived: list[tuple[float, str, int]] = []
    lock = threading.Lock()

    def on_message(client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with lock:
            payload = json.loads(msg.payload)
            arrived.append((time.monotonic(), payload["kind"], payload["seq"]))

    host, port = mosquitto.removeprefix("mqtt://").split(":")
    sub = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sub.on_message = on_message
    sub.connect(host, int(port))
    sub.subscribe("hg/v1/iad1/web-01/#", qos=1)
    sub.loop_start()
    try:
        time.sleep(0.3)  # subscribed before the agent's broker comes back
        cfg = AgentConfig(site="iad1", host="web-01", mqtt_url=mosquitto,
                          telemetry_drain_per_s=DRAIN_PER_S, keepalive_s=10, backoff_max_s=1.0)
        pub = Publisher(cfg, spool, will_for=lambda s: Will("hg/v1/iad1/web-01/state", b"{}"),
                        on_session=lambda s: None)
        started = time.monotonic()
        while not (pub.connected and pub.idle()) and time.monotonic() - started < 60:
            pub.step(0.05)
        drained = time.monotonic() - started
        pub.close()
        with lock:
            want = len(kept)
        eventually(lambda: len(arrived) >= want, timeout=10, what="every kept message")
    finally:
        sub.loop_stop()
        sub.disconnect()
    order = [kind for _, kind, _ in arrived]
    got = {seq: kind for _, kind, seq in arrived if seq in kept}
    assert got == kept  # every kept seq arrived
    first_t = order.index("telemetry")
    assert "event" not in order[first_t:]  # every event before the first telemetry
    assert "birth" not in order[first_t:]
    telemetry_times = [t for t, kind, _ in arrived if kind == "telemetry"]
    n = len(telemetry_times)
    span = telemetry_times[-1] - telemetry_times[0]
    # a token bucket of one second's worth: n messages need at least (n - rate) / rate s
    assert n > 2 * DRAIN_PER_S
    assert span >= (n - DRAIN_PER_S) / DRAIN_PER_S * 0.95
    print(f"\nreconnect: {len(got)} kept messages in {drained:.1f} s; telemetry {n}, after a"
          f" one-second burst at {(n - DRAIN_PER_S) / max(span, 1e-9):.1f}/s"
          f" (limit {DRAIN_PER_S:.0f}/s)")
    assert spool.count() == 0


def test_states_of_the_fixture_are_realistic(tmp_path: Path) -> None:
    result = server_result(tmp_path / "root")
    assert len(result.readings) > 100  # a large server's telemetry, not a toy one
    fan: ComponentState = next(s for s in result.states if s.id == "fan:nct6779-fan2")
    assert fan.status == "ok"  # the fan the outage fails and recovers for its events
