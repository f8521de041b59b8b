"""Delivery order and timing against a real Mosquitto: backlog order, drain rate, event delay."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from agent.cli import cmd_run
from agent.config import load_config
from tests.agent.brokers import Broker
from tests.agent.conftest import failing, smart_json
from tests.agent.test_mqtt import Subscriber


class TimedSubscriber(Subscriber):
    """A Subscriber that also notes when each message arrived (wall clock, UTC)."""

    def __init__(self, url: str) -> None:
        self.arrived: list[datetime] = []
        super().__init__(url)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append(json.loads(msg.payload))
            self.arrived.append(datetime.now(UTC))


def _config(tmp_path: Path, url: str, root: Path, extra: str = "") -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(
        f"site: iad1\nhost: web-01\nmqtt_url: {url}\nspool_path: {tmp_path / 'spool.db'}\n"
        f"root: {root}\nprobes: [smart]\nkeepalive_s: 5\nbackoff_max_s: 2\n{extra}"
    )
    return path


@pytest.fixture
def run_agent() -> Iterator[Callable[[Path], threading.Thread]]:
    """Start cmd_run in a thread; stopped (and joined) after the test."""
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start(config: Path) -> threading.Thread:
        cfg = load_config(config, env={})
        t = threading.Thread(target=cmd_run, args=(cfg, stop), daemon=True)
        t.start()
        threads.append(t)
        return t

    yield start
    stop.set()
    for t in threads:
        t.join(timeout=20)


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def test_nothing_is_dropped_while_no_one_subscribes(
    tmp_path: Path, mosquitto: str, replay_root: Callable[..., Path],
    run_agent: Callable[[Path], threading.Thread],
) -> None:
    """PUBACK "no matching subscribers" keeps the message; it goes once a collector listens."""
    root = replay_root({"sda": failing("sata-hdd-healthy-hgst-he10.json", "ZL2ABCD1")})
    run_agent(_config(tmp_path, mosquitto, root, "interval_s: 1\n"))
    time.sleep(3)  # connected, publishing, every PUBACK says nobody listens
    sub = TimedSubscriber(mosquitto)
    try:
        sub.wait_for(lambda ms: sum(m["kind"] == "telemetry" for m in ms) >= 5, timeout=30)
    finally:
        sub.close()
    seqs = {m["seq"] for m in sub.messages}
    birth = next(m for m in sub.messages if m["kind"] == "birth")
    assert set(range(1, max(seqs) + 1)) - seqs == {birth["seq"] - 1}  # only the will's seq
    assert any(m["kind"] == "event" for m in sub.messages)


def test_backlog_goes_events_first_then_telemetry_at_its_rate(
    tmp_path: Path, replay_root: Callable[..., Path],
    run_agent: Callable[[Path], threading.Thread],
) -> None:
    """After an outage: birth and online, the events, then telemetry no faster than its rate."""
    broker = Broker(tmp_path / "broker")
    root = replay_root({"sda": failing("sata-hdd-healthy-hgst-he10.json", "ZL2ABCD1"),
                        "sdb": failing("sata-hdd-healthy-wdc-re4.json", "ZL2ABCD2")})
    run_agent(_config(tmp_path, broker.url, root,
                      "interval_s: 0.1\ntelemetry_drain_per_s: 10\n"))
    time.sleep(3)  # about 30 telemetry messages wait in the spool
    broker.start()
    try:
        sub = TimedSubscriber(broker.url)
        try:
            sub.wait_for(lambda ms: sum(m["kind"] == "telemetry" for m in ms) >= 40, timeout=30)
        finally:
            sub.close()
    finally:
        broker.stop()
    kinds = [m["kind"] for m in sub.messages]
    # Birth and online come first. If the subscriber subscribed after they were published,
    # the broker answered "no matching subscribers" (0x10) and the agent resent them after
    # its hold-back: the same seqs again (the collector keeps each (host, seq) once).
    lead = next(i for i, k in enumerate(kinds) if k not in ("birth", "state"))
    assert kinds[:2] == ["birth", "state"]
    assert {m["seq"] for m in sub.messages[:lead]} == {m["seq"] for m in sub.messages[:2]}
    assert kinds[lead:lead + 2] == ["event", "event"]
    assert "event" not in kinds[lead + 2:]
    backlog = [at for m, at in zip(sub.messages, sub.arrived, strict=True)
               if m["kind"] == "telemetry" and m["seq"] < sub.messages[0]["seq"]]
    assert len(backlog) >= 20
    # 10 per second after a burst of one second's worth
    spread = (backlog[-1] - backlog[0]).total_seconds()
    assert spread >= (len(backlog) - 10) / 10 * 0.8


def test_an_event_leaves_within_10_s_stamped_with_its_detection(
    tmp_path: Path, mosquitto: str, replay_root: Callable[..., Path],
    run_agent: Callable[[Path], threading.Thread],
) -> None:
    """A disk turning FAILED is published within 10 s, carrying the time it was seen."""
    root = replay_root({"sda": smart_json("sata-hdd-healthy-hgst-he10.json",
                                          serial_number="ZL2ABCD1")})
    sub = TimedSubscriber(mosquitto)
    try:
        run_agent(_config(tmp_path, mosquitto, root, "interval_s: 2\nsmart_interval_s: 1\n"))
        sub.wait_for(lambda ms: any(m["kind"] == "telemetry" for m in ms), timeout=20)
        failed_at = datetime.now(UTC)
        sda = root / "cmd" / "smartctl" / "sda.json"
        sda.write_text(json.dumps(failing("sata-hdd-healthy-hgst-he10.json", "ZL2ABCD1")))
        sub.wait_for(lambda ms: any(m["kind"] == "event" for m in ms), timeout=15)
    finally:
        sub.close()
    i = next(i for i, m in enumerate(sub.messages) if m["kind"] == "event")
    event, arrived = sub.messages[i], sub.arrived[i]
    detected = _parse(event["detected_at"])
    assert event["component"] == "disk:ZL2ABCD1"
    # stamped as the collection that saw it began (which may be a moment before the write)
    assert failed_at - timedelta(seconds=1) <= detected <= arrived
    assert (arrived - detected).total_seconds() <= 10
