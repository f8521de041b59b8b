"""The collector's paho client reads through BufferedSocket, and loses nothing doing so."""

from __future__ import annotations

import socket
import threading
import time
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from collector.model import DeadLetter, Message, Received
from collector.mqtt import BufferedSocket, Subscriber
from hourglass.config import mqtt_endpoint
from tests.collector.conftest import Broker
from tests.conftest import eventually


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
