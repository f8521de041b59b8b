"""A deaf collector accuses no one: our own outage opens no incident; a real one still does.

Twelve live hosts in two racks, one telemetry a second (so host-down is confirmed after
3 s of silence), with last wills, through a Mosquitto with persistence that is stopped
and started again; then one rack really goes silent while the broker is up.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent import messages
from collector.liveness import Action
from collector.mqtt import SUBSCRIPTION
from collector.service import Collector as InProcess
from hourglass.config import load_config, mqtt_endpoint
from tests.collector.conftest import Broker
from tests.collector.live import Collector, Host, client, seed
from tests.conftest import eventually

# long, and mostly waiting on real components: scripts/test runs it in the second pytest,
# beside the property tests, so the two halves take about as long
pytestmark = pytest.mark.beside

SITE = "lab1"
RACKS = {"r1": [f"r1-{i:02d}" for i in range(6)], "r2": [f"r2-{i:02d}" for i in range(6)]}
INTERVAL_S = 1.0
GRACE_S = 3 * INTERVAL_S  # offline_grace_intervals: the silence that confirms host-down


def incidents(url: str) -> tuple[int, list[tuple[str, str, str]]]:
    """Host incidents, and facility incidents as (scope, scope id, cause)."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM incidents").fetchone()
        fac = conn.execute("SELECT scope, scope_id, cause FROM facility_incidents"
                           " ORDER BY id").fetchall()
    return int(row[0]) if row else 0, [tuple(f) for f in fac]


def offline(url: str) -> dict[str, int]:
    """Hosts offline, by reason."""
    with psycopg.connect(url) as conn:
        return {str(r): int(n) for r, n in conn.execute(
            "SELECT offline_reason, count(*) FROM host_state WHERE state = 'offline'"
            " GROUP BY 1").fetchall()}


def test_a_broker_outage_opens_nothing_and_a_rack_outage_still_does(pg_url: str,
                                                                    tmp_path: Path) -> None:
    broker = Broker(tmp_path)
    broker.start()
    seed(pg_url, SITE, RACKS)
    col = Collector(pg_url, broker.url)
    col.start()
    stop = threading.Event()
    hosts = [Host(h, SITE, broker.url, INTERVAL_S) for hs in RACKS.values() for h in hs]
    try:
        eventually(col.ready, 20, "the collector ready")
        for h in hosts:
            h.start(stop, wills=True)
        time.sleep(4 * INTERVAL_S)  # input flowed past resume_intervals: detection is live
        assert col.metric("hourglass_collector_detection_paused") == 0.0
        broker.stop()  # every host's will fires; the collector loses its input
        paused = eventually(lambda: col.metric("hourglass_collector_detection_paused") == 1.0,
                            10, "detection paused while the broker is down")
        assert paused
        assert (col.readyz() or (0, ""))[0] == 503
        assert "broker disconnected" in (col.readyz() or (0, ""))[1]
        time.sleep(6)  # one sweep pass (every 5 s) relabels the wills that came
        # Mosquitto publishes each host's will as it shuts down, some before our own
        # connection closes (stored at once), the rest queued for our session: every one
        # stored so far reads 'broker'
        wills = offline(pg_url)
        assert set(wills) <= {"broker"}, f"a will of the broker's shutdown read as {wills}"
        time.sleep(3 * GRACE_S - 6 + 1)  # three times the silence that confirms host-down
        broker.start()
        eventually(col.ready, 30, "the collector ready after the broker came back")
        time.sleep(2 * GRACE_S + 5)  # two sweeps past the hosts' own resume time
        assert incidents(pg_url) == (0, []), "our own outage opened an incident"

        for h in hosts[:6]:  # rack r1 loses power: its hosts stop talking, the broker is up
            h.silent.set()
        found = eventually(lambda: incidents(pg_url)[1], 30, "rack r1's facility incident")
        assert found == [("rack", "r1", "power")]
        time.sleep(5)  # another sweep: nothing more opens for r1's hosts or r2
        assert incidents(pg_url) == (0, [("rack", "r1", "power")])
    finally:
        stop.set()
        for h in hosts:
            h.close()
        col.stop()
        broker.stop()


def test_a_subscription_lost_behind_its_back_is_missed_and_restored(pg_url: str,
                                                                  tmp_path: Path) -> None:
    """Connected, session present, subscribed to nothing (what Mosquitto 2.0 leaves after a
    restart when the client does not subscribe again): silent, not ready, resubscribed."""
    broker = Broker(tmp_path)
    broker.start()
    seed(pg_url, SITE, {"r1": ["web-01"]})
    cfg = load_config(env={"HOURGLASS_DATABASE_URL": pg_url, "HOURGLASS_MQTT_URL": broker.url,
                           "HOURGLASS_COLLECTOR_HTTP_ADDR": "",
                           "HOURGLASS_COLLECTOR_CLIENT_ID": "hg-collector-deaf",
                           "HOURGLASS_COLLECTOR_CANARY_TIMEOUT_S": "4",
                           "HOURGLASS_COLLECTOR_BATCH_MS": "50"})
    col = InProcess(cfg)
    runner = threading.Thread(target=col.run, daemon=True)
    runner.start()
    stop = threading.Event()
    host = Host("web-01", SITE, broker.url, 0.5)
    try:
        eventually(lambda: col.verdict.ready, 20, "the in-process collector ready")
        host.start(stop)
        col.sub.client.unsubscribe(SUBSCRIPTION)  # the broker forgets us; we do not know
        verdict = eventually(lambda: not col.verdict.ready and col.verdict, 15,
                             "not ready once nothing is heard")
        assert any(r.startswith("nothing heard for") for r in verdict.reasons)
        eventually(lambda: col.sub.recoveries[Action.RESUBSCRIBE.value] >= 1, 15,
                   "a resubscribe")
        eventually(lambda: col.verdict.ready, 15, "ready again after resubscribing")
        connections = col.sub._connection
        col.sub.recover(Action.RECONNECT)  # the next step, had resubscribing not helped
        eventually(lambda: col.sub._connection > connections and col.verdict.ready, 15,
                   "reconnected, same session, ready")
        before = len(host.published)
        eventually(lambda: len(host.published) > before + 4, 10, "more telemetry published")
        with psycopg.connect(pg_url) as conn:
            newest = conn.execute("SELECT max(seq) FROM ingest_keys").fetchone()
        assert newest is not None
        assert newest[0] is not None
        assert newest[0] > before, "telemetry is stored again"
    finally:
        stop.set()
        host.close()
        col.stop.set()
        runner.join(timeout=15)
        broker.stop()


def test_mosquitto_forgets_shared_subscriptions_across_a_restart(tmp_path: Path) -> None:
    """Why the collector subscribes on every connect, session present or not: Mosquitto
    2.0 keeps the session and its queue on disk, not its shared subscriptions, and answers
    publishers 0x10 'no matching subscribers' until someone subscribes again."""
    broker = Broker(tmp_path)
    broker.start()
    host, port, _ = mqtt_endpoint(broker.url)
    got: list[str] = []
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 600
    sub = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="c1",
                      protocol=mqtt.MQTTv5)
    sub.on_message = lambda c, u, m: got.append(m.topic)
    sub.connect(host, port, clean_start=False, properties=props)
    sub.loop_start()
    pub = client(broker.url, "p1")
    codes: list[int] = []
    pub.on_publish = lambda c, u, mid, rc, p: codes.append(rc.value)
    try:
        sub.subscribe(SUBSCRIPTION, qos=1)
        time.sleep(0.5)
        body = messages.state("web-01", SITE, 1, datetime.now(UTC), True)
        pub.publish(messages.topic(SITE, "web-01", "state"), json.dumps(body), qos=1) \
            .wait_for_publish(5)
        eventually(lambda: got, 5, "delivery before the restart")
        broker.stop()
        broker.start()
        eventually(sub.is_connected, 20, "the subscriber back, session present")
        eventually(pub.is_connected, 20, "the publisher back")
        codes.clear()
        pub.publish(messages.topic(SITE, "web-01", "state"), json.dumps(body), qos=1) \
            .wait_for_publish(5)
        time.sleep(1)
        assert got == [messages.topic(SITE, "web-01", "state")], "nothing after the restart"
        assert codes == [0x10], "the broker told the publisher nobody was subscribed"
    finally:
        sub.disconnect()
        sub.loop_stop()
        pub.disconnect()
        pub.loop_stop()
        broker.stop()
