"""The collector's only paho module: a shared-subscription MQTT 5 client with manual acks.

Messages are decoded in the network thread (so decoding overlaps the writer's waits on
the database) and go into a bounded queue; when it is full the network thread blocks in
the callback and so stops reading from the broker: that is the collector's back-pressure.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import secrets
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt import _packet
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from collector.liveness import Action, Observed
from collector.model import DeadLetter, Message, Received

log = logging.getLogger(__name__)
SUBSCRIPTION = "$share/hg-collectors/hg/v1/+/+/+"
PLAIN_SUBSCRIPTION = "hg/v1/+/+/+"  # MQTT 3.1.1 brokers without shared subscriptions
# The broker keeps a stopped collector's session and queue this long: 30 minutes cover a
# restart, a deploy or a database failover (bench/ingest drains a 10-minute backlog); 5
# minutes lost the whole backlog of a collector down for 10.
SESSION_EXPIRY_S = 1800
Item = tuple[Received, Message | DeadLetter]
# Canaries: QoS 0 (no acknowledgement to order among the others, no in-flight slot), on
# a level no agent can own (host ids start with a letter or digit; the ACL lets a host
# write only under its own id); whichever collector receives one drops it.
CANARY_PREFIX = "hg/v1/_canary/"
READ_CHUNK = 65_536  # about 17 telemetry messages a read; the kernel's buffer is larger


_paho_decode_publish = _packet.decode_publish
# A PUBLISH without properties (all of an agent's) shares this one: paho built a new
# Properties object for each, two dicts of 27 names and a loop clearing them, about a
# tenth of the collector's CPU a message (profiled). Nothing reads or changes it.
_NO_PROPERTIES = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]


def decode_publish(header: int, packet: bytes | bytearray,
                   protocol: MQTTProtocolVersion) -> _packet.PublishPacket:
    """paho's `_packet.decode_publish`, but an MQTT 5 PUBLISH whose property length is 0
    gets the shared empty Properties; anything else (3.1.1, properties, a packet too
    short) is paho's own decode. The same fields otherwise (tests/collector/
    test_mqtt_buffer.py compares the two on any packet)."""
    if protocol == MQTTProtocolVersion.MQTTv5 and len(packet) >= 3:
        qos = (header & 0x06) >> 1
        end = 2 + ((packet[0] << 8) | packet[1])  # after the topic
        at = end + 2 if qos else end  # the property length (one byte when it is 0)
        if len(packet) > at and packet[at] == 0:
            return _packet.PublishPacket(
                dup=bool(header & 0x08), qos=qos, retain=bool(header & 0x01),
                topic=bytes(packet[2:end]),
                mid=(packet[end] << 8) | packet[end + 1] if qos else 0,
                properties=_NO_PROPERTIES, payload=bytes(packet[at + 1:]))
    return _paho_decode_publish(header, packet, protocol)


_packet.decode_publish = decode_publish  # client.py calls it through the module


class BufferedSocket:
    """A plain TCP socket that paho reads from a buffer filled 64 KiB at a time.

    paho reads each packet with one recv for its type, one per length byte and one for
    the rest, and selects before every packet: about five system calls a message, a
    fifth of the collector's CPU (profiled). `pending()` is paho's own hook (it uses it
    for TLS) to skip the select while buffered bytes remain.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = b""
        self._pos = 0

    def recv(self, size: int) -> bytes:
        """Up to size bytes, from the buffer; refills it when empty (may raise
        BlockingIOError like the socket, which paho expects)."""
        if self._pos >= len(self._buf):
            data = self._sock.recv(max(size, READ_CHUNK))
            if len(data) <= size:
                return data
            self._buf, self._pos = data, 0
        out = self._buf[self._pos:self._pos + size]
        self._pos += len(out)
        return out

    def pending(self) -> int:
        """Bytes read from the socket that paho has not taken yet."""
        return len(self._buf) - self._pos

    def send(self, data: bytes | bytearray) -> int:
        """Send as the socket does."""
        return self._sock.send(data)

    def close(self) -> None:
        """Close the socket; buffered bytes of a closed connection are worthless."""
        self._buf, self._pos = b"", 0
        self._sock.close()

    def fileno(self) -> int:
        """The socket's descriptor, for select."""
        return self._sock.fileno()

    def shutdown(self, how: int) -> None:
        """As the socket (the watchdog drops a silent connection this way)."""
        self._sock.shutdown(how)

    def setblocking(self, flag: bool) -> None:
        """As the socket."""
        self._sock.setblocking(flag)

    def settimeout(self, value: float | None) -> None:
        """As the socket."""
        self._sock.settimeout(value)


class _Client(mqtt.Client):
    """paho's client reading plain TCP through BufferedSocket (TLS keeps its own buffer)."""

    def _create_socket(self) -> Any:
        """paho 2's socket factory (private; tests/collector/test_mqtt_buffer.py notices a
        rename)."""
        sock = super()._create_socket()
        if type(sock) is socket.socket:  # plain TCP or unix; not SSLSocket or websockets
            return BufferedSocket(sock)
        return sock

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """Read every packet already buffered, not one per select (at most 64, so the loop
        still writes acknowledgements and pings between bursts)."""
        rc = super().loop_read(max_packets)
        for _ in range(63):
            sock = self._sock
            if rc or not isinstance(sock, BufferedSocket) or not sock.pending():
                break
            rc = super().loop_read(max_packets)
        return rc


class Subscriber:
    """Connects, subscribes to the shared topic, and hands messages to a bounded queue."""

    def __init__(self, host: str, port: int, tls: bool, client_id: str, queue_size: int,
                 decode: Callable[[Received], Message | DeadLetter],
                 username: str | None = None, password: str | None = None,
                 v5: bool = True, receive_maximum: int = 65_535,
                 tls_files: tuple[str | None, str | None, str | None] = (None, None, None),
                 ) -> None:
        """``tls_files``: the CA (None: the system's), the client certificate and its key."""
        self.queue: queue.Queue[Item] = queue.Queue(maxsize=queue_size)
        self._decode = decode
        self.connected = threading.Event()
        self._connection = 0
        self._arrived = 0  # messages received so far; the next one's index
        self._acks = AckOrder()
        self._stopping = threading.Event()
        self._host, self._port, self._v5 = host, port, v5
        self.canary_topic = f"{CANARY_PREFIX}{_topic_level(client_id)}/canary"
        self._canary_token = secrets.token_hex(8)  # tells our canaries apart in a capture
        self._canary_n = 0
        self.connected_at: float | None = None  # monotonic, of this connection
        self.heard_at: float | None = None  # monotonic: the last message of any kind
        self.recoveries: dict[str, int] = {a.value: 0 for a in Action if a is not Action.NONE}
        # (lost, regained) wall-clock times of our broker outages, newest last (regained
        # None while it lasts): wills arriving around them are the broker's, not the hosts'
        self.outages: list[tuple[datetime, datetime | None]] = []
        #: the broker's certificate's notAfter (Unix seconds) as this connection saw it in
        #: the TLS handshake; None without TLS or before the first connection
        self.broker_cert_not_after: float | None = None
        self.broker_ca_not_after: float | None = None  # the CA we trust that issued it
        # MQTT 5 Receive Maximum: how many unacknowledged messages the broker may send us;
        # a broker's own cap (Mosquitto's max_inflight_messages, 20 by default; EMQX's
        # max_inflight, 32) must be at least this, or it caps every batch
        self._receive_maximum = max(1, min(receive_maximum, 65_535))
        self.client = _Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else False,
            manual_ack=True,
        )
        if tls:
            ca, cert, key = tls_files
            self.client.tls_set(ca_certs=ca, certfile=cert, keyfile=key,
                                cert_reqs=ssl.CERT_REQUIRED)
        if username:
            self.client.username_pw_set(username, password)
        # At most 5 s between attempts: until a collector subscribes again after a broker
        # restart, Mosquitto answers publishers 0x10 "no matching subscribers" and drops
        # their messages (agents resend those; other publishers lose them).
        self.client.reconnect_delay_set(min_delay=1, max_delay=5)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        # An exception escaping a callback would end paho's loop and with it all ingest;
        # ours catch everything, and this keeps the loop alive should one ever slip (logged)
        self.client.suppress_exceptions = True
        paho_log = logging.getLogger("collector.paho")
        paho_log.setLevel(logging.WARNING)  # paho logs every packet at debug: not worth a call
        self.client.enable_logger(paho_log)

    def start(self) -> None:
        """Connect (persistent session) and run the network loop in its thread."""
        if self._v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = SESSION_EXPIRY_S
            props.ReceiveMaximum = self._receive_maximum
            self.client.connect_async(self._host, self._port, keepalive=30, clean_start=False,
                                      properties=props)
        else:
            self.client.connect_async(self._host, self._port, keepalive=30)
        # paho's own thread: with it, acks from the writers are queued for the network
        # thread to write in bursts; without it paho writes each from the caller's thread
        # (bench/ingest measured a fifth more CPU a message and twice the p99)
        self.client.loop_start()

    def stop(self) -> None:
        """Disconnect and stop the network thread."""
        self._stopping.set()
        self.client.disconnect()
        self.client.loop_stop()

    def observe(self) -> Observed:
        """The facts collector.liveness judges, now."""
        now = time.monotonic()
        return Observed(now, self.connected.is_set(), self.connected_at, self.heard_at,
                        self._acks.oldest_wait(now), self.queue.full())

    def send_canary(self) -> None:
        """Publish one canary to a topic the (shared) subscription matches (QoS 0)."""
        if self.connected.is_set():
            self._canary_n += 1
            self.client.publish(self.canary_topic, f"{self._canary_token}:{self._canary_n}",
                                qos=0)

    def command(self, topic: str, payload: bytes) -> bool:
        """Publish a command to one agent (QoS 1); False when not connected (asked again
        on the gap's next turn)."""
        if not self.connected.is_set():
            return False
        return self.client.publish(topic, payload, qos=1).rc == mqtt.MQTT_ERR_SUCCESS

    def recover(self, action: Action) -> None:
        """Resubscribe, or drop the connection so paho reconnects (the session is kept)."""
        if action is Action.NONE:
            return
        self.recoveries[action.value] += 1
        log.warning("nothing heard from the broker, not even a canary: %s", action.value)
        if action is Action.RESUBSCRIBE:
            self._subscribe(self.client)  # a SUBSCRIBE to what we have replaces it: harmless
            return
        # paho's reconnect() is not safe beside its running loop; a socket shut down
        # under it is: the loop sees the connection lost and reconnects by itself.
        sock = self.client.socket()
        if isinstance(sock, (socket.socket, BufferedSocket)):  # SSLSocket is a socket.socket
            with contextlib.suppress(OSError):  # already gone: the loop is reconnecting
                sock.shutdown(socket.SHUT_RDWR)

    def _subscribe(self, client: mqtt.Client) -> None:
        """(Re)subscribe. Needed on every connect: Mosquitto 2.0 does not persist shared
        subscriptions, so after its restart the resumed session is subscribed to nothing."""
        client.subscribe(SUBSCRIPTION if self._v5 else PLAIN_SUBSCRIPTION, qos=1)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any,
                      properties: Any) -> None:
        for reason in reasons:
            if reason.is_failure:
                log.error("the broker refused the subscription (%s): the collector hears "
                          "nothing; its user must be allowed to read hg/v1/# and "
                          "$share/hg-collectors/hg/v1/# and to write %s", reason,
                          self.canary_topic)

    def ack(self, raws: list[Received]) -> None:
        """Acknowledge messages after their batch committed, in the order they arrived.

        Writers commit batches in any order, but MQTT wants PUBACKs in the order the
        PUBLISHes came, so a batch's acks wait for every earlier message's commit.
        After a reconnect the broker resends what was not acknowledged and may reuse a
        packet id for another message: acking an old id then would drop that one unread.
        The resent copy is acknowledged instead, after the database refuses it as a repeat.
        """
        for raw in self._acks.release(raws):
            if raw.qos > 0 and raw.connection == self._connection:
                self.client.ack(raw.mid, raw.qos)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            return
        self._connection += 1
        log.info("connected to %s:%s (session present: %s)", self._host, self._port,
                 flags.session_present)
        self.connected_at = time.monotonic()
        self._note_certificate(client)
        if self.outages and self.outages[-1][1] is None:
            self.outages[-1] = (self.outages[-1][0], datetime.now(UTC))
        self._subscribe(client)
        self.connected.set()

    def _note_certificate(self, client: mqtt.Client) -> None:
        """Keep the expiry of the certificate the broker showed us (verified by then)."""
        sock = client.socket()
        if isinstance(sock, ssl.SSLSocket):
            cert = sock.getpeercert()
            not_after = cert.get("notAfter") if cert else None
            if isinstance(not_after, str):
                self.broker_cert_not_after = float(ssl.cert_time_to_seconds(not_after))
            self.broker_ca_not_after = issuer_not_after(cert)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        self.connected.clear()
        if not self._stopping.is_set() and not (self.outages and self.outages[-1][1] is None):
            self.outages = [*self.outages[-9:], (datetime.now(UTC), None)]
        if not self._stopping.is_set():
            log.warning("disconnected from broker (%s); reconnecting", reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        topic = msg._topic.decode("utf-8", "replace")  # paho's .topic raises on bad UTF-8
        self.heard_at = arrived = time.monotonic()
        if msg.qos == 0 and topic.startswith(CANARY_PREFIX):
            return  # a canary (ours or another collector's): it has told us what it could
        now = datetime.now(UTC)
        raw = Received(topic, bytes(msg.payload), msg.mid, msg.qos, now,
                       self._connection, self._arrived)
        self._acks.arrived(self._arrived, arrived)
        self._arrived += 1
        try:
            got = self._decode(raw)
        except Exception as exc:  # decode never raises; if it ever did, the thread must live
            log.exception("decoding a message on %s failed", topic)
            got = DeadLetter(topic.replace("\x00", ""), f"refused: {type(exc).__name__}",
                             raw.payload, now)
        item = (raw, got)
        while not self._stopping.is_set():
            try:
                self.queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue  # blocks the network thread: the broker holds the rest for us


class AckOrder:
    """Releases committed messages in arrival order (by Received.index); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = 0
        self._held: dict[int, Received] = {}
        self._arrivals: deque[tuple[int, float]] = deque()  # (index, monotonic) unreleased

    def arrived(self, index: int, at: float) -> None:
        """Note when message `index` arrived, for the age of the oldest still unacknowledged."""
        with self._lock:
            self._arrivals.append((index, at))

    def oldest_wait(self, now: float) -> float:
        """Seconds the oldest unreleased message has waited; 0 when none waits."""
        with self._lock:
            return now - self._arrivals[0][1] if self._arrivals else 0.0

    def release(self, done: list[Received]) -> list[Received]:
        """Mark these committed; return every message now acknowledgeable, in order."""
        out: list[Received] = []
        with self._lock:
            for raw in done:
                self._held[raw.index] = raw
            while self._next in self._held:
                out.append(self._held.pop(self._next))
                self._next += 1
            while self._arrivals and self._arrivals[0][0] < self._next:
                self._arrivals.popleft()
        return out


def issuer_not_after(cert: Any) -> float | None:
    """notAfter of the trusted CA that issued ``cert``, as the default trust store holds it
    (SSL_CERT_FILE, as paho's tls_set loads it); None when it is not found there."""
    issuer = cert.get("issuer") if cert else None
    for ca in ssl.create_default_context().get_ca_certs():
        not_after = ca.get("notAfter")
        if ca.get("subject") == issuer and isinstance(not_after, str):
            return float(ssl.cert_time_to_seconds(not_after))
    return None


def _topic_level(text: str) -> str:
    """text usable as one topic level: no separators, wildcards or NUL."""
    return "".join("_" if ch in "/+#\x00" else ch for ch in text) or "collector"
