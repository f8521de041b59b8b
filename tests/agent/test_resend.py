"""The agent daemon obeys a resend command, and only a valid one for itself.

A real ``hourglass-agent run`` publishes through a private Mosquitto to a test
subscriber; the test then acts as the collector: it asks for seqs the broker already
acknowledged, and they come again byte for byte, not retained. Hostile commands on the
same topic first (garbage, another host, another site, a range too long, too big, an
unknown command) change nothing, and the agent keeps publishing.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.subscribeoptions import SubscribeOptions

from agent.commands import MAX_BYTES, MAX_RANGE, command_topic
from schemas.mqtt_contract import command_errors
from tests.agent.brokers import Broker
from tests.agent.conftest import smart_json
from tests.agent.test_nothing_lost import agent_config, start_agent
from tests.conftest import eventually

HOST, SITE = "web-01", "iad1"  # what agent_config names
RESEND = command_topic(SITE, HOST, "resend")


@dataclass(frozen=True)
class Got:
    """One message the subscriber received."""

    seq: int
    kind: str
    payload: bytes
    retain: bool


class Watcher:
    """Subscribes to everything the agent publishes, retain flags as published."""

    def __init__(self, port: int) -> None:
        self.got: list[Got] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                             protocol=mqtt.MQTTv5, client_id="test-watcher")
        self.c.on_connect = self._connected
        self.c.on_subscribe = lambda *_: self.subscribed.set()
        self.c.on_message = self._message
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        assert self.subscribed.wait(10), "the watcher's subscription"

    def _connected(self, c: mqtt.Client, *_: Any) -> None:
        # retainAsPublished: otherwise the broker clears the flag for a live subscriber and
        # a resend published retained could not be told from one that was not
        c.subscribe(f"hg/v1/{SITE}/{HOST}/+",
                    options=SubscribeOptions(qos=1, retainAsPublished=True))

    def _message(self, c: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        body = json.loads(msg.payload)
        with self.lock:
            self.got.append(Got(int(body["seq"]), str(body["kind"]), bytes(msg.payload),
                                bool(msg.retain)))

    def copies(self) -> dict[int, list[Got]]:
        """Every received message by seq, in arrival order."""
        out: dict[int, list[Got]] = {}
        with self.lock:
            for g in self.got:
                out.setdefault(g.seq, []).append(g)
        return out

    def newest(self) -> int:
        """The highest seq received so far (0 before any)."""
        with self.lock:
            return max((g.seq for g in self.got), default=0)

    def command(self, topic: str, payload: bytes) -> None:
        """Publish one command at QoS 1, as the collector does, and wait for its PUBACK."""
        self.c.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path / "broker")
    b.start()
    yield b
    b.stop()


def command(first: int, last: int, **changes: Any) -> bytes:
    """A resend command as schemas/commands.py builds it, with fields replaced."""
    body = {"v": 1, "kind": "resend", "host": HOST, "site": SITE, "first_seq": first,
            "last_seq": last, "gap": 99,
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            **changes}
    return json.dumps(body).encode()


def acked(spool: Path) -> set[int]:
    """The seqs the broker acknowledged that the agent keeps for a resend."""
    if not spool.exists():
        return set()  # the agent has not opened it yet
    db = sqlite3.connect(spool, timeout=5)  # reads only; WAL lets the agent write meanwhile
    try:
        return {int(r[0]) for r in db.execute(
            "SELECT seq FROM outbox WHERE host = ? AND acked IS NOT NULL AND seq IS NOT NULL",
            (HOST,))}
    except sqlite3.OperationalError:
        return set()  # the file exists, its tables not yet: the agent is creating them
    finally:
        db.close()


def a_run(seqs: set[int], received: dict[int, list[Got]]) -> tuple[int, int] | None:
    """The first run of at least four consecutive seqs, each acked and received once,
    starting at the birth (it and the state after it were published retained)."""
    births = sorted(s for s, g in received.items() if g[0].kind == "birth")
    for first in births:
        last = first
        while last + 1 in seqs and last + 1 in received:
            last += 1
        if first in seqs and last - first >= 3:
            return first, last
    return None


def test_acked_seqs_come_again_on_a_valid_command_and_only_on_one(
    tmp_path: Path, broker: Broker, replay_root: Callable[..., Path],
) -> None:
    root = replay_root({"sda": smart_json("sata-hdd-healthy-wdc-re4.json", serial_number="OK1")})
    spool = tmp_path / "spool" / "spool.db"
    watcher = Watcher(broker.port)  # subscribed first: every PUBACK is a plain success
    log = tmp_path / "agent.log"
    agent = start_agent(agent_config(tmp_path, broker.url, root), log)
    try:
        first, last = eventually(lambda: a_run(acked(spool), watcher.copies()), 20,
                                 "birth, state and two more acknowledged and received", 0.2)
        originals = {s: watcher.copies()[s][0] for s in range(first, last + 1)}
        assert originals[first].kind == "birth"
        assert originals[first].retain, "the birth went out retained (the flag reaches us)"

        hostile = [
            (RESEND, b"\x00{not json"),
            (RESEND, command(1, last, host="web-02")),
            (RESEND, command(1, last, site="ams1")),
            (RESEND, command(1, MAX_RANGE + 1)),  # 10,001 seqs: one more than allowed
            (RESEND, command(first, last, first_seq=True)),
            (RESEND, command(first, last, v=2)),
            (RESEND, command(first, last)[:-1] + b" " * MAX_BYTES + b"}"),
            (command_topic(SITE, HOST, "reboot"), command(1, last)),
        ]
        before = watcher.newest()
        for topic, payload in hostile:
            watcher.command(topic, payload)
        good = command(first, last)
        assert command_errors("resend", json.loads(good)) == []
        watcher.command(RESEND, good)  # the broker delivers in order: after every hostile one

        eventually(lambda: all(len(watcher.copies().get(s, [])) == 2
                               for s in range(first, last + 1)), 10,
                   f"seqs {first}-{last} a second time", 0.1)
        eventually(lambda: watcher.newest() >= before + 3, 10,
                   "the agent publishing on after the commands", 0.2)
        assert agent.poll() is None
    finally:
        agent.send_signal(signal.SIGTERM)
        rc = agent.wait(timeout=20)
        watcher.close()
    assert rc == 0

    copies = watcher.copies()
    doubled = {s: len(got) for s, got in copies.items() if len(got) > 1}
    assert doubled == dict.fromkeys(range(first, last + 1), 2), "only the asked-for, once"
    for seq in doubled:
        again = copies[seq][1]
        assert again.payload == originals[seq].payload
        assert not again.retain, f"seq {seq} resent retained"
    text = log.read_text()
    assert "refused a command (not JSON" in text
    obeyed = [line for line in text.splitlines() if "collector asked for seqs" in line]
    assert len(obeyed) == 1
    assert (f"seqs {first}-{last} again (gap 99): {last - first + 1} sent again, "
            "0 still waiting, 0 not in the spool") in obeyed[0]
