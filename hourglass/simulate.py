"""Virtual agents over real MQTT: each host the agent's own spool, publisher and messages.

A failed part reports healthy again (a disk with a new serial) once a technician marks
it replaced: the simulator reads that from the database, as a person in the room would
see the new part. That closes the loop for the demo and the end-to-end tests.

One process runs up to --per-process hosts in one loop, as the agent's SNMP proxy runs its
targets; a bigger fleet is split among worker processes (HOSTS_PER_PROCESS says why), all on
the one spool file --state/seq.db.
"""

from __future__ import annotations

import argparse
import ctypes
import itertools
import logging
import multiprocessing
import os
import random
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.config import AgentConfig
from agent.spool import Spool
from hourglass.config import Config
from hourglass.signals import stop_on_signals
from hourglass.simhost import Agent, VirtualHost

log = logging.getLogger(__name__)
KINDS = ("disk", "fan", "power")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
#: paho's network loop watches a connection with select(), which takes no file descriptor
#: above 1023; a virtual host holds five (its socket, paho's wake-up socket pair, the spool
#: file and its WAL), so past about 200 hosts in one process the later hosts never stay
#: connected (measured: 172 of 250 connected). A bigger fleet runs in worker processes.
HOSTS_PER_PROCESS = 150
#: 180 hosts hold 900 descriptors: the rest of the 1024 is the process's own (stdio, the
#: healer's database connection, a reconnecting host's next socket).
MAX_PER_PROCESS = 180
#: How long a planned stop may flush the hosts of one process (they flush together).
SHUTDOWN_S = 10.0
#: A loop turn steps every host once (about 25 us each): 20 turns per interval, but no
#: fewer than 5 a second (a backlog drains 20 messages per host per turn) nor more than 20.
TURN_MIN_S, TURN_MAX_S = 0.05, 0.2
#: How often the jobs table is read for parts marked replaced.
HEAL_EVERY_S = 1.0


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


def agent_config(cfg: Config, host: str, site: str, interval_s: float,
                 state: Path) -> AgentConfig:
    """The agent configuration of one virtual host on the simulator's broker."""
    return AgentConfig(
        site=site, host=host, mqtt_url=cfg.mqtt_url, interval_s=max(0.1, interval_s),
        username=cfg.mqtt_username or None, password=cfg.mqtt_password or None,
        spool_path=str(state / "seq.db"), keepalive_s=max(10, int(interval_s * 3)),
        backoff_max_s=5.0, telemetry_drain_per_s=max(10.0, 4 / max(0.1, interval_s)))


def _per_process(text: str) -> int:
    n = int(text) if text.isdigit() else 0
    if not 1 <= n <= MAX_PER_PROCESS:
        raise argparse.ArgumentTypeError(f"{text!r}: expected 1 to {MAX_PER_PROCESS} hosts")
    return n


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
    p.add_argument("--per-process", type=_per_process, default=HOSTS_PER_PROCESS, metavar="N",
                   help=f"hosts per worker process (default {HOSTS_PER_PROCESS}); a bigger "
                        "fleet runs in several")


def fleet_hosts(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(host, site) of every host to simulate: the made-up ones, or the fleet file's."""
    if args.fleet:
        from dispatcher.fleet import load_fleet_file

        fleet = load_fleet_file(args.fleet)
        return [(h.id, h.site) for c in fleet.customers for h in c.hosts]
    return [(f"sim-{i:04d}", args.site) for i in range(1, args.hosts + 1)]


@dataclass(frozen=True)
class Shard:
    """What one simulator process runs: its hosts, and the fleet's failures among them."""

    hosts: tuple[tuple[str, str], ...]  # (host, site)
    fleet: tuple[str, ...]  # every simulated host: --fail-every picks among all of them
    fails: tuple[tuple[float, str, str], ...]  # (after_s, host, kind) of --fail, sorted
    interval_s: float
    fail_every_s: float | None
    seed: int
    state: Path
    started: float  # wall clock of the simulator's start: --fail and --fail-every count from it


def random_failures(shard: Shard) -> Iterator[tuple[float, str, str]]:
    """--fail-every's failures (after_s, host, kind): the same sequence in every process."""
    rng = random.Random(shard.seed)
    names = sorted(shard.fleet)
    for k in itertools.count(1):
        yield k * (shard.fail_every_s or 0.0), rng.choice(names), rng.choice(KINDS)


class Failures:
    """The failures due in this process: its hosts' --fail, and --fail-every's on its hosts."""

    def __init__(self, shard: Shard) -> None:
        self.fixed = list(shard.fails)
        self.hosts = {h for h, _ in shard.hosts}
        self._random = random_failures(shard) if shard.fail_every_s else None
        self._next = next(self._random) if self._random else None

    def due(self, elapsed_s: float) -> list[tuple[str, str]]:
        """(host, kind) of every failure due ``elapsed_s`` after the simulator's start."""
        out = []
        while self.fixed and elapsed_s >= self.fixed[0][0]:
            _, host, kind = self.fixed.pop(0)
            out.append((host, kind))
        while self._random and self._next and elapsed_s >= self._next[0]:
            if self._next[1] in self.hosts:  # another process's host: that one breaks it
                out.append((self._next[1], self._next[2]))
            self._next = next(self._random)
        return out


def main(args: argparse.Namespace, cfg: Config, stop: threading.Event | None = None) -> int:
    """Run the virtual fleet until --duration, SIGINT/SIGTERM or `stop`."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        stop_on_signals(stop)
    hosts = fleet_hosts(args)
    problem = problem_with(args, cfg, hosts)
    if problem:
        log.error("%s", problem)
        return 2
    args.state.mkdir(parents=True, exist_ok=True)
    shards = split(args, hosts, time.time())
    log.info("simulating %d hosts every %.1f s in %d process(es)", len(hosts), args.interval,
             len(shards))
    if len(shards) == 1:
        return _simulate(shards[0], cfg, stop, args.duration)
    return _supervise(shards, cfg, stop, args.duration)


def problem_with(args: argparse.Namespace, cfg: Config, hosts: list[tuple[str, str]]) -> str | None:
    """Why these hosts cannot be simulated as asked, or None."""
    if not hosts:
        return "no hosts to simulate"
    names = {h for h, _ in hosts}
    unknown = [f.host for f in args.fail if f.host not in names]
    if unknown:
        return f"--fail names hosts that are not simulated: {', '.join(unknown)}"
    for host, site in hosts:
        try:
            agent_config(cfg, host, site, args.interval, args.state).validate()
        except ValueError as exc:
            return f"cannot simulate {host} at site {site}: {exc}"
    return None


def split(args: argparse.Namespace, hosts: list[tuple[str, str]], started: float) -> list[Shard]:
    """The fleet in as few shards of at most --per-process hosts as it takes, of even size."""
    count = -(-len(hosts) // args.per_process)
    size = -(-len(hosts) // count)
    fleet = tuple(sorted(h for h, _ in hosts))
    out = []
    for i in range(0, len(hosts), size):
        part = tuple(hosts[i:i + size])
        mine = {h for h, _ in part}
        fails = tuple(sorted((f.after_s, f.host, f.kind) for f in args.fail if f.host in mine))
        out.append(Shard(part, fleet, fails, args.interval, args.fail_every, args.seed,
                         args.state, started))
    return out


def _simulate(shard: Shard, cfg: Config, stop: threading.Event, duration: float | None,
              orphaned: Callable[[], bool] = lambda: False) -> int:
    """This process's hosts, each with its own Link, in one loop; a planned stop at the end."""
    agents: dict[str, Agent] = {}
    try:
        for name, site in shard.hosts:
            vh = VirtualHost(name, site, random.Random(f"{shard.seed}:{name}"))
            # durable=False: WAL without an fsync per commit survives the simulator being
            # killed (not a power cut); an fsync per message and per ack would cost each
            # turn of the loop about three times the time (measured: 0.69 against 0.21 ms)
            spool = Spool(shard.state / "seq.db", name, durable=False)
            agents[name] = Agent(vh, spool, shard.interval_s,
                                 agent_config(cfg, name, site, shard.interval_s, shard.state),
                                 cfg.mqtt_v5)
        _loop(shard, cfg, agents, stop, duration, orphaned)
        _shutdown(agents)
    finally:
        for a in agents.values():
            a.link.publisher.close()
            a.spool.close()
    return 0


def _supervise(shards: list[Shard], cfg: Config, stop: threading.Event,
               duration: float | None) -> int:
    """Run each shard in a worker process; stop them all together (each flushes its hosts)."""
    ctx = multiprocessing.get_context("spawn")  # nothing of this process's state is shared
    level = logging.getLogger().getEffectiveLevel()
    procs = [ctx.Process(target=_worker, args=(s, cfg, os.getpid(), level),
                         name=f"simulate-{i + 1}") for i, s in enumerate(shards)]
    for p in procs:
        p.start()
    start, rc = time.monotonic(), 0
    while not stop.wait(0.2):
        if duration and time.monotonic() - start >= duration:
            break
        ended = [p for p in procs if p.exitcode is not None]
        if ended:
            log.error("simulator worker %s ended (exit %s); stopping the others",
                      ended[0].name, ended[0].exitcode)
            rc = 1
            break
    for p in procs:
        if p.exitcode is None:
            p.terminate()  # SIGTERM: the worker's planned stop
    deadline = time.monotonic() + SHUTDOWN_S + 5.0
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.exitcode is None:
            log.error("simulator worker %s did not stop; killed", p.name)
            p.kill()
            p.join()
        rc = rc or (1 if p.exitcode else 0)
    return rc


def _worker(shard: Shard, cfg: Config, parent: int, level: int) -> None:
    """A worker process: its shard until SIGTERM; it dies with the simulator."""
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if sys.platform.startswith("linux"):
        # PR_SET_PDEATHSIG: a simulator SIGKILLed takes its workers with it, so a new one
        # started on the same --state never runs a host beside an orphan
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    stop = threading.Event()
    stop_on_signals(stop)
    rc = _simulate(shard, cfg, stop, None, orphaned=lambda: os.getppid() != parent)
    if rc:
        raise SystemExit(rc)


def _shutdown(agents: dict[str, Agent], within_s: float = SHUTDOWN_S) -> None:
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


def _loop(shard: Shard, cfg: Config, agents: dict[str, Agent], stop: threading.Event,
          duration: float | None, orphaned: Callable[[], bool]) -> None:
    # --fail and --fail-every count from the simulator's start, in every worker process
    start = time.monotonic() - max(0.0, time.time() - shard.started)
    failures = Failures(shard)
    # messages come every interval; between, a turn only takes PUBACKs and keepalives
    turn_s = min(TURN_MAX_S, max(TURN_MIN_S, shard.interval_s / 20))
    next_tick = next_heal = time.monotonic()
    healer = Healer(cfg.database_url) if cfg.database_url else None
    if healer is None:
        log.warning("no database configured: failed parts will not heal when replaced")
    while not stop.is_set():
        if orphaned():
            os._exit(1)  # the simulator was killed: go as abruptly (the wills fire)
        now = time.monotonic()
        if duration and now - start >= duration:
            break
        for name, kind in failures.due(now - start):
            _break(agents[name], kind)
        if now >= next_tick:
            for a in agents.values():
                a.telemetry()
            next_tick += shard.interval_s
        if healer and now >= next_heal:
            healer.heal(agents)
            next_heal = now + HEAL_EVERY_S
        for a in agents.values():
            a.step()
        stop.wait(turn_s)


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
