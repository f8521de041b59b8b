"""Coverage through the whole system: an agent's birth from a replay root with a disk that
smartctl does not answer for, over MQTT to the collector, then named by /metrics, the API
/ops reads, and `hourglass doctor`."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from dispatcher.store import tokens
from schemas.states import Role
from tests.agent.conftest import smart_json
from tests.conftest import eventually
from tests.ops.system import System
from tests.ops.test_doctor import doctor, states

SDA = "sys/block/sda/device"


def agent_birth(tmp_path: Path, root: Path, seq: int) -> dict[str, Any]:
    """`hourglass-agent once` on a replay root as host web-02: its birth, renumbered."""
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(f"site: iad1\nhost: web-02\nspool_path: {tmp_path / 'spool.db'}\n")
    done = subprocess.run([sys.executable, "-m", "agent", "once", "--config", str(cfg),
                           "--root", str(root)], capture_output=True, text=True, timeout=60,
                          check=True)
    birth: dict[str, Any] = json.loads(done.stdout.splitlines()[0])["payload"]
    birth["seq"] = seq  # `once` numbers from 1; a daemon's seq only grows
    return birth


def publish(url: str, body: dict[str, Any]) -> None:
    """One message at QoS 1, as the agent sends it."""
    host, port = url.removeprefix("mqtt://").split(":")
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5,
                    client_id="ops-coverage")
    c.connect(host, int(port))
    c.loop_start()
    c.publish(f"hg/v1/iad1/web-02/{body['kind']}", json.dumps(body), qos=1).wait_for_publish(5)
    c.loop_stop()
    c.disconnect()


@pytest.fixture
def short_host(system: System, tmp_path: Path) -> Iterator[str]:
    """web-02 watched by smartctl, then its smartctl gone: its coverage is short."""
    watched, blind = tmp_path / "watched", tmp_path / "blind"
    for root in (watched, blind):
        (root / SDA).mkdir(parents=True)
    (watched / "cmd" / "smartctl").mkdir(parents=True)
    (watched / "cmd" / "smartctl" / "sda.json").write_text(json.dumps(
        smart_json("sata-hdd-healthy-hgst-he10.json", serial_number="HGST1")))
    publish(system.mqtt_url, agent_birth(tmp_path, watched, 100))
    with psycopg.connect(system.pg_url, autocommit=True) as conn:
        def status() -> object:
            row = conn.execute("SELECT status FROM probe_coverage WHERE host_id = 'web-02'"
                               " AND probe = 'smart'").fetchone()
            return row[0] if row else None
        eventually(lambda: status() == "working", 15, "web-02's smart coverage working")
        publish(system.mqtt_url, agent_birth(tmp_path, blind, 101))
        eventually(lambda: status() == "tool_missing", 15, "web-02's smart tool missing")
        yield "web-02"
        conn.execute("DELETE FROM probe_coverage WHERE host_id = 'web-02'")


def test_short_coverage_is_stored_and_named_everywhere(system: System, short_host: str) -> None:
    with psycopg.connect(system.pg_url) as conn:
        parts = conn.execute("SELECT id, attrs->'coverage'->>'status' FROM components"
                             " WHERE host_id = 'web-02' AND birth_seq = 101").fetchall()
        missing = conn.execute("SELECT count(*) FROM incidents WHERE host_id = 'web-02'"
                               " AND failure = 'disk_missing'").fetchone()
        token = tokens.create(conn, Role.ADMIN, None, None)
    assert parts == [("disk:sda", "tool_missing")]  # the disk stays, unwatched, saying why
    assert missing == (0,)  # smartctl gone proves no disk gone
    metrics = httpx.get(system.dispatcher_url + "/metrics").text
    assert 'hourglass_hosts_coverage_short{probe="smart",status="tool_missing"} 1.0' in metrics
    ingest = httpx.get(system.dispatcher_url + "/api/v1/ingest",
                       headers={"Authorization": f"Bearer {token}"}).json()
    assert ingest["coverage"] == [{
        "probe": "smart", "status": "tool_missing", "hosts": 1, "sample": ["web-02"],
        "sentence": "no disk health on 1 host: smartctl missing (install smartmontools)"}]
    code, lines = doctor({"HOURGLASS_DATABASE_URL": system.pg_url,
                          "HOURGLASS_MQTT_URL": system.mqtt_url},
                         "--collector-url", system.collector_url,
                         "--dispatcher-url", system.dispatcher_url)
    assert states(lines)["coverage smart"] == "FAIL"
    assert ("no disk health on 1 host: smartctl missing (install smartmontools): web-02"
            in "\n".join(lines))
    assert code == 1
