"""The collector's paho client: it reads through BufferedSocket and loses nothing doing so,
and the broker may send it whole batches unacknowledged."""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from collector.model import DeadLetter, Message, Received
from collector.mqtt import BufferedSocket, Subscriber, _paho_decode_publish, decode_publish
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


def _decoded(fn: Any, header: int, packet: bytes | bytearray) -> tuple[Any, ...]:
    """What a decode gives, comparable: the fields, properties as paho prints them; or the
    exception's type."""
    try:
        got = fn(header, packet, MQTTProtocolVersion.MQTTv5)
    except Exception as exc:  # noqa: BLE001 -- the type is what is compared
        return ("raised", type(exc))
    return (got.dup, got.qos, got.retain, got.topic, got.mid, str(got.properties),
            bytes(got.payload), type(got.payload), type(got.topic))


@settings(max_examples=400, deadline=None)
@given(topic=st.binary(max_size=80), qos=st.integers(0, 2), dup=st.booleans(),
       retain=st.booleans(), mid=st.integers(1, 65535), payload=st.binary(max_size=300),
       expiry=st.none() | st.integers(0, 2**32 - 1), cut=st.none() | st.integers(0, 400))
def test_the_fast_publish_decode_gives_what_paho_gives(
        topic: bytes, qos: int, dup: bool, retain: bool, mid: int, payload: bytes,
        expiry: int | None, cut: int | None) -> None:
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    if expiry is not None:
        props.MessageExpiryInterval = expiry
    packet = (struct.pack("!H", len(topic)) + topic + (struct.pack("!H", mid) if qos else b"")
              + props.pack() + payload)  # type: ignore[no-untyped-call]
    if cut is not None:
        packet = packet[:cut]  # truncated: a broken packet, decoded or refused alike
    header = 0x30 | (0x08 if dup else 0) | (qos << 1) | (0x01 if retain else 0)
    assert _decoded(decode_publish, header, packet) == _decoded(_paho_decode_publish, header,
                                                                packet)
    assert _decoded(decode_publish, header, bytearray(packet)) == _decoded(
        _paho_decode_publish, header, bytearray(packet))


def test_paho_decodes_publishes_through_the_fast_decode() -> None:
    """client.py looks decode_publish up in paho's _packet module at each packet; a paho
    that stops doing so would silently lose the saving (not the messages)."""
    from paho.mqtt import _packet

    assert _packet.decode_publish is decode_publish
    src = Path(mqtt.__file__).read_text()
    assert "_packet.decode_publish(" in src
