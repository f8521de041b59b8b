"""Per-host identity at a real Mosquitto: a host writes only under its own topic.

The broker runs as production would: TLS with ``require_certificate`` and
``use_identity_as_username`` (the certificate's CN is the host id), or a per-host
password; an ACL ``pattern write hg/v1/+/%u/#`` lets each host write its own topics only.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from agent.cli import cmd_run
from agent.config import load_config
from tests.agent.brokers import Broker
from tests.agent.certs import CA, Pair
from tests.agent.conftest import failing
from tests.conftest import free_port

#: The ACL production runs (docker-compose mounts it), not a copy of it.
ACL = (Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "acl").read_text()
NOT_AUTHORIZED = 0x87


class Client:
    """A paho MQTT 5 client that records PUBACK reason codes and received messages."""

    def __init__(self, port: int, client_id: str, *, ca: CA | None = None,
                 pair: Pair | None = None, login: tuple[str, str] | None = None) -> None:
        self.acks: dict[int, ReasonCode] = {}
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.accepted = threading.Event()  # a successful CONNACK arrived
        self.lock = threading.Lock()
        self.c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                             protocol=mqtt.MQTTv5, client_id=client_id)
        if ca is not None:
            self.c.tls_set(ca_certs=str(ca.cert), certfile=pair and str(pair.cert),
                           keyfile=pair and str(pair.key), cert_reqs=ssl.CERT_REQUIRED)
        if login is not None:
            self.c.username_pw_set(*login)
        self.c.on_publish = self._on_publish
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode,
                    properties: Any) -> None:
        with self.lock:
            self.acks[mid] = reason

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode,
                    properties: Any) -> None:
        if not reason.is_failure:
            self.accepted.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.received.append((msg.topic, json.loads(msg.payload)))

    def publish(self, topic: str) -> ReasonCode:
        """Publish at QoS 1 and return the broker's PUBACK reason code."""
        info = self.c.publish(topic, json.dumps({"probe": topic}), qos=1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with self.lock:
                if info.mid in self.acks:
                    return self.acks[info.mid]
            time.sleep(0.02)
        raise AssertionError(f"no PUBACK for {topic}")

    def topics(self) -> set[str]:
        with self.lock:
            return {t for t, _ in self.received}

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def watch(port: int, **auth: Any) -> Client:
    """The privileged reader (the collector's identity), subscribed to everything."""
    w = Client(port, "watcher", **auth)
    w.c.subscribe("hg/#", qos=1)
    time.sleep(0.5)
    return w


@pytest.fixture
def ca(tmp_path: Path) -> CA:
    return CA(tmp_path / "pki")


@pytest.fixture
def tls_broker(tmp_path: Path, ca: CA) -> Iterator[Broker]:
    server = ca.issue("broker", server=True)
    (tmp_path / "acl").write_text(ACL)
    port = free_port()
    b = Broker(tmp_path / "broker", port=port, extra_conf=(
        f"listener {port} 127.0.0.1\ncafile {ca.cert}\ncertfile {server.cert}\n"
        f"keyfile {server.key}\nrequire_certificate true\nuse_identity_as_username true\n"
        f"acl_file {tmp_path / 'acl'}\n"))
    b.start()
    yield b
    b.stop()


@pytest.fixture
def password_broker(tmp_path: Path) -> Iterator[Broker]:
    pw = tmp_path / "passwords"
    for i, (user, secret) in enumerate((("web-01", "s3cret-01"), ("collector", "s3cret-c"))):
        subprocess.run(["mosquitto_passwd", "-b", *(["-c"] if i == 0 else []), str(pw), user,
                        secret], check=True, capture_output=True)
    (tmp_path / "acl").write_text(ACL)
    port = free_port()
    b = Broker(tmp_path / "broker", port=port, extra_conf=(
        f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {pw}\n"
        f"acl_file {tmp_path / 'acl'}\n"))
    b.start()
    yield b
    b.stop()


@pytest.fixture
def agents() -> Iterator[Callable[[Path], None]]:
    """Run agent daemons in threads; all stopped after the test."""
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start(config: Path) -> None:
        t = threading.Thread(target=cmd_run, args=(load_config(config, env={}), stop),
                             daemon=True)
        t.start()
        threads.append(t)

    yield start
    stop.set()
    for t in threads:
        t.join(timeout=20)


def agent_yaml(tmp_path: Path, host: str, url: str, root: Path, auth: str) -> Path:
    """An agent config for ``host`` with its own spool."""
    path = tmp_path / f"{host}.yaml"
    path.write_text(f"site: iad1\nhost: {host}\nmqtt_url: {url}\ninterval_s: 1\n"
                    f"spool_path: {tmp_path / host / 'spool.db'}\nroot: {root}\n"
                    f"probes: [smart]\nkeepalive_s: 5\nbackoff_max_s: 2\n{auth}")
    return path


def test_certificate_cn_may_write_its_own_topic_only(tls_broker: Broker, ca: CA) -> None:
    watcher = watch(tls_broker.port, ca=ca, pair=ca.issue("collector"))
    web01 = Client(tls_broker.port, "web-01", ca=ca, pair=ca.issue("web-01"))
    try:
        assert web01.accepted.wait(5)
        assert web01.publish("hg/v1/iad1/web-01/telemetry").value == 0
        assert web01.publish("hg/v1/iad1/web-02/telemetry").value == NOT_AUTHORIZED
        time.sleep(0.5)
        assert watcher.topics() == {"hg/v1/iad1/web-01/telemetry"}
    finally:
        web01.close()
        watcher.close()


def test_a_client_without_a_certificate_is_turned_away(tls_broker: Broker, ca: CA) -> None:
    try:
        # with TLS 1.3 the broker checks the certificate after the handshake: the socket
        # opens, but the session never gets a successful CONNACK
        nobody = Client(tls_broker.port, "nobody", ca=ca)
    except (ssl.SSLError, OSError):
        return
    try:
        assert not nobody.accepted.wait(3)
    finally:
        nobody.close()


def test_agent_over_tls_publishes_as_itself_and_not_as_another_host(
    tmp_path: Path, tls_broker: Broker, ca: CA, agents: Callable[[Path], None],
    replay_root: Callable[..., Path],
) -> None:
    root = replay_root({"sda": failing("sata-hdd-healthy-hgst-he10.json", "ZL2ABCD1")})
    mine = ca.issue("web-01")
    tls = f"tls:\n  ca_file: {ca.cert}\n  cert_file: {mine.cert}\n  key_file: {mine.key}\n"
    url = f"mqtts://127.0.0.1:{tls_broker.port}"
    watcher = watch(tls_broker.port, ca=ca, pair=ca.issue("collector"))
    try:
        agents(agent_yaml(tmp_path, "web-01", url, root, tls))
        # the same certificate configured on a host claiming to be web-02
        agents(agent_yaml(tmp_path, "web-02", url, root, tls))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "hg/v1/iad1/web-01/telemetry" not in \
                watcher.topics():
            time.sleep(0.1)
        time.sleep(3)  # the impostor had three collections to get something through
        topics = watcher.topics()
    finally:
        watcher.close()
    assert {"hg/v1/iad1/web-01/birth", "hg/v1/iad1/web-01/event",
            "hg/v1/iad1/web-01/telemetry"} <= topics
    assert not [t for t in topics if "/web-02/" in t]


def test_per_host_password_may_write_its_own_topic_only(
    tmp_path: Path, password_broker: Broker, agents: Callable[[Path], None],
    replay_root: Callable[..., Path],
) -> None:
    port = password_broker.port
    watcher = watch(port, login=("collector", "s3cret-c"))
    web01 = Client(port, "web-01-probe", login=("web-01", "s3cret-01"))
    root = replay_root({"sda": failing("sata-hdd-healthy-hgst-he10.json", "ZL2ABCD1")})
    try:
        assert web01.publish("hg/v1/iad1/web-02/event").value == NOT_AUTHORIZED
        agents(agent_yaml(tmp_path, "web-01", password_broker.url, root,
                          "username: web-01\npassword: s3cret-01\n"))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "hg/v1/iad1/web-01/telemetry" not in \
                watcher.topics():
            time.sleep(0.1)
        topics = watcher.topics()
    finally:
        web01.close()
        watcher.close()
    assert "hg/v1/iad1/web-01/telemetry" in topics
    assert not [t for t in topics if "/web-02/" in t]


def test_only_the_collector_commands_and_each_agent_hears_only_its_own(
    password_broker: Broker,
) -> None:
    """Resend commands (hg/v1/{site}/{host}/cmd/resend): the collector may send them to any
    host; a host hears only its own and cannot command another."""
    port = password_broker.port
    collector = Client(port, "collector-probe", login=("collector", "s3cret-c"))
    web01 = Client(port, "web-01-probe", login=("web-01", "s3cret-01"))
    try:
        web01.c.subscribe("hg/v1/+/+/cmd/#", qos=1)
        time.sleep(0.5)
        assert web01.publish("hg/v1/iad1/web-02/cmd/resend").value == NOT_AUTHORIZED
        for host in ("web-02", "web-01"):
            assert not collector.publish(f"hg/v1/iad1/{host}/cmd/resend").is_failure
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not web01.topics():
            time.sleep(0.05)
        time.sleep(0.3)  # anything else in flight would land by now
        assert web01.topics() == {"hg/v1/iad1/web-01/cmd/resend"}
    finally:
        web01.close()
        collector.close()
