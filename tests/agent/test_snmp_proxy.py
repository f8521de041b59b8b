"""The running proxy through a real Mosquitto: one host per target, traps poll at once."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    Integer,
    NotificationType,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    send_notification,
)

from agent.cli import cmd_run
from agent.config import AgentConfig, load_config
from agent.proxy import Proxy, TargetReporter, spool_path
from agent.spool import Spool
from tests.agent.test_snmp_profile import (
    FAILED,
    HEALTHY,
    Simulator,
    free_udp_port,
    read_snmprec,
)
from tests.agent.test_snmp_profile import snmpsim as snmpsim  # the module's simulator
from tests.conftest import eventually


class Watcher:
    """Every message under hg/v1/#, with the time it arrived."""

    def __init__(self, url: str) -> None:
        """Subscribe before the proxy starts."""
        host, port = url.removeprefix("mqtt://").split(":")
        self.got: list[tuple[float, str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                                  protocol=mqtt.MQTTv5, client_id="test-watcher")
        self.client.on_message = self._on_message
        self.client.connect(host, int(port))
        self.client.subscribe("hg/v1/#", qos=1)
        self.client.loop_start()
        time.sleep(0.3)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.got.append((time.time(), msg.topic, json.loads(msg.payload)))

    def of(self, host: str, kind: str | None = None) -> list[dict[str, Any]]:
        """Payloads from ``host`` (of one kind), in arrival order."""
        with self.lock:
            return [p for _, _, p in self.got
                    if p["host"] == host and (kind is None or p["kind"] == kind)]

    def close(self) -> None:
        """Disconnect."""
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def watcher(mosquitto: str) -> Iterator[Watcher]:
    """A subscriber on the test broker."""
    w = Watcher(mosquitto)
    try:
        yield w
    finally:
        w.close()


def config(tmp_path: Path, url: str, sim: Simulator, targets: dict[str, str],
           interval_s: float, traps: str | None = None,
           extra: dict[str, str] | None = None) -> AgentConfig:
    """A proxy config: host -> community on the simulator (``extra``: host -> more keys)."""
    lines = [f"site: iad1\nhost: mgmt-01\nmqtt_url: {url}\n"
             f"spool_path: {tmp_path / 'spool' / 'spool.db'}\nproxy:\n"]
    if traps:
        lines.append(f"  traps: {traps}\n")
    lines.append("  targets:\n")
    for host, community in targets.items():
        lines.append(f"    - {{host: {host}, address: 127.0.0.1, port: {sim.port}, "
                     f"community: {community}, interval_s: {interval_s}"
                     f"{(extra or {}).get(host, '')}}}\n")
    path = tmp_path / "proxy.yaml"
    path.write_text("".join(lines))
    return load_config(path, env={})


@pytest.fixture
def run_proxy() -> Iterator[Callable[[AgentConfig], Callable[[], None]]]:
    """Start proxies on threads; each start returns its stop; all stop at the end."""
    running: list[tuple[threading.Event, threading.Thread]] = []

    def start(cfg: AgentConfig) -> Callable[[], None]:
        stop = threading.Event()
        thread = threading.Thread(target=Proxy(cfg, lambda: datetime.now(UTC)).run,
                                  args=(stop,), daemon=True)
        thread.start()
        running.append((stop, thread))

        def halt() -> None:
            stop.set()
            thread.join(timeout=20)
            assert not thread.is_alive()

        return halt

    yield start
    for stop, thread in running:
        stop.set()
        thread.join(timeout=20)


def send_trap(port: int) -> None:
    """A v2c trap from 127.0.0.1, as the enclosure sends when a supply fails."""

    async def send() -> None:
        engine = SnmpEngine()
        target = await UdpTransportTarget.create(("127.0.0.1", port))
        await send_notification(
            engine, CommunityData("public", mpModel=1), target, ContextData(), "trap",  # noqa: S508 - the enclosure sends v2c
            NotificationType(ObjectIdentity("1.3.6.1.4.1.232.0.22013")).add_varbinds(
                ObjectType(ObjectIdentity("1.3.6.1.4.1.232.22.2.5.1.1.1.17.2"), Integer(4))))
        engine.close_dispatcher()

    asyncio.run(send())


def parse(ts: str) -> datetime:
    """An RFC 3339 timestamp of a payload."""
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def test_a_trap_polls_its_target_at_once_and_the_event_leaves_within_10_s(
    snmpsim: Simulator, mosquitto: str, watcher: Watcher, tmp_path: Path,
    run_proxy: Callable[[AgentConfig], Callable[[], None]],
) -> None:
    trap_port = free_udp_port()
    # an hour between polls: only the trap can explain a second poll within the test
    cfg = config(tmp_path, mosquitto, snmpsim, {"c7000-a": "trap-a"}, 3600,
                 traps=f"127.0.0.1:{trap_port}")
    run_proxy(cfg)
    eventually(lambda: watcher.of("c7000-a", "telemetry"), 20, "the first poll's telemetry")
    assert watcher.of("c7000-a", "event") == []  # the recording is healthy
    snmpsim.replace("trap-a", FAILED)  # the supply fails on the device ...
    sent = datetime.now(UTC)
    send_trap(trap_port)  # ... and the enclosure says so (pysnmp may load MIBs first)
    sent_done = datetime.now(UTC)
    (event,) = eventually(lambda: [e for e in watcher.of("c7000-a", "event")
                                   if e["component"] == "psu:2"], 10, "the psu:2 event")
    with watcher.lock:
        arrived = next(t for t, _, p in watcher.got if p is event)
    latency = arrived - sent.timestamp()
    assert latency < 10.0
    assert event["failure"] == "psu_lost"
    detected = parse(event["detected_at"])
    sent_ms = sent.replace(microsecond=sent.microsecond // 1000 * 1000)  # payloads carry ms
    assert sent_ms <= detected <= datetime.fromtimestamp(arrived, UTC)
    # stamped when the trap came (the send ends by then), before the poll and the publish
    assert (detected - sent_done).total_seconds() < 2.0  # slack for a busy machine
    assert detected < parse(event["ts"])
    assert len(watcher.of("c7000-a", "telemetry")) == 2  # the trap's poll, no timer's
    print(f"trap sent to event at the subscriber: {latency:.3f} s; trap received to event "
          f"at the subscriber: {arrived - detected.timestamp():.3f} s")


def test_two_targets_publish_as_two_hosts_each_with_its_own_seq(
    snmpsim: Simulator, mosquitto: str, watcher: Watcher, tmp_path: Path,
    run_proxy: Callable[[AgentConfig], Callable[[], None]],
) -> None:
    # c7000-c was seen by an earlier run but answers nothing now (a community snmpsim does
    # not serve): it is reported, not silent, and its birth still lists its parts
    cfg = config(tmp_path, mosquitto, snmpsim, {"c7000-a": "healthy", "c7000-b": "failed",
                                                 "c7000-c": "nothing"}, 1,
                 extra={"c7000-c": ", timeout_s: 0.3, retries: 0"})
    earlier = Spool(spool_path(cfg, "c7000-c"), "c7000-c")
    TargetReporter(cfg.proxy.targets[2], earlier.draft_seq, lambda: datetime.now(UTC),
                   earlier).take(read_snmprec(HEALTHY))
    earlier.close()
    halt = run_proxy(cfg)
    for host in ("c7000-a", "c7000-b", "c7000-c"):
        eventually(lambda h=host: len(watcher.of(h, "telemetry")) >= 2, 20, f"{host} telemetry")
    (silent,) = watcher.of("c7000-c", "telemetry")[0]["components"]
    assert (silent["id"], silent["status"]) == ("bmc:snmp", "unknown")
    assert "no answer" in silent["detail"]
    assert watcher.of("c7000-c", "telemetry")[0]["readings"] == []  # no stale bmc.power_on
    halt()
    eventually(lambda: all(any(p.get("state") == "offline" for p in watcher.of(h, "state"))
                           for h in ("c7000-a", "c7000-b")), 10, "both offline states")
    first: dict[str, int] = {}
    for host in ("c7000-a", "c7000-b", "c7000-c"):
        msgs = watcher.of(host)
        assert {m["site"] for m in msgs} == {"iad1"}
        kinds = [m["kind"] for m in msgs]
        assert kinds.index("birth") < kinds.index("state") < kinds.index("telemetry")
        (birth,) = watcher.of(host, "birth")
        assert len([c for c in birth["components"] if c["kind"] == "psu"]) == 6
        seqs = [m["seq"] for m in msgs]
        # its own counter from 1 (the broker keeps each session's will, holding one seq);
        # arrival order is births, states and events before telemetry, not seq order
        assert len(seqs) == len(set(seqs))
        assert min(seqs) <= 2
        first[host] = max(seqs)
        assert spool_path(cfg, host).exists()
    failed = {e["component"] for e in watcher.of("c7000-b", "event")}
    assert failed == {"psu:2", "psu:redundancy"}
    assert watcher.of("c7000-a", "event") == []
    # the seq lives in each target's spool: a restarted proxy goes on from there
    halt = run_proxy(cfg)
    for host in ("c7000-a", "c7000-b"):
        eventually(lambda h=host: [m for m in watcher.of(h, "telemetry")
                                   if m["seq"] > first[h]], 20, f"{host} after restart")
    halt()
    for host in ("c7000-a", "c7000-b"):  # the restart's birth went out before any new poll
        assert all(len(b["components"]) > 6 for b in watcher.of(host, "birth"))


def test_a_taken_trap_address_is_a_clear_config_error(
    snmpsim: Simulator, mosquitto: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        cfg = config(tmp_path, mosquitto, snmpsim, {"c7000-a": "healthy"}, 60,
                     traps=f"127.0.0.1:{port}")
        assert cmd_run(cfg, stop=threading.Event()) == 2
    err = capsys.readouterr().err
    assert "key 'proxy.traps'" in err
    assert f"cannot receive traps on 127.0.0.1:{port}" in err
    assert "Traceback" not in err
