"""The collector's paho client: it reads through BufferedSocket and loses nothing doing so,
and the broker may send it whole batches unacknowledged."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from collector.model import DeadLetter, Message, Received
from collector.mqtt import BufferedSocket, Subscriber
from hourglass.config import mqtt_endpoint
from tests.collector.conftest import Broker
from tests.conftest import eventually, free_port, wait_port


def test_buffered_reads_return_what_the_socket_sent_in_pieces_of_any_size() -> None:
    a, b = socket.socketpair()
    data = bytes(range(256)) * 1000  # 256 kB: several refills
    threading.Thread(target=a.sendall, args=(data,), daemon=True).start()
    buf = BufferedSocket(b)
    got = bytearray()
    sizes = [1, 1, 2, 3800, 70_000, 5]
    b.settimeout(5)
    while len(got) < len(data):
        got += buf.recv(sizes[len(got) % len(sizes)])
    assert bytes(got) == data
    assert buf.pending() == 0
    a.close()
    buf.close()


def test_a_burst_of_qos1_messages_arrives_whole_and_in_order(broker: Broker) -> None:
    host, port, _ = mqtt_endpoint(broker.url)
    sub = Subscriber(host, port, False, "test-buffered", 10_000,
                     lambda raw: DeadLetter(raw.topic, "", raw.payload, raw.received_at))
    sub.start()
    eventually(lambda: sub.connected.is_set() or None, 10, "the subscriber connected")
    time.sleep(0.3)  # the subscription lands after the connection
    # paho 2's private socket factory is what installs the buffer: a rename shows here
    assert isinstance(sub.client._sock, BufferedSocket)  # noqa: SLF001
    pub = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5,
                      client_id="test-burst")
    pub.connect(host, port)
    pub.loop_start()
    n = 3000
    for i in range(n):  # sizes from a few bytes to 12 kB, across buffer refills
        pub.publish(f"hg/v1/s1/h-{i % 7}/telemetry", str(i).encode() * (1 + i % 3000), qos=1)
    got: list[Received] = []

    def drained() -> bool | None:
        batch = []
        while not sub.queue.empty():
            batch.append(sub.queue.get()[0])
        sub.ack(batch)  # the broker holds back what exceeds its in-flight window
        got.extend(batch)
        return len(got) >= n or None

    eventually(drained, 30, "every message received", 0.05)
    assert [int(r.payload[: len(str(i))]) for i, r in enumerate(got)] == list(range(n))
    assert [r.index for r in got] == list(range(n))
    assert all(r.payload == str(i).encode() * (1 + i % 3000) for i, r in enumerate(got))
    pub.loop_stop()
    sub.stop()
    assert not isinstance(got[0], Message)
    assert got[0].received_at <= datetime.now(UTC)


def test_the_deploy_broker_lets_the_collector_hold_whole_batches_unacknowledged(
        tmp_path: Path) -> None:
    """Mosquitto's default lets a client hold 20 unacknowledged messages: every batch of a
    collector (which acks after commit) would be 20. The deploy config lifts it, and the
    collector's own Receive Maximum bounds what it is sent instead."""
    conf = (Path(__file__).parents[2] / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    inflight = [line for line in conf.splitlines() if line.startswith("max_inflight_messages")]
    assert inflight == ["max_inflight_messages 0"]
    port = free_port()
    (tmp_path / "m.conf").write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n"
                                     f"{inflight[0]}\n")
    broker = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c",
                               str(tmp_path / "m.conf")], stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        sub = Subscriber("127.0.0.1", port, False, "test-inflight", 10_000,
                         lambda raw: DeadLetter(raw.topic, "", raw.payload, raw.received_at),
                         receive_maximum=1500)
        sub.start()
        eventually(lambda: sub.connected.is_set() or None, 10, "the subscriber connected")
        time.sleep(0.3)
        pub = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                          protocol=mqtt.MQTTv5, client_id="test-inflight-pub")
        pub.connect("127.0.0.1", port)
        pub.loop_start()
        for _ in range(2000):
            pub.publish("hg/v1/s1/h-1/telemetry", b"{}", qos=1)
        # nothing is acknowledged: the broker sends up to the collector's Receive Maximum
        eventually(lambda: sub.queue.qsize() >= 1500 or None, 15, "1,500 unacknowledged")
        time.sleep(0.5)
        assert sub.queue.qsize() == 1500
        pub.loop_stop()
        sub.stop()
    finally:
        broker.terminate()
        broker.wait(timeout=10)
