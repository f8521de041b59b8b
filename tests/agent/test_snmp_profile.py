"""Proxy mode against a real SNMP agent: snmpsim serving a real Onboard Administrator walk.

The recording (tests/fixtures/snmp/hp-c7000-oa.snmprec) is an HP BladeSystem c7000's
Onboard Administrator, from the snmpsim-data package; the failing variant changes only
the values listed in tests/fixtures/README.md.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.cli import main
from agent.config import ProxyTarget, load_config
from agent.core import Outgoing
from agent.profiles import PROFILES
from agent.proxy import collect_once
from agent.settings import ConfigError
from agent.snmp import Scalar, SnmpError
from schemas.mqtt_contract import errors

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "snmp"
HEALTHY = FIXTURES / "hp-c7000-oa.snmprec"
FAILED = FIXTURES / "hp-c7000-oa-psu2-failed.snmprec"
PDU = FIXTURES / "apc-ap7902b.snmprec"
PDU_OVERLOAD = FIXTURES / "apc-ap7902b-overload.snmprec"
#: The SNMPv3 user snmpsim accepts (keys of at least 8 characters, RFC 3414).
V3 = {"user": "hg-proxy", "auth_key": "auth-secret-1", "priv_key": "priv-secret-1"}


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing is bound to right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Simulator:
    """snmpsim-command-responder on 127.0.0.1: one community (data file) per recording."""

    def __init__(self, workdir: Path) -> None:
        """Copy the recordings in, one community (data file name) each."""
        self.data = workdir / "data"
        self.data.mkdir(parents=True)
        for community, src in (("healthy", HEALTHY), ("failed", FAILED), ("trap-a", HEALTHY),
                               ("pdu", PDU), ("pdu-overload", PDU_OVERLOAD)):
            shutil.copyfile(src, self.data / f"{community}.snmprec")
        self.port = free_udp_port()
        self.log = workdir / "snmpsim.log"
        binary = Path(sys.executable).with_name("snmpsim-command-responder")
        # snmpsim refuses to run as root unless told (it would drop to a user we lack)
        env = {**os.environ, "SNMPSIM_ALLOW_ROOT": "true"}
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [str(binary), f"--data-dir={self.data}", f"--cache-dir={workdir / 'cache'}",
                 f"--agent-udpv4-endpoint=127.0.0.1:{self.port}",
                 f"--v3-user={V3['user']}", f"--v3-auth-key={V3['auth_key']}",
                 "--v3-auth-proto=SHA", f"--v3-priv-key={V3['priv_key']}",
                 "--v3-priv-proto=AES"],
                stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 20  # it indexes the recordings before it listens
        while "Listening at" not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"snmpsim did not start: {self.log.read_text(errors='replace')}")
            time.sleep(0.1)

    def replace(self, community: str, src: Path) -> None:
        """Serve ``src`` under ``community`` from now on (snmpsim re-reads a newer file)."""
        path = self.data / f"{community}.snmprec"
        shutil.copyfile(src, path)
        later = time.time() + 5  # snmpsim compares whole-second mtimes
        os.utime(path, (later, later))

    def stop(self) -> None:
        """Stop it by its pid."""
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def snmpsim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """One simulator for the module's tests."""
    sim = Simulator(tmp_path_factory.mktemp("snmpsim"))
    try:
        yield sim
    finally:
        sim.stop()


def target(sim: Simulator, community: str | None, host: str = "c7000-a", **kw: Any
           ) -> ProxyTarget:
    """A v2c target on the simulator (2 s, one retry: the machine may be busy)."""
    base: dict[str, Any] = {"host": host, "site": "iad1", "address": "127.0.0.1",
                            "port": sim.port, "community": community, "timeout_s": 2.0,
                            "retries": 1}
    return ProxyTarget(**{**base, **kw})


def now() -> datetime:
    """The test clock."""
    return datetime.now(UTC)


def once(t: ProxyTarget) -> list[Outgoing]:
    """Poll one target once; fail the test with the error when the poll failed."""
    ((_, got),) = collect_once([t], now)
    if isinstance(got, SnmpError):
        pytest.fail(str(got))
    return got


def by_kind(msgs: list[Outgoing], kind: str) -> list[dict[str, Any]]:
    """Payloads of one kind."""
    return [m.payload for m in msgs if m.kind == kind]


def test_healthy_recording_gives_ok_states_readings_and_inventory(snmpsim: Simulator) -> None:
    msgs = once(target(snmpsim, "healthy"))
    for m in msgs:
        assert errors(m.kind, m.payload) == [], m.payload
        assert m.topic == f"hg/v1/iad1/c7000-a/{m.kind}"
    assert [m.kind for m in msgs] == ["birth", "state", "telemetry"]  # no event: all ok
    (birth,) = by_kind(msgs, "birth")
    assert birth["chassis"] == {"vendor": "HP", "model": "BladeSystem c7000 Enclosure G2",
                                "serial": "6CU250TV5C"}
    psus = {c["id"]: c for c in birth["components"] if c["kind"] == "psu"}
    assert len(psus) == 6
    assert psus["psu:1"]["serial"] == "5AGUD0AHL3W1L7"
    assert psus["psu:2"]["model"] == "499253-B21"
    assert len([c for c in birth["components"] if c["kind"] == "fan"]) == 10
    (tele,) = by_kind(msgs, "telemetry")
    assert {c["status"] for c in tele["components"]} == {"ok"}
    readings = {(r["component"], r["metric"]): r["value"] for r in tele["readings"]}
    assert readings[("psu:2", "psu.output_watts")] == 332.0
    assert readings[("bmc:power", "bmc.power_watts")] == 6 * 332.0
    assert readings[("bmc:power", "bmc.power_on")] == 1.0
    assert readings[("temp:1", "temp.celsius")] == 23.0
    assert readings[("temp:1", "temp.crit_celsius")] == 42.0


def test_failing_variant_fails_psu_and_redundancy_with_events_on_first_poll(
    snmpsim: Simulator,
) -> None:
    msgs = once(target(snmpsim, "failed"))
    for m in msgs:
        assert errors(m.kind, m.payload) == [], m.payload
    events = {e["component"]: e for e in by_kind(msgs, "event")}
    assert set(events) == {"psu:2", "psu:redundancy"}  # first poll: an event per failed part
    psu = events["psu:2"]
    assert (psu["status"], psu["failure"], psu["component_kind"]) == ("failed", "psu_lost", "psu")
    assert psu["serial"] == "5AGUD0AHL3R12U"
    assert "linePowerLoss" in psu["evidence"]["detail"]
    assert psu["evidence"]["snmp"]["cpqRackPowerSupplyCondition"] == 4
    assert events["psu:redundancy"]["failure"] == "psu_redundancy_lost"
    (tele,) = by_kind(msgs, "telemetry")
    states = {c["id"]: c for c in tele["components"]}
    assert (states["fan:4"]["status"], states["fan:4"]["failure"]) == ("warning", "bmc_warning")
    assert (states["bmc:power"]["status"], states["bmc:power"]["failure"]) == (
        "warning", "bmc_warning")
    assert states["psu:1"]["status"] == "ok"
    readings = {(r["component"], r["metric"]): r["value"] for r in tele["readings"]}
    assert readings[("psu:2", "psu.output_watts")] == 0.0
    assert readings[("bmc:power", "bmc.power_on")] == 1.0  # five supplies still deliver


def test_pdu_recording_gives_phase_readings_and_overload_is_critical(
    snmpsim: Simulator,
) -> None:
    healthy = once(target(snmpsim, "pdu", host="pdu-r01", profile="apc-rpdu2"))
    (birth,) = by_kind(healthy, "birth")
    assert birth["chassis"] == {"vendor": "APC", "model": "AP7902B", "serial": "5A1551F39430"}
    (tele,) = by_kind(healthy, "telemetry")
    readings = {(r["component"], r["metric"]): r["value"] for r in tele["readings"]}
    assert readings[("chassis:phase1", "pdu.phase_amps")] == 1.6
    assert readings[("chassis:phase1", "pdu.phase_overload_amps")] == 24.0
    assert {c["status"] for c in tele["components"]} == {"ok"}
    assert by_kind(healthy, "event") == []
    overload = once(target(snmpsim, "pdu-overload", host="pdu-r01", profile="apc-rpdu2"))
    for m in overload:
        assert errors(m.kind, m.payload) == [], m.payload
    (event,) = by_kind(overload, "event")
    assert (event["component"], event["status"], event["failure"]) == (
        "chassis:phase1", "failed", "bmc_critical")
    assert "overload" in event["evidence"]["detail"]


def test_snmpv3_auth_and_privacy_work(snmpsim: Simulator) -> None:
    t = target(snmpsim, None, version="v3", user=V3["user"], auth_protocol="sha",
               auth_key=V3["auth_key"], priv_protocol="aes", priv_key=V3["priv_key"],
               context="healthy")
    msgs = once(t)
    (tele,) = by_kind(msgs, "telemetry")
    assert len([c for c in tele["components"] if c["kind"] == "psu"]) == 7  # 6 + redundancy


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"community": "wrong"}, "no answer"),
        ({"version": "v3", "user": V3["user"], "auth_protocol": "sha",
          "auth_key": "not-the-key", "priv_protocol": "aes", "priv_key": V3["priv_key"],
          "context": "healthy"}, "authentication failed"),
        ({"version": "v3", "user": V3["user"], "auth_protocol": "sha",
          "auth_key": V3["auth_key"], "priv_protocol": "aes", "priv_key": "not-the-key",
          "context": "healthy"}, "privacy failed"),
        ({"port": 9}, "no answer"),  # nothing listens on the discard port
    ],
)
def test_wrong_credentials_give_a_clear_error_not_a_crash(
    snmpsim: Simulator, changes: dict[str, Any], says: str
) -> None:
    kw = dict(changes)
    t = target(snmpsim, kw.pop("community", "healthy"), timeout_s=1.0, retries=0, **kw)
    ((_, got),) = collect_once([t], now)
    assert isinstance(got, SnmpError)
    assert says in str(got)
    assert f"127.0.0.1:{t.port}" in str(got)


def test_once_prints_good_targets_and_names_the_bad_one(
    snmpsim: Simulator, tmp_path: Path
) -> None:
    cfg = tmp_path / "proxy.yaml"
    cfg.write_text(
        "site: iad1\nhost: mgmt-01\nproxy:\n  targets:\n"
        f"    - {{host: c7000-a, address: 127.0.0.1, port: {snmpsim.port}, community: healthy}}\n"
        f"    - {{host: c7000-b, address: 127.0.0.1, port: {snmpsim.port}, community: nope,"
        " timeout_s: 0.5, retries: 0}\n")
    out = subprocess.run([Path(sys.executable).with_name("hourglass-agent"), "once",
                          "--config", str(cfg)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    topics = [line.split('"topic": "')[1].split('"')[0] for line in out.stdout.splitlines()]
    assert topics == ["hg/v1/iad1/c7000-a/birth", "hg/v1/iad1/c7000-a/state",
                      "hg/v1/iad1/c7000-a/telemetry"]
    assert "target c7000-b: SNMP v2c to 127.0.0.1" in out.stderr
    assert "Traceback" not in out.stderr


GOOD = "    - {host: c7000-a, address: 10.0.0.5, community: public}\n"


@pytest.mark.parametrize(
    ("proxy", "key", "says"),
    [
        ("  targets:\n    - {host: c7000-a, address: 10.0.0.5, version: v1, community: x}\n",
         "proxy.targets[0].version", "must be v2c or v3"),
        ("  targets:\n    - {host: c7000-a, address: 10.0.0.5}\n",
         "proxy.targets[0].community", "needs a community"),
        ("  targets:\n" + GOOD + "    - {host: c7000-b, address: 10.0.0.6, version: v3,"
         " user: u, auth_key: short}\n", "proxy.targets[1].auth_key", "at least 8"),
        ("  targets:\n    - {host: c7000-a, address: 10.0.0.5, community: x, profile: idrac}\n",
         "proxy.targets[0].profile", "unknown profile"),
        ("  targets:\n    - {host: c7000-a, address: 10.0.0.5, community: x, colour: red}\n",
         "proxy.targets[0].colour", "unknown key"),
        ("  targets:\n" + GOOD + GOOD, "proxy.targets[1].host", "listed twice"),
        ("  targets:\n    - {host: 'bad host', address: 10.0.0.5, community: x}\n",
         "proxy.targets[0].host", "topic level"),
        ("  targets:\n    - {host: c7000-a, address: 10.0.0.5, community: x, port: 70000}\n",
         "proxy.targets[0].port", "UDP port"),
        ("  targets: c7000-a\n", "proxy.targets", "a list"),
        ("  traps: nowhere\n  targets:\n" + GOOD, "proxy.traps", "host:port"),
    ],
)
def test_a_bad_proxy_config_names_the_file_and_key(
    tmp_path: Path, proxy: str, key: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(f"site: iad1\nproxy:\n{proxy}")
    with pytest.raises(ConfigError) as err:
        load_config(cfg, env={})
    assert str(cfg) in str(err.value)
    assert f"'{key}'" in str(err.value)
    assert says in str(err.value)
    assert main(["check", "--config", str(cfg)]) == 2  # `check` says the same, no traceback
    assert f"'{key}'" in capsys.readouterr().err


def test_a_good_proxy_config_loads_with_the_agents_site(tmp_path: Path) -> None:
    cfg = tmp_path / "agent.yaml"
    cfg.write_text("site: iad1\nproxy:\n  traps: 0.0.0.0:10162\n  targets:\n" + GOOD +
                   "    - {host: pdu-7, site: fra2, address: pdu7.mgmt, version: v3, user: u,"
                   " auth_protocol: sha256, auth_key: 12345678, interval_s: 30}\n")
    loaded = load_config(cfg, env={})
    a, b = loaded.proxy.targets
    assert (a.site, a.version, a.port, a.interval_s) == ("iad1", "v2c", 161, 60.0)
    assert (b.site, b.auth_protocol, b.interval_s) == ("fra2", "sha256", 30.0)
    assert loaded.proxy.traps == "0.0.0.0:10162"


def read_snmprec(path: Path, **changes: Scalar) -> dict[str, Scalar]:
    """A recording as the walk agent.snmp returns (int or text), with OIDs changed."""
    walk: dict[str, Scalar] = {}
    for line in path.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        oid, tag, value = line.split("|", 2)
        if tag in ("2", "65", "66", "67", "70"):  # INTEGER, Counter32, Gauge32, TimeTicks, C64
            walk[oid] = int(value)
        else:
            walk[oid] = bytes.fromhex(value).decode() if tag == "4x" else value
    walk.update({oid.replace("_", "."): v for oid, v in changes.items()})
    return walk


OA = "1_3_6_1_4_1_232_22_2"


@pytest.mark.parametrize(
    ("changes", "component", "status", "slug"),
    [
        ({f"{OA}_5_1_1_1_15_3": 5}, "psu:3", "failed", "psu_lost"),  # brownOut, condition ok
        ({f"{OA}_5_1_1_1_17_3": 3}, "psu:3", "warning", "bmc_warning"),  # degraded
        ({f"{OA}_3_1_3_1_11_7": 4}, "fan:7", "failed", "fan_failed"),
        ({f"{OA}_3_1_2_1_8_1": 4}, "temp:1", "failed", "temp_critical"),
        ({f"{OA}_3_3_1_1_9_1": 4}, "bmc:power", "failed", "bmc_critical"),
        ({f"{OA}_3_3_1_1_5_1": 2}, "psu:redundancy", "failed", "psu_redundancy_lost"),
        ({}, "psu:3", "ok", None),
    ],
)
def test_onboard_administrator_values_map_to_states(
    changes: dict[str, Scalar], component: str, status: str, slug: str | None
) -> None:
    result = PROFILES["hp-onboard-administrator"].parse(read_snmprec(HEALTHY, **changes))
    states = {s.id: s for s in result.states}
    assert (states[component].status, states[component].failure) == (status, slug)
    assert sum(s.status != "ok" for s in result.states) == (0 if slug is None else 1)


def test_an_absent_supply_is_no_part_and_no_power_means_off() -> None:
    absent = {f"{OA}_5_1_1_1_16_6": 2}  # cpqRackPowerSupplyPresent absent(2)
    no_power = {f"{OA}_5_1_1_1_10_{i}": 0 for i in range(1, 7)}
    result = PROFILES["hp-onboard-administrator"].parse(
        read_snmprec(HEALTHY, **absent, **no_power))
    assert "psu:6" not in {c.id for c in result.inventory}
    assert "psu:6" not in {s.id for s in result.states}
    power = {r.metric: r.value for r in result.readings if r.component == "bmc:power"}
    assert power == {"bmc.power_watts": 0.0, "bmc.power_on": 0.0}
