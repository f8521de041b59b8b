"""Proxy mode: BMCs and PDUs polled over SNMP, each published as its own host.

The runner polls each target at its interval (and at once when a trap about it arrives)
on an asyncio thread, reads each walk through the target's profile (``agent.profiles``:
data plus pure functions, the same ProbeResult a local probe returns), and hands each
result to that target's own Reporter, Spool and Publisher: its own seq, spool file, MQTT
session and last will.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from agent import __version__, messages
from agent.config import AgentConfig, ProxyTarget
from agent.core import Outgoing, Reporter, changes
from agent.link import Link
from agent.messages import Component, ComponentState
from agent.probes.base import MemoryState, ProbeResult, StateStore
from agent.profiles import PROFILES, Skipped, Walk
from agent.publisher import Publisher
from agent.root import Root
from agent.snmp import (
    Credentials,
    LogLimit,
    Poller,
    Scalar,
    SnmpError,
    Trap,
    TrapReceiver,
    brief,
)
from agent.spool import Spool

log = logging.getLogger(__name__)


#: The proxy's own view of the device: ok when it answered the last poll.
SNMP_COMPONENT = "bmc:snmp"
#: Where a target's last inventory and chassis live in its spool.
_INVENTORY_KEY = "proxy:inventory"


def unreachable(error: SnmpError) -> ProbeResult:
    """What a failed poll reports: the device's SNMP state unknown, nothing else (no stale
    readings, so no fresh ``bmc.power_on`` either: the collector must not trust an old one)."""
    return ProbeResult(states=(ComponentState(SNMP_COMPONENT, "bmc", "unknown",
                                              detail=str(error)[:1024]),))


def unreadable(target: ProxyTarget, exc: Exception) -> SnmpError:
    """A walk or its mapping failed in a way no SnmpError names: say so, as an SnmpError."""
    return SnmpError(f"SNMP {target.version} to {target.address}:{target.port}: the answer "
                     f"could not be read ({brief(exc)})")


def credentials(target: ProxyTarget) -> Credentials:
    """The SNMP side of a target's configuration: every Credentials field, by name.

    The target's config keeps the same names (agent/config.py must not import pysnmp),
    so a field added to Credentials is carried over without a second list to edit.
    """
    return Credentials(**{f.name: getattr(target, f.name) for f in fields(Credentials)})


class TargetReporter(Reporter):
    """A Reporter for a proxied device: inventory and chassis come from its walk."""

    def __init__(self, target: ProxyTarget, next_seq: Callable[[], int],
                 clock: Callable[[], datetime], state: StateStore | None = None) -> None:
        """No probes and no root of its own: results are handed in. ``state`` (the spool)
        keeps the last inventory, so a birth before the first answer is not empty."""
        super().__init__(host=target.host, site=target.site or "", interval_s=target.interval_s,
                         probes=(), root=Root("/nonexistent"), next_seq=next_seq, clock=clock)
        self.profile = PROFILES[target.profile]
        self.store = state or MemoryState()
        self.chassis: dict[str, str | None] = {"vendor": None, "model": None, "serial": None}
        self.inventory: tuple[Component, ...] | None = None  # None: never seen the device
        self.skipped = ""  # what the last walk could not use, as last logged
        stored = self.store.load_state(_INVENTORY_KEY)
        if stored is not None:
            saved = json.loads(stored)
            self.chassis = saved["chassis"]
            self.inventory = tuple(Component(**c) for c in saved["components"])

    @property
    def ready(self) -> bool:
        """Whether a birth would carry the device's inventory (an empty one would read as
        every part gone to the collector)."""
        return self.inventory is not None

    def take(self, walk: Walk) -> ProbeResult:
        """Map one walk and keep it as the latest (the next birth's inventory); values it
        could not use are logged when they change, not at every poll."""
        skipped = Skipped()
        parsed = self.profile.parse(walk, skipped)
        answered = ComponentState(SNMP_COMPONENT, "bmc", "ok")
        self.latest = dataclasses.replace(parsed, states=(*parsed.states, answered))
        chassis = self.profile.chassis(walk, skipped)
        said = str(skipped) if skipped.seen else ""
        if said and said != self.skipped:
            log.warning("%s: %s", self.host, said)
        self.skipped = said
        if (chassis, parsed.inventory) != (self.chassis, self.inventory):
            self.chassis, self.inventory = chassis, parsed.inventory
            self.store.save_state(_INVENTORY_KEY, json.dumps(
                {"chassis": chassis, "components": [c.as_json() for c in parsed.inventory]}))
        return self.latest

    def birth(self, session: str | None = None, will_seq: int | None = None) -> Outgoing:
        """The birth message of the device, from its latest (or stored) walk."""
        return self._out("birth", lambda seq, ts: messages.birth(
            self.host, self.site, seq, ts, agent_version=__version__,
            boot_id=f"snmp-{self.profile.name}"[:64], interval_s=self.interval_s,
            chassis=self.chassis, components=self.inventory or (), session=session,
            will_seq=will_seq))

    def report_at(self, result: ProbeResult, detected: datetime) -> list[Outgoing]:
        """Events (stamped ``detected``) for every change, then the telemetry."""
        out = [self._event(s, detected, result.evidence.get(s.id, {}))
               for s in changes(self._statuses, result.states)]
        self._statuses = {s.id: s.status for s in result.states}
        out.append(self._out("telemetry", lambda seq, ts: messages.telemetry(
            self.host, self.site, seq, ts, interval_s=self.interval_s,
            readings=result.readings, components=result.states)))
        return out


class Loop:
    """An asyncio loop on its own thread: the SNMP side of the proxy."""

    def __init__(self) -> None:
        """Start the thread and its Poller."""
        self.loop = asyncio.new_event_loop()
        # pysnmp lets some errors on a datagram it cannot read reach the loop, which would log
        # a traceback for each: a device (or anyone) sending junk could fill the log
        self.limit = LogLimit()
        self.loop.set_exception_handler(self._error)
        self.thread = threading.Thread(target=self.loop.run_forever, name="snmp", daemon=True)
        self.thread.start()
        self.poller: Poller = self.call(Poller).result()

    def _error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """The loop's own report of an error in a callback, within the limit."""
        if self.limit.allow():
            loop.default_exception_handler(context)

    def call(self, fn: Callable[[], Any]) -> Future[Any]:
        """Run ``fn()`` on the loop (objects bound to it must be created there)."""

        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop)

    def walk(self, target: ProxyTarget) -> Future[dict[str, Scalar]]:
        """Start a walk of ``target``; the future holds the values or an SnmpError."""
        return asyncio.run_coroutine_threadsafe(
            self.poller.walk(credentials(target), PROFILES[target.profile].roots), self.loop)

    def close(self) -> None:
        """Close the engine and stop the thread."""
        self.call(self.poller.close).result(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


@dataclass
class _Target:
    """One proxied device in the running proxy."""

    target: ProxyTarget
    reporter: TargetReporter
    link: Link
    next_poll: float = 0.0
    walking: Future[dict[str, Scalar]] | None = None
    started: datetime | None = None
    trapped_at: datetime | None = None
    last_error: str | None = field(default=None)

    @property
    def spool(self) -> Spool:
        """The target's spool."""
        return self.link.spool

    @property
    def publisher(self) -> Publisher:
        """The target's MQTT session."""
        return self.link.publisher


def resolve(address: str) -> str:
    """The IPv4 address a device's traps come from (the name itself when it does not
    resolve now; its polls then report it unreachable)."""
    try:
        return socket.gethostbyname(address)
    except OSError:
        return address


def trapped(trap: Trap, ips: Mapping[str, str]) -> set[str]:
    """The hosts (of ``ips``: host -> IP) a trap is about: it came from their IP, or names it
    as snmpTrapAddress (a trap forwarded by another device)."""
    about = {trap.source} if trap.address is None else {trap.source, trap.address}
    return {host for host, ip in ips.items() if ip in about}


def spool_path(cfg: AgentConfig, host: str) -> Path:
    """One spool file per proxied host, beside the agent's own spool."""
    return Path(cfg.spool_path).parent / "proxy" / f"{host}.db"


class Proxy:
    """Polls every target and publishes each as its own host."""

    def __init__(self, cfg: AgentConfig, clock: Callable[[], datetime],
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        """Nothing opens before ``start`` (SQLite wants the thread that runs the loop)."""
        self.cfg, self.clock, self.monotonic = cfg, clock, monotonic
        self.wake = threading.Event()
        self.lock = threading.Lock()
        self.targets: list[_Target] = []
        self.ips: dict[str, str] = {}  # host -> the IP its traps come from
        self.snmp: Loop | None = None
        self.traps: TrapReceiver | None = None
        #: what the trap path logs, receiver and on_trap together: a flood cannot fill the log
        self.trap_log = LogLimit(monotonic=monotonic)

    def _open(self, target: ProxyTarget) -> _Target:
        """Spool, reporter and publisher of one target."""
        spool = Spool(spool_path(self.cfg, target.host), target.host,
                      cap_bytes=self.cfg.spool_cap_bytes)
        rep = TargetReporter(target, spool.draft_seq, self.clock, spool)
        host_cfg = dataclasses.replace(self.cfg, host=target.host, site=target.site or "")
        return _Target(target, rep, Link(host_cfg, spool, rep))

    def on_trap(self, trap: Trap) -> None:
        """A trap from a known target's address makes that target due now."""
        hosts = trapped(trap, self.ips)
        hit = [t for t in self.targets if t.target.host in hosts]
        if not hit:
            if self.trap_log.allow():
                log.info("trap %s from %s matches no target; ignored", trap.trap_oid,
                         trap.source)
            return
        with self.lock:
            for t in hit:
                t.trapped_at = t.trapped_at or self.clock()
        self.wake.set()

    def start(self) -> None:
        """Open each target's spool and publisher, the SNMP thread and the trap receiver."""
        self.targets = [self._open(t) for t in self.cfg.proxy.targets]
        self.ips = {t.host: resolve(t.address) for t in self.cfg.proxy.targets}
        self.snmp = Loop()
        if self.cfg.proxy.traps:
            host, _, port = self.cfg.proxy.traps.rpartition(":")
            self.traps = self.snmp.call(lambda: TrapReceiver(
                (host, int(port)), self.cfg.proxy.trap_community, self.on_trap,
                self.trap_log)).result(10)
            log.info("receiving SNMP traps on %s", self.cfg.proxy.traps)

    def step(self) -> None:
        """Start due polls, take finished ones, move MQTT traffic."""
        assert self.snmp is not None
        now = self.monotonic()
        for t in self.targets:
            with self.lock:
                due, trapped = t.walking is None and (now >= t.next_poll or t.trapped_at), None
                if due:
                    trapped, t.trapped_at = t.trapped_at, None
            if due:
                # The schedule counts from this walk at the latest: a first walk (next_poll
                # 0) must not leave the next one due at once on a host up longer than the
                # interval, since the monotonic clock counts from boot.
                t.next_poll = max(t.next_poll, now)
                t.started = trapped or self.clock()
                t.walking = self.snmp.walk(t.target)
                t.walking.add_done_callback(lambda _f: self.wake.set())
            elif t.walking is not None and t.walking.done():
                self._finish(t, now)
            if t.reporter.ready:  # no session (so no birth) before the device's inventory
                t.publisher.step(timeout=0.0)

    def _finish(self, t: _Target, now: float) -> None:
        """Turn a finished walk into spooled messages."""
        assert t.walking is not None
        assert t.started is not None
        future, t.walking = t.walking, None
        t.next_poll = max(t.next_poll + t.target.interval_s, now)
        try:
            result = t.reporter.take(future.result())
        except SnmpError as exc:
            if str(exc) != t.last_error:
                log.warning("%s: %s", t.target.host, exc)
            t.last_error = str(exc)
            result = unreachable(exc)
        except Exception as exc:  # one device's odd answer must not stop every target
            error = unreadable(t.target, exc)
            if str(error) != t.last_error:
                log.exception("%s: %s", t.target.host, error)
            t.last_error = str(error)
            result = unreachable(error)
        else:
            t.last_error = None
        for msg in t.reporter.report_at(result, t.started):
            t.link.put(msg)

    def run(self, stop: threading.Event, step_s: float = 0.2) -> None:
        """Until ``stop``: poll, publish; then say offline, flush and close."""
        try:
            self.start()
            while not stop.is_set():
                self.step()
                self.wake.wait(step_s)  # a trap or a finished walk wakes the loop at once
                self.wake.clear()
            for t in self.targets:
                t.link.stop(2.0)
        finally:
            self.close()

    def close(self) -> None:
        """Close publishers, spools, the trap receiver and the SNMP thread."""
        if self.snmp is not None:
            if self.traps is not None:
                self.snmp.call(self.traps.close).result(timeout=5)
            self.snmp.close()
        for t in self.targets:
            t.publisher.close()
            t.spool.close()


def collect_once(targets: Sequence[ProxyTarget], clock: Callable[[], datetime]
                 ) -> list[tuple[ProxyTarget, list[Outgoing] | SnmpError]]:
    """Poll each target once (no broker, no spool): its birth, state and report, or its error."""
    import itertools

    snmp = Loop()
    out: list[tuple[ProxyTarget, list[Outgoing] | SnmpError]] = []
    try:
        for target in targets:
            rep = TargetReporter(target, itertools.count(1).__next__, clock)
            started = clock()
            try:
                result = rep.take(snmp.walk(target).result())
            except SnmpError as exc:
                out.append((target, exc))
                continue
            except Exception as exc:  # one device's odd answer must not hide the others'
                out.append((target, unreadable(target, exc)))
                continue
            out.append((target, [rep.birth(), rep.state(True), *rep.report_at(result, started)]))
    finally:
        snmp.close()
    return out
