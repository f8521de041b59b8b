"""The only module that touches paho: MQTT 5 connection, last will, spool drain, backoff.

Single-threaded: the agent's loop calls ``step()``, which connects when it is time,
runs paho's network loop for a moment and publishes spooled messages. A spool row is
deleted only when the broker's PUBACK for it arrives, so a message survives any crash
or disconnect and is published again (same seq: the collector deduplicates).
"""

from __future__ import annotations

import logging
import random
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from agent import commands
from agent.config import AgentConfig
from agent.spool import Spool

log = logging.getLogger(__name__)

#: Backoff between connection attempts: doubles from 1 s up to 60 s, with jitter so a
#: fleet that lost its broker does not come back all in the same second.
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 60.0
#: Messages published but not yet acknowledged; paho's own default window is 20.
WINDOW = 20
#: PUBACK reason codes worth retrying (unspecified, implementation specific, packet id in
#: use, quota exceeded); any other failure (not authorized, bad topic) never succeeds.
_RETRYABLE = {0x80, 0x83, 0x91, 0x97}
#: PUBACK "No matching subscribers": the broker took the message but nobody will get it
#: (no collector subscribed yet; Mosquitto 2.0 does not restore a collector's shared
#: subscription after a restart, so this is normal for a moment after a broker restart).
#: The row stays in the spool and the drain holds back before sending again.
NO_SUBSCRIBERS = 0x10
#: Hold-back after a deferred PUBACK: doubles from 1 s, capped at 10 s so that a returning
#: collector gets the backlog (and a new event) within 10 s.
HOLD_BASE_S = 1.0
HOLD_CAP_S = 10.0
#: How long a TCP connect may take before the attempt counts as failed.
CONNECT_TIMEOUT_S = 10.0
#: A refused command is logged at most this often (the rest are counted).
COMMAND_LOG_S = 60.0


@dataclass(frozen=True)
class Will:
    """The last will of one connection: the broker publishes it if the agent vanishes."""

    topic: str
    payload: bytes
    seq: int | None = None  # the seq reserved for it, which birth and online name


def backoff_delay(attempt: int, rng: random.Random, cap_s: float = BACKOFF_CAP_S) -> float:
    """Seconds to wait before connection attempt ``attempt`` (0 = first retry)."""
    ceiling = min(cap_s, BACKOFF_BASE_S * float(2 ** min(attempt, 16)))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


class TokenBucket:
    """At most ``rate`` per second on average, with bursts of up to one second's worth."""

    def __init__(self, rate: float, monotonic: Callable[[], float]) -> None:
        """A full bucket."""
        self.rate, self.monotonic = rate, monotonic
        self.capacity = max(1.0, rate)
        self.tokens, self._at = self.capacity, monotonic()

    def take(self) -> bool:
        """Spend one token if there is one."""
        now = self.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self._at) * self.rate)
        self._at = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class Publisher:
    """Keeps one MQTT 5 connection and drains the spool through it."""

    def __init__(
        self,
        cfg: AgentConfig,
        spool: Spool,
        *,
        will_for: Callable[[str], Will],
        on_session: Callable[[str], None],
        rng: random.Random | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        v5: bool = True,
    ) -> None:
        """``will_for(session)`` builds the will; ``on_session(session)`` spools birth+online.

        ``v5=False`` speaks MQTT 3.1.1 (the demo's in-process broker knows no other): no
        reason codes, so a PUBACK is an acknowledgement and nothing more."""
        self.cfg, self.spool = cfg, spool
        self.will_for, self.on_session = will_for, on_session
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self.monotonic = monotonic
        self.v5 = v5
        self.client: mqtt.Client | None = None
        self.connected = False
        self.session: str | None = None
        self._attempt = 0
        self._next_attempt = 0.0
        self._inflight: dict[int, int] = {}  # paho mid -> spool row id
        self._lost = False
        self._will: tuple[str, Will] | None = None  # (session, will) not yet used by a CONNACK
        self._telemetry = TokenBucket(cfg.telemetry_drain_per_s, monotonic)
        self._hold_until = 0.0  # no publishing before this (monotonic), after a deferral
        self._holds = 0
        #: resend commands: obeyed, refused, seqs sent again
        self.commands = {"resends": 0, "refused": 0, "resent": 0}
        self._command_logged = -COMMAND_LOG_S

    # -- connection ----------------------------------------------------------------

    def _new_client(self, will: Will) -> mqtt.Client:
        """A fresh paho client with this connection's will, credentials and TLS."""
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"hg-agent-{self.cfg.host}",
            protocol=mqtt.MQTTv5 if self.v5 else mqtt.MQTTv311,
        )
        client.connect_timeout = CONNECT_TIMEOUT_S
        client.will_set(will.topic, will.payload, qos=1, retain=True)
        if self.cfg.username is not None:
            client.username_pw_set(self.cfg.username, self.cfg.password)
        if self.cfg.broker[2]:
            tls = self.cfg.tls
            client.tls_set(
                ca_certs=tls.ca_file,
                certfile=tls.cert_file,
                keyfile=tls.key_file,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def _connect(self) -> None:
        """One connection attempt; failures schedule the next with backoff."""
        host, port, _ = self.cfg.broker
        if self._will is None:
            # A will (and the seq it reserves) is kept across failed attempts, so an outage
            # does not burn a seq per retry; a connection the broker accepted uses it up.
            session = uuid.uuid4().hex[:16]
            self._will = (session, self.will_for(session))
        session, will = self._will
        client = self._new_client(will)
        try:
            if self.v5:
                client.connect(host, port, keepalive=self.cfg.keepalive_s, clean_start=True)
            else:
                client.connect(host, port, keepalive=self.cfg.keepalive_s)  # clean session
        except (OSError, ValueError) as exc:
            log.warning("cannot connect to %s:%s: %s", host, port, exc)
            self._schedule_retry()
            return
        self.client, self.session, self._lost = client, session, False

    def _schedule_retry(self) -> None:
        """Wait a jittered, growing delay before the next attempt."""
        delay = backoff_delay(self._attempt, self.rng, self.cfg.backoff_max_s)
        self._attempt += 1
        self._next_attempt = self.monotonic() + delay
        log.info("next connection attempt in %.1f s", delay)

    def _drop(self) -> None:
        """Forget a lost connection; unacknowledged rows stay in the spool."""
        if self.client is not None:
            self.client.disconnect()
        self.client, self.connected = None, False
        self._inflight.clear()
        self._schedule_retry()

    # -- paho callbacks (run inside client.loop(), on this thread) ---------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        """CONNACK: on success spool birth and online, which drain first."""
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            self._lost = True
            return
        log.info("connected to the broker (session %s)", self.session)
        self.connected, self._attempt, self._will = True, 0, None
        # the collector's resend commands; a clean start drops them while we are away,
        # and the collector asks again
        client.subscribe(commands.subscription(self.cfg.site, self.cfg.host), qos=1)
        self.on_session(self.session or "")

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        """The connection ended; step() reconnects later."""
        log.warning("disconnected from the broker: %s", reason)
        self._lost = True

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode, properties: Any
    ) -> None:
        """PUBACK: the broker has the message, so the spool may forget it."""
        row = self._inflight.pop(mid, None)
        if row is None:
            return
        if reason.value == NO_SUBSCRIBERS or reason.value in _RETRYABLE:
            self._hold(str(reason))
            return
        if reason.is_failure:
            log.error("broker rejected a message for good (%s); dropping it", reason)
            self.spool.delete(row)
            return
        self._holds = 0
        self.spool.ack(row)  # kept a while: the collector may ask for it again

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        """A command for this host: a resend puts acknowledged messages back in the queue."""
        want = commands.command_topic(self.cfg.site, self.cfg.host, "resend")
        got = (commands.parse_resend(bytes(msg.payload), self.cfg.host, self.cfg.site)
               if msg.topic == want else f"unknown command topic {msg.topic[:200]!r}")
        if isinstance(got, str):
            self.commands["refused"] += 1
            now = self.monotonic()
            if now - self._command_logged >= COMMAND_LOG_S:
                self._command_logged = now
                log.warning("refused a command (%s); %d refused so far",
                            got, self.commands["refused"])
            return
        done = self.spool.requeue(got.first_seq, got.last_seq)
        self.commands["resends"] += 1
        self.commands["resent"] += done.again
        log.info("collector asked for seqs %d-%d again (gap %s): %d sent again, %d still "
                 "waiting, %d not in the spool", got.first_seq, got.last_seq, got.gap,
                 done.again, done.waiting, done.missing)

    def _hold(self, why: str) -> None:
        """Keep a deferred row and pause the drain for a growing while (once per pause)."""
        now = self.monotonic()
        if now < self._hold_until:
            return
        delay = min(HOLD_CAP_S, HOLD_BASE_S * 2.0 ** min(self._holds, 16))
        self._holds += 1
        self._hold_until = now + delay
        log.warning("broker did not deliver (%s); keeping the spool, retry in %.0f s", why, delay)

    # -- the loop ------------------------------------------------------------------

    def step(self, timeout: float = 0.2) -> None:
        """Connect if due, move network traffic for up to ``timeout`` s, publish spooled rows."""
        if self.client is None:
            if self.monotonic() >= self._next_attempt:
                self._connect()
            if self.client is None:
                time.sleep(max(0.0, min(timeout, self._next_attempt - self.monotonic())))
                return
        client = self.client
        if self.connected:
            self._drain(client)
        rc = client.loop(timeout=timeout)
        if rc != mqtt.MQTT_ERR_SUCCESS or self._lost:
            self._drop()
        elif self.connected:
            self._drain(client)

    def _drain(self, client: mqtt.Client) -> None:
        """Publish spooled rows not in flight: events before telemetry, telemetry rate-bound."""
        room = WINDOW - len(self._inflight)
        if room <= 0 or self.monotonic() < self._hold_until:
            return
        if self.spool.waiting() <= len(self._inflight):
            return  # everything stored is already in flight: no need to ask SQLite
        busy = set(self._inflight.values())
        for item in self.spool.pending(WINDOW + len(busy)):
            if room <= 0:
                break
            if item.id in busy:
                continue
            if item.kind == "telemetry" and not self._telemetry.take():
                break  # only telemetry follows in drain order
            info = client.publish(item.topic, item.payload, qos=item.qos, retain=item.retain)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                break
            self._inflight[info.mid] = item.id
            room -= 1

    def idle(self) -> bool:
        """Whether everything spooled has been acknowledged."""
        return not self._inflight and self.spool.waiting() == 0

    def flush(self, timeout_s: float) -> bool:
        """Keep stepping until the spool is empty or ``timeout_s`` passes; True if empty."""
        deadline = self.monotonic() + timeout_s
        while self.monotonic() < deadline:
            if self.connected and self.idle():
                return True
            self.step(0.1)
        return self.idle()

    def close(self) -> None:
        """Disconnect cleanly (the broker then does not publish the will)."""
        if self.client is not None:
            self.client.disconnect()
            self.client.loop(timeout=0.5)
        self.client, self.connected = None, False
