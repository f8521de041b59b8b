"""Virtual agents over real MQTT: each host the agent's own spool, publisher and messages.

A failed part reports healthy again (a disk with a new serial) once a technician marks
it replaced: the simulator reads that from the database, as a person in the room would
see the new part. That closes the loop for the demo and the end-to-end tests.
"""

from __future__ import annotations

import argparse
import logging
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent import __version__, messages
from agent.config import AgentConfig
from agent.core import Outgoing
from agent.link import Link
from agent.messages import Component, ComponentState, Reading
from agent.spool import Spool
from hourglass.config import Config
from hourglass.signals import stop_on_signals

log = logging.getLogger(__name__)
KINDS = ("disk", "fan", "power")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")


def parse_duration(text: str) -> float:
    """'90', '90s', '2m', '1h' -> seconds."""
    m = _DURATION.match(text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30, 30s, 2m")
    return float(m[1]) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m[2]]


@dataclass(frozen=True)
class FailSpec:
    """--fail HOST:KIND:AFTER."""

    host: str
    kind: str
    after_s: float


def parse_fail(text: str) -> FailSpec:
    """Parse one --fail argument."""
    parts = text.split(":")
    if len(parts) != 3 or parts[1] not in KINDS:
        raise argparse.ArgumentTypeError(
            f"--fail {text!r}: expected HOST:KIND:AFTER with KIND one of {', '.join(KINDS)}")
    return FailSpec(parts[0], parts[1], parse_duration(parts[2]))


@dataclass
class Part:
    """One simulated component and its health."""

    id: str
    kind: str
    slot: str
    serial: str | None = None
    model: str | None = None
    size: int | None = None
    failure: str | None = None


@dataclass
class VirtualHost:
    """A made-up server: inventory, readings, and the parts that failed."""

    host: str
    site: str
    rng: random.Random
    parts: dict[str, Part] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for i, dev in enumerate(("sda", "sdb", "sdc", "sdd")):
            serial = self._serial()
            self.parts[dev] = Part(f"disk:{serial}", "disk", dev, serial, "ST8000NM000A",
                                   8_001_563_222_016)
            self.parts[f"dimm{i}"] = Part(f"dimm:A{i + 1}", "dimm", f"A{i + 1}", self._serial(),
                                          "M393A4K40EB3-CWE", 34_359_738_368)
        for i in (1, 2):
            self.parts[f"psu{i}"] = Part(f"psu:{i}", "psu", f"PSU{i}")
        for i in range(1, 5):
            self.parts[f"fan{i}"] = Part(f"fan:fan{i}", "fan", f"fan{i}")
        self.parts["nic0"] = Part("nic:eno1", "nic", "eno1")

    def _serial(self) -> str:
        return "".join(self.rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(8))

    def inventory(self) -> list[Component]:
        """The birth inventory."""
        return [Component(p.id, p.kind, p.slot, f"/dev/{p.slot}" if p.kind == "disk" else None,
                          p.model, p.serial, p.size) for p in self.parts.values()]

    def states(self) -> list[ComponentState]:
        """Component states for telemetry."""
        return [ComponentState(p.id, p.kind, "failed" if p.failure else "ok", p.slot, p.serial,
                               p.failure) for p in self.parts.values()
                if p.kind in ("disk", "psu", "fan", "dimm")]

    def readings(self) -> list[Reading]:
        """About 40 readings, like a real server's."""
        r = self.rng
        out = [Reading(f"host:{self.host}", "cpu.percent", round(r.uniform(2, 60), 1)),
               Reading(f"host:{self.host}", "mem.used_percent", round(r.uniform(20, 80), 1)),
               Reading(f"host:{self.host}", "load.1m", round(r.uniform(0, 8), 2))]
        for i in range(8):
            out.append(Reading(f"cpu:{i // 4}", f"temp.core{i % 4}_c", round(r.uniform(38, 70))))
        for p in self.parts.values():
            if p.kind == "fan":
                rpm = 0.0 if p.failure else float(r.randint(5200, 6400))
                out.append(Reading(p.id, "fan.rpm", rpm))
            elif p.kind == "disk":
                out += [Reading(p.id, "smart.temperature_c", float(r.randint(28, 41))),
                        Reading(p.id, "smart.attr_5_raw", 1208.0 if p.failure else 0.0),
                        Reading(p.id, "smart.attr_197_raw", 0.0),
                        Reading(p.id, "smart.power_on_hours", 21000.0)]
            elif p.kind == "psu":
                out += [Reading(p.id, "psu.watts", 0.0 if p.failure else r.uniform(180, 260)),
                        Reading(p.id, "psu.input_volts", 0.0 if p.failure else 229.0)]
        return out

    def fail(self, kind: str) -> Part:
        """Break one part of the given kind (disk: sda, fan: fan1, power: PSU 1)."""
        part = self.parts[{"disk": "sda", "fan": "fan1", "power": "psu1"}[kind]]
        part.failure = {"disk": "smart_failed", "fan": "fan_stopped", "power": "psu_lost"}[kind]
        return part

    def repair(self, component: str, new_serial: str | None) -> Part | None:
        """The technician's fix: a disk gets a new serial in its slot; others run again."""
        for key, part in self.parts.items():
            if part.id == component and part.failure:
                part.failure = None
                if part.kind == "disk":
                    serial = new_serial or self._serial()
                    self.parts[key] = Part(f"disk:{serial}", "disk", part.slot, serial,
                                           part.model, part.size)
                    return self.parts[key]
                return part
        return None


class Agent:
    """One virtual host, sending exactly what the real agent would, the way it would: each
    message numbered and stored in the agent's own spool (agent.spool) before the agent's
    own publisher (agent.link) sends it, kept after the PUBACK for a resend. A simulator
    killed at any moment loses nothing: restarted on the same --state, it sends what waits."""

    def __init__(self, vh: VirtualHost, spool: Spool, interval_s: float, cfg: AgentConfig,
                 v5: bool = True) -> None:
        self.vh, self.spool, self.interval_s = vh, spool, interval_s
        self.boot = uuid.uuid4().hex
        self.link = Link(cfg, spool, self, v5=v5)

    # -- what agent.link asks of a host: its birth and state messages --------------------

    def _out(self, kind: str, payload: dict[str, Any]) -> Outgoing:
        return Outgoing(kind, messages.topic(self.vh.site, self.vh.host, kind), payload)

    def birth(self, session: str | None = None, will_seq: int | None = None) -> Outgoing:
        """The birth of a new connection: the simulated inventory."""
        return self._out("birth", messages.birth(
            self.vh.host, self.vh.site, self.spool.draft_seq(), datetime.now(UTC),
            agent_version=f"{__version__}-sim", boot_id=self.boot, interval_s=self.interval_s,
            chassis={"vendor": "Simulated", "model": "SIM-1U", "serial": f"CH-{self.vh.host}"},
            components=self.vh.inventory(), session=session, will_seq=will_seq))

    def state(self, online: bool, *, reason: str | None = None, session: str | None = None,
              will_seq: int | None = None) -> Outgoing:
        """A state message."""
        return self._out("state", messages.state(
            self.vh.host, self.vh.site, self.spool.draft_seq(), datetime.now(UTC), online,
            reason=reason, session=session, will_seq=will_seq))

    # -- what the simulator produces --------------------------------------------------

    def telemetry(self) -> None:
        """Store one telemetry message; the publisher sends it."""
        self.link.put(self._out("telemetry", messages.telemetry(
            self.vh.host, self.vh.site, self.spool.draft_seq(), datetime.now(UTC),
            interval_s=self.interval_s, readings=self.vh.readings(),
            components=self.vh.states())))

    def event(self, part: Part) -> None:
        """Store the event of a part's new state; events go out before waiting telemetry."""
        now = datetime.now(UTC)
        st = ComponentState(part.id, part.kind, "failed" if part.failure else "ok", part.slot,
                            part.serial, part.failure)
        self.link.put(self._out("event", messages.event(
            self.vh.host, self.vh.site, self.spool.draft_seq(), now, state=st, detected_at=now,
            evidence={"simulated": True})))

    def step(self) -> None:
        """Move this host's MQTT traffic without waiting (connect when due, publish)."""
        self.link.publisher.step(timeout=0.0)


def agent_config(cfg: Config, host: str, site: str, interval_s: float,
                 state: Path) -> AgentConfig:
    """The agent configuration of one virtual host on the simulator's broker."""
    return AgentConfig(
        site=site, host=host, mqtt_url=cfg.mqtt_url, interval_s=max(0.1, interval_s),
        username=cfg.mqtt_username or None, password=cfg.mqtt_password or None,
        spool_path=str(state / "seq.db"), keepalive_s=max(10, int(interval_s * 3)),
        backoff_max_s=5.0, telemetry_drain_per_s=max(10.0, 4 / max(0.1, interval_s)))


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The simulator's command-line options."""
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--hosts", type=int, help="N made-up hosts sim-0001.. at --site")
    src.add_argument("--fleet", type=Path, help="simulate the hosts of this fleet file")
    p.add_argument("--site", default="sim1", help="site of the made-up hosts")
    p.add_argument("--interval", type=parse_duration, default=30.0, help="telemetry interval")
    p.add_argument("--fail", type=parse_fail, action="append", default=[],
                   metavar="HOST:KIND:AFTER", help=f"inject a failure; KIND: {', '.join(KINDS)}")
    p.add_argument("--fail-every", type=parse_duration, default=None,
                   help="also break a random host's part this often")
    p.add_argument("--duration", type=parse_duration, default=None, help="stop after this")
    p.add_argument("--state", type=Path, default=Path(".hourglass/sim"),
                   help="folder keeping each virtual host's seq across runs")
    p.add_argument("--seed", type=int, default=1)


def _hosts(args: argparse.Namespace) -> list[tuple[str, str]]:
    if args.fleet:
        from dispatcher.fleet import load_fleet_file

        fleet = load_fleet_file(args.fleet)
        return [(h.id, h.site) for c in fleet.customers for h in c.hosts]
    return [(f"sim-{i:04d}", args.site) for i in range(1, args.hosts + 1)]


def main(args: argparse.Namespace, cfg: Config, stop: threading.Event | None = None) -> int:
    """Run the virtual fleet until --duration, SIGINT/SIGTERM or `stop`."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        stop_on_signals(stop)
    args.state.mkdir(parents=True, exist_ok=True)
    agents: dict[str, Agent] = {}
    for name, site in _hosts(args):
        vh = VirtualHost(name, site, random.Random(f"{args.seed}:{name}"))
        # durable=False: WAL without an fsync per commit survives the simulator being killed
        # (not a power cut), which 100 hosts' fsyncs on every message and ack would slow
        spool = Spool(args.state / "seq.db", name, durable=False)
        agents[name] = Agent(vh, spool, args.interval,
                             agent_config(cfg, name, site, args.interval, args.state),
                             cfg.mqtt_v5)
    schedule = sorted((f.after_s, f.host, f.kind) for f in args.fail)
    unknown = [h for _, h, _ in schedule if h not in agents]
    if unknown:
        log.error("--fail names hosts that are not simulated: %s", ", ".join(unknown))
        return 2
    log.info("simulating %d hosts every %.1f s", len(agents), args.interval)
    try:
        _loop(args, cfg, agents, schedule, stop)
        _shutdown(agents)
    finally:
        for a in agents.values():
            a.link.publisher.close()
            a.spool.close()
    return 0


def _shutdown(agents: dict[str, Agent], within_s: float = 10.0) -> None:
    """A planned stop of every host at once: each says so, then all flush together (not
    one host after the other) for at most ``within_s``."""
    for a in agents.values():
        a.link.put(a.state(False, reason="shutdown", session=a.link.publisher.session))
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        waiting = [a for a in agents.values() if not a.link.publisher.idle()]
        if not waiting:
            return
        for a in waiting:
            a.step()
        time.sleep(0.02)
    log.warning("%d hosts still had messages waiting at the stop; they go on the next run",
                sum(not a.link.publisher.idle() for a in agents.values()))


def _loop(args: argparse.Namespace, cfg: Config, agents: dict[str, Agent],
          schedule: list[tuple[float, str, str]], stop: threading.Event) -> None:
    rng = random.Random(args.seed)
    start = time.monotonic()
    next_tick = start
    next_random = start + (args.fail_every or 0)
    healer = Healer(cfg.database_url) if cfg.database_url else None
    if healer is None:
        log.warning("no database configured: failed parts will not heal when replaced")
    while not stop.is_set():
        now = time.monotonic()
        if args.duration and now - start >= args.duration:
            break
        while schedule and now - start >= schedule[0][0]:
            _, name, kind = schedule.pop(0)
            _break(agents[name], kind)
        if args.fail_every and now >= next_random:
            _break(agents[rng.choice(sorted(agents))], rng.choice(KINDS))
            next_random = now + args.fail_every
        if now >= next_tick:
            for a in agents.values():
                a.telemetry()
            next_tick += args.interval
        if healer:
            healer.heal(agents)
        for a in agents.values():
            a.step()
        # every host's traffic moves each turn: 50 ms for a small fleet, longer for a big one
        stop.wait(min(args.interval / 4, max(0.05, len(agents) / 4000)))


def _break(agent: Agent, kind: str) -> None:
    part = agent.vh.fail(kind)
    log.info("injected %s failure on %s (%s)", kind, agent.vh.host, part.id)
    agent.event(part)


class Healer:
    """Sees jobs marked replaced, as the person in the room would see the new part."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: Any = None

    def heal(self, agents: dict[str, Agent]) -> None:
        """Repair every simulated part whose job a technician marked replaced."""
        import psycopg

        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self.url, autocommit=True)
            rows = self._conn.execute(
                "SELECT i.host_id, i.component, j.new_serial FROM jobs j"
                " JOIN incidents i ON i.id = j.incident_id WHERE j.state = 'replaced'"
                " AND i.host_id = ANY(%s)", (list(agents),)).fetchall()
        except psycopg.OperationalError as exc:
            log.warning("cannot read jobs (%s); will retry", exc)
            self._conn = None
            return
        for host, component, serial in rows:
            part = agents[host].vh.repair(component, serial)
            if part is not None:
                log.info("%s: %s replaced, now %s", host, component, part.id)
                agents[host].event(part)
                agents[host].telemetry()
