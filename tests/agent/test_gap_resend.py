"""A message the broker acknowledged and then lost is asked for again and stored.

The loss is the real one: Mosquitto 2.0 does not keep a shared subscription across its
restart, so until the collector subscribes again the broker acknowledges an agent's
messages to it (another subscriber takes them) and no collector ever gets them. Here the
collector is frozen (SIGSTOP) across the broker's restart, so that window is seconds long
and certain; a real agent daemon publishes through it.
"""

from __future__ import annotations

import signal
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg

from tests.agent.brokers import Broker
from tests.agent.conftest import smart_json
from tests.agent.test_nothing_lost import _WILL_LOG, agent_config, start_agent
from tests.collector.live import Collector, client, seed
from tests.conftest import eventually


class Bystander:
    """Another subscriber to every host's messages (a dashboard, a second consumer)."""

    def __init__(self, url: str) -> None:
        self.seen: list[str] = []
        self.lock = threading.Lock()
        self.c = client(url, "bystander")
        self.c.on_connect = lambda c, *_: c.subscribe("hg/v1/+/+/+", qos=1)
        self.c.on_message = self._got
        self.c.reconnect_delay_set(0.2, 0.5)
        self.c.loop_start()

    def _got(self, c: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.seen.append(msg.topic)

    def count(self) -> int:
        with self.lock:
            return len(self.seen)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def stored(url: str) -> set[int]:
    with psycopg.connect(url) as conn:
        return {int(r[0]) for r in conn.execute(
            "SELECT seq FROM ingest_keys WHERE host_id = 'web-01'")}


def test_seqs_lost_by_a_broker_restart_are_resent_and_stored(
    tmp_path: Path, pg_url: str, persistent_broker: Broker, replay_root: Callable[..., Path],
) -> None:
    seed(pg_url, "iad1", {"r1": ["web-01"]})
    root = replay_root({"sda": smart_json("sata-hdd-healthy-wdc-re4.json", serial_number="OK1")})
    col = Collector(pg_url, persistent_broker.url, HOURGLASS_COLLECTOR_GAP_GRACE_S="2")
    col.start()
    agent_log = tmp_path / "agent.log"
    agent = start_agent(agent_config(tmp_path, persistent_broker.url, root), agent_log)
    bystander = Bystander(persistent_broker.url)
    try:
        eventually(lambda: len(stored(pg_url)) >= 5, 30, "the first messages stored", 0.2)
        assert col.proc is not None
        col.proc.send_signal(signal.SIGSTOP)  # cannot subscribe again until SIGCONT
        persistent_broker.stop()
        persistent_broker.start()
        seen = bystander.count()
        eventually(lambda: bystander.count() >= seen + 4, 30,
                   "the agent's messages acknowledged while no collector is subscribed", 0.2)
        col.proc.send_signal(signal.SIGCONT)
        lost = eventually(lambda: _missing(pg_url, tmp_path, agent_log), 30,
                          "a gap in the stored seqs (the broker's loss)", 0.2) \
            if not _all_in(pg_url, tmp_path, agent_log) else set()
        assert lost, "the broker lost nothing: the test did not make the loss it is about"
        eventually(lambda: _all_in(pg_url, tmp_path, agent_log), 60,
                   f"seqs {sorted(lost)} resent by the agent and stored", 0.5)
        gaps = eventually(lambda: (g := _gaps(pg_url)) and all(r[2] == "filled" for r in g)
                          and g, 20, "the gaps recorded filled", 0.5)
        assert (col.metric('hourglass_collector_gap_scan_total{what="filled"}') or 0) >= 1
    finally:
        bystander.close()
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=20)
        col.stop()
    assert all(g[3] >= 1 for g in gaps), f"filled by a resend, not by chance: {gaps}"
    assert sum(g[1] - g[0] + 1 for g in gaps) >= len(lost)
    assert "sent again" in agent_log.read_text()


def _gaps(url: str) -> list[tuple[int, int, str, int, object]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT first_seq, last_seq, state, requests, closed_at - seen_at"
                            " FROM ingest_gaps WHERE host_id = 'web-01'").fetchall()


def _last(tmp_path: Path) -> int:
    spool = sqlite3.connect(tmp_path / "spool" / "spool.db")
    try:
        (last,) = spool.execute("SELECT last FROM seq WHERE host = 'web-01'").fetchone()
    finally:
        spool.close()
    return int(last)


def _missing(url: str, tmp_path: Path, log: Path) -> set[int]:
    """Seqs the agent numbered up to its latest stored one that are neither stored nor a will."""
    have = stored(url)
    wills = {int(m) for m in _WILL_LOG.findall(log.read_text())}
    return set(range(1, max(have) + 1)) - have - wills


def _all_in(url: str, tmp_path: Path, log: Path) -> bool:
    have = stored(url)
    wills = {int(m) for m in _WILL_LOG.findall(log.read_text())}
    return not (set(range(1, _last(tmp_path) + 1)) - have - wills)
