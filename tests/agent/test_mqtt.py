"""The agent daemon against a real Mosquitto: birth, online, events, telemetry, outage, will."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent.cli import cmd_run
from agent.config import load_config
from schemas.mqtt_contract import errors
from tests.agent.conftest import failing, smart_json
from tests.conftest import free_port, wait_port


class Subscriber:
    """Collects every payload under hg/v1/iad1/web-01/#."""

    def __init__(self, url: str, persistent: bool = False) -> None:
        host, port = url.removeprefix("mqtt://").split(":")
        self.messages: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                                  protocol=mqtt.MQTTv5, client_id="test-subscriber")
        self.client.on_message = self._on_message
        props = None
        if persistent:  # the broker keeps the subscription and queues while we are away
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 600
        self.client.connect(host, int(port), clean_start=not persistent, properties=props)
        self.client.subscribe("hg/v1/iad1/web-01/#", qos=1)
        self.client.loop_start()
        time.sleep(0.3)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append(json.loads(msg.payload))

    def wait_for(self, pred: Callable[[list[dict[str, Any]]], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if pred(self.messages):
                    return
            time.sleep(0.05)
        raise AssertionError(f"timed out; got {[m['kind'] for m in self.messages]}")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _config(tmp_path: Path, url: str, root: Path) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(
        f"site: iad1\nhost: web-01\nmqtt_url: {url}\ninterval_s: 1\nspool_path: "
        f"{tmp_path / 'spool.db'}\nroot: {root}\nprobes: [smart, mdstat]\nkeepalive_s: 5\n"
    )
    return path


@pytest.fixture
def disks_root(replay_root: Callable[..., Path]) -> Path:
    return replay_root({"sda": failing("sata-hdd-healthy-hgst-he10.json", "ZL2ABCD1"),
                        "sdb": smart_json("sata-hdd-healthy-wdc-re4.json", serial_number="OK1")},
                       mdstat=True)


def _valid(messages: list[dict[str, Any]]) -> None:
    for m in messages:
        assert errors(m["kind"], m) == [], m


def test_run_publishes_birth_online_events_telemetry_then_shutdown(
    tmp_path: Path, mosquitto: str, disks_root: Path
) -> None:
    sub = Subscriber(mosquitto)
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "run", "--config", str(_config(tmp_path, mosquitto,
                                                                         disks_root))],
        stderr=subprocess.PIPE, text=True)
    try:
        sub.wait_for(lambda ms: sum(m["kind"] == "telemetry" for m in ms) >= 3, timeout=20)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        sub.wait_for(lambda ms: any(m.get("state") == "offline" for m in ms), timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        sub.close()
    msgs = sub.messages
    _valid(msgs)
    kinds = [m["kind"] for m in msgs]
    assert kinds[:2] == ["birth", "state"]  # births and states drain first
    birth, online = msgs[0], msgs[1]
    assert online["state"] == "online"
    assert online["seq"] == birth["seq"] + 1
    assert birth["session"] == online["session"]
    assert {"disk:ZL2ABCD1", "disk:OK1", "raid:md7"} <= {c["id"] for c in birth["components"]}
    events = {m["component"] for m in msgs if m["kind"] == "event"}
    assert {"disk:ZL2ABCD1", "raid:md6", "raid:md7", "raid:md42"} == events
    assert msgs[-1]["state"] == "offline"
    assert msgs[-1]["reason"] == "shutdown"
    seqs = sorted(m["seq"] for m in msgs)
    assert len(set(seqs)) == len(seqs)
    # consecutive, except the one seq reserved for the connection's last will (unused)
    missing = set(range(seqs[0], seqs[-1] + 1)) - set(seqs)
    assert missing == {birth["seq"] - 1}
    assert seqs[0] == 1


def _mosquitto(port: int, tmp_path: Path) -> subprocess.Popen[bytes]:
    store = tmp_path / "mosquitto"
    store.mkdir(exist_ok=True)
    conf = tmp_path / "mosquitto.conf"
    # started as root, mosquitto would drop to its own user, which cannot write in tmp_path
    user = "user root\n" if os.geteuid() == 0 else ""
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
                    f"persistence_location {store}/\n{user}")
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()  # mosquitto saves its persistent sessions on the way out
    proc.wait(timeout=10)


@pytest.fixture
def stopper() -> Iterator[threading.Event]:
    stop = threading.Event()
    yield stop
    stop.set()


def test_spool_keeps_messages_through_a_broker_outage(
    tmp_path: Path, disks_root: Path, stopper: threading.Event
) -> None:
    port = free_port()
    url = f"mqtt://127.0.0.1:{port}"
    broker = _mosquitto(port, tmp_path)
    Subscriber(url, persistent=True).close()  # the broker now queues for it while it is away
    _stop(broker)
    cfg = load_config(_config(tmp_path, url, disks_root), env={})
    agent = threading.Thread(target=cmd_run, args=(cfg, stopper), daemon=True)
    agent.start()
    time.sleep(2.5)  # no broker: about three collections wait in the spool
    broker = _mosquitto(port, tmp_path)
    try:
        time.sleep(1.0)
        sub = Subscriber(url, persistent=True)
        try:
            sub.wait_for(lambda ms: sum(m["kind"] == "telemetry" for m in ms) >= 4, timeout=30)
        finally:
            sub.close()
        stopper.set()
        agent.join(timeout=20)
        assert not agent.is_alive()
    finally:
        _stop(broker)
    births = [m["seq"] for m in sub.messages if m["kind"] == "birth"]
    seqs = {m["seq"] for m in sub.messages}
    # everything collected while the broker was away (before the will's reserved seq) arrives
    assert births[0] > 6  # at least two collections (4 events + telemetry, telemetry) waited
    # nothing lost: the only seq never seen is the one the (unused) last will reserved, once
    # for the whole outage rather than once per connection attempt
    assert len(set(range(1, max(seqs) + 1)) - seqs) == 1
    telemetry = [m["seq"] for m in sub.messages if m["kind"] == "telemetry"]
    assert telemetry == sorted(telemetry)  # oldest first
    _valid(sub.messages)


def test_last_will_is_offline_lost_when_the_agent_dies(
    tmp_path: Path, mosquitto: str, disks_root: Path
) -> None:
    sub = Subscriber(mosquitto)
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "run", "--config",
         str(_config(tmp_path, mosquitto, disks_root))], stderr=subprocess.DEVNULL)
    try:
        sub.wait_for(lambda ms: any(m["kind"] == "telemetry" for m in ms), timeout=20)
        proc.kill()  # no goodbye: the broker must publish the will (keepalive 5 s)
        proc.wait(timeout=10)
        sub.wait_for(lambda ms: any(m.get("state") == "offline" for m in ms), timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
        sub.close()
    will = next(m for m in sub.messages if m.get("state") == "offline")
    birth = next(m for m in sub.messages if m["kind"] == "birth")
    assert will["reason"] == "lost"
    assert will["session"] == birth["session"]
    assert will["seq"] == birth["seq"] - 1  # reserved at connect, before the birth
    _valid(sub.messages)
