"""Proxy mode: BMCs and PDUs polled over SNMP, each published as its own host.

Two halves. Profiles are data plus pure functions: a walk (dotted OID -> value, from
``agent.snmp``) becomes readings, component states and inventory, the same ProbeResult a
local probe returns, so the collector cannot tell a proxied host from an agent's. The
runner polls each target at its interval (and at once when a trap about it arrives) on
an asyncio thread, and hands each result to that target's own Reporter, Spool and
Publisher: its own seq, spool file, MQTT session and last will.

A walk is whatever the device answered, so the profiles read it through ``Row``: a value
unfit for its use (out of SNMP's range, too long for the contract, not printable, under
an index no component id can hold) reads as absent and is noted in ``Skipped``, which the
reporter logs when it changes; what reaches MQTT always keeps to the contract.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
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
from agent.messages import Component, ComponentState, Reading
from agent.probes.base import MemoryState, ProbeResult, StateStore
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

Walk = Mapping[str, Scalar]

#: Rows kept per table: 16 times the largest table a profile knows (a c7000's 16 bays), and
#: few enough that every table at its limit stays within the schema's 4,096 components.
MAX_ROWS = 256
#: Characters of a row index (the OID after the column): a c7000's are one or two digits;
#: the contract allows 200 after a component's kind and 128 in a slot.
MAX_INDEX = 64
#: Characters of a walked text: the contract's limit for a serial and a slot ...
MAX_TEXT = 128
MAX_MODEL = 256  # ... and for a model
#: The integers SNMP carries (RFC 2578): Integer32's lowest to Counter64's highest. Beyond
#: them a value is no SNMP number, and as a float it could overflow.
SNMP_MIN, SNMP_MAX = -(2**31), 2**64 - 1
_COLUMN = re.compile(r"[0-9]{1,10}")  # one sub-identifier
_INDEX = re.compile(r"[0-9]{1,10}(?:\.[0-9]{1,10})*")  # the sub-identifiers after a column


def _snmp_int(value: int) -> bool:
    """Whether an int is one SNMP can carry (compared, not ``in range``: that walks a range
    one by one for an int subclass such as bool)."""
    return SNMP_MIN <= value <= SNMP_MAX


def _show(value: Scalar) -> str:
    """A walked value, short enough for a log line."""
    if isinstance(value, int):
        return str(value) if _snmp_int(value) else f"an integer of {value.bit_length()} bits"
    return repr(value[:40]) + ("..." if len(value) > 40 else "")


class Skipped:
    """Walked values a profile could not use: each counted once, the first few with why."""

    KEEP = 5  # reasons kept: enough to find the device's fault, few enough for one log line

    def __init__(self) -> None:
        """Nothing skipped yet."""
        self.seen: set[str] = set()
        self.reasons: list[str] = []

    def add(self, oid: str, why: str) -> None:
        """Note that the value at ``oid`` was not used, and why."""
        if oid not in self.seen:
            self.seen.add(oid)
            if len(self.reasons) < self.KEEP:
                self.reasons.append(f"{oid[:80]}: {why}")

    def __str__(self) -> str:
        """One line: how many were skipped, and the first reasons."""
        more = len(self.seen) - len(self.reasons)
        return (f"{len(self.seen)} walked values skipped: {'; '.join(self.reasons)}"
                + (f"; and {more} more" if more else ""))


class Row:
    """One row of a conceptual table; a value unfit for its use reads as absent, noted."""

    def __init__(self, entry: str, index: str, values: Mapping[int, Scalar],
                 skipped: Skipped) -> None:
        """The values of row ``index`` of table ``entry``, by column number."""
        self.entry, self.index, self.values, self.skipped = entry, index, values, skipped

    def _skip(self, column: int, why: str) -> None:
        """Note one value as not used."""
        self.skipped.add(f"{self.entry}.{column}.{self.index}", why)

    def number(self, column: int, default: int = -1) -> int:
        """A column as an int (absent, not a number or out of SNMP's range: ``default``)."""
        value = self.values.get(column)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:  # text that is no number (or has over 4,300 digits)
            self._skip(column, f"{_show(value)} is not a number")
            return default
        if not _snmp_int(number):
            self._skip(column, f"{_show(number)} is out of SNMP's range")
            return default
        return number

    def text(self, column: int, limit: int = MAX_TEXT) -> str:
        """A column as text ("" when absent, longer than ``limit`` or not printable)."""
        value = self.values.get(column)
        if value is None:
            return ""
        if isinstance(value, int):
            if _snmp_int(value):
                return str(value)
            self._skip(column, f"{_show(value)} is out of SNMP's range")
            return ""
        if len(value) > limit:
            self._skip(column, f"text of {len(value)} characters (at most {limit})")
            return ""
        if not value.isprintable():
            self._skip(column, f"{_show(value)} is not printable")
            return ""
        return value


def table(walk: Walk, entry: str, skipped: Skipped | None = None) -> dict[str, Row]:
    """Rows of a conceptual table by index; a cell under no usable index, and every row past
    the first MAX_ROWS, is skipped."""
    skipped = Skipped() if skipped is None else skipped
    prefix = entry + "."
    cells: dict[str, dict[int, Scalar]] = {}
    for oid, value in walk.items():
        if not oid.startswith(prefix):
            continue
        column, _, index = oid[len(prefix):].partition(".")
        if (not _COLUMN.fullmatch(column) or len(index) > MAX_INDEX
                or not _INDEX.fullmatch(index)):
            skipped.add(oid, f"no column and index (at most {MAX_INDEX} characters) under "
                             "its table")
            continue
        row = cells.get(index)
        if row is None:
            if len(cells) >= MAX_ROWS:
                skipped.add(oid, f"its table has over {MAX_ROWS} rows")
                continue
            row = cells[index] = {}
        row[int(column)] = value
    return {index: Row(entry, index, values, skipped) for index, values in cells.items()}


@dataclass(frozen=True)
class Profile:
    """How one kind of device is read: the subtrees to walk and what they mean."""

    name: str
    roots: tuple[str, ...]
    read: Callable[[Walk, Skipped], ProbeResult]
    read_chassis: Callable[[Walk, Skipped], dict[str, str | None]]

    def parse(self, walk: Walk, skipped: Skipped | None = None) -> ProbeResult:
        """A walk as readings, states and inventory; unusable values noted in ``skipped``."""
        return self.read(walk, Skipped() if skipped is None else skipped)

    def chassis(self, walk: Walk, skipped: Skipped | None = None) -> dict[str, str | None]:
        """Vendor, model and serial from a walk; unusable values noted in ``skipped``."""
        return self.read_chassis(walk, Skipped() if skipped is None else skipped)


# -- HP BladeSystem Onboard Administrator (CPQRACK-MIB) -----------------------------------
# Columns from CPQRACK-MIB; the recording in tests/fixtures/snmp is a real c7000 G2.
_RACK = "1.3.6.1.4.1.232.22.2"
_ENCLOSURE = _RACK + ".3.1.1.1"  # 3 model, 7 serial, 8 firmware
_TEMP = _RACK + ".3.1.2.1"  # 5 location, 6 current C, 7 threshold C, 8 condition
_FAN = _RACK + ".3.1.3.1"  # 6 part, 8 present, 11 condition
_POWER = _RACK + ".3.3.1.1"  # 5 redundant, 9 condition
#: 5 serial, 6 part, 10 output W, 14 status, 15 input line, 16 present, 17 condition
_PSU = _RACK + ".5.1.1.1"
#: cpqRack*Condition: other(1) ok(2) degraded(3) failed(4).
_CONDITION = {1: "other", 2: "ok", 3: "degraded", 4: "failed"}
_PRESENT = 3  # cpqRack*Present: other(1) absent(2) present(3)
_NOT_REDUNDANT = 2  # cpqRackPowerEnclosureRedundant: other(1) notRedundant(2) redundant(3)
_PSU_STATUS = {1: "noError", 2: "generalFailure", 3: "bistFailure", 4: "fanFailure",
               5: "tempFailure", 6: "interlockOpen", 7: "epromFailed", 8: "vrefFailed",
               9: "dacFailed", 10: "ramTestFailed", 11: "voltageChannelFailed",
               12: "orringdiodeFailed", 13: "brownOut", 14: "giveupOnStartup",
               15: "nvramInvalid", 16: "calibrationTableInvalid"}
_INPUT_LINE = {1: "noError", 2: "lineOverVoltage", 3: "lineUnderVoltage", 4: "lineHit",
               5: "brownOut", 6: "linePowerLoss"}


def _judge(condition: int, failure: str) -> tuple[str, str | None]:
    """A CPQRACK condition as (status, slug): failed -> ``failure``, degraded -> warning."""
    if condition == 4:
        return "failed", failure
    if condition == 3:
        return "warning", "bmc_warning"
    return "ok", None


_Parts = tuple[list[Reading], list[ComponentState], list[Component], dict[str, Any]]


def _hp_psus(walk: Walk, skipped: Skipped) -> _Parts:
    """Power supplies: lost when failed, not noError, or without input line."""
    readings: list[Reading] = []
    states: list[ComponentState] = []
    inventory: list[Component] = []
    evidence: dict[str, Any] = {}
    for index, row in sorted(table(walk, _PSU, skipped).items()):
        if row.number(16) != _PRESENT:
            continue  # an empty bay is not a part
        cid, serial = f"psu:{index}", row.text(5).strip() or None
        status_code, line_code = row.number(14), row.number(15)
        status, slug = _judge(row.number(17), "psu_lost")
        if status_code not in (-1, 1) or line_code not in (-1, 1):
            status, slug = "failed", "psu_lost"
        detail = None
        if status != "ok":
            detail = (f"condition {_CONDITION.get(row.number(17), '?')}, status "
                      f"{_PSU_STATUS.get(status_code, status_code)}, input "
                      f"{_INPUT_LINE.get(line_code, line_code)}")
            evidence[cid] = {"snmp": {"cpqRackPowerSupplyStatus": status_code,
                                      "cpqRackPowerSupplyInputLineStatus": line_code,
                                      "cpqRackPowerSupplyCondition": row.number(17)}}
        states.append(ComponentState(cid, "psu", status, slot=index, serial=serial,
                                     failure=slug, detail=detail))
        readings.append(Reading(cid, "psu.output_watts", float(row.number(10, 0))))
        inventory.append(Component(cid, "psu", slot=index, model=row.text(6, MAX_MODEL) or None,
                                   serial=serial))
    return readings, states, inventory, evidence


def _hp_parse(walk: Walk, skipped: Skipped) -> ProbeResult:
    """An Onboard Administrator's walk as readings, states and inventory."""
    readings, states, inventory, evidence = _hp_psus(walk, skipped)
    for index, row in sorted(table(walk, _POWER, skipped).items()):
        redundant = row.number(5) != _NOT_REDUNDANT
        states.append(ComponentState(
            "psu:redundancy", "psu", "ok" if redundant else "failed",
            failure=None if redundant else "psu_redundancy_lost",
            detail=None if redundant else f"power enclosure {index} not redundant"))
        status, slug = _judge(row.number(9), "bmc_critical")
        states.append(ComponentState("bmc:power", "bmc", status, failure=slug,
                                     detail=f"power subsystem {_CONDITION.get(row.number(9))}"
                                     if slug else None))
    for index, row in sorted(table(walk, _FAN, skipped).items()):
        if row.number(8) != _PRESENT:
            continue
        status, slug = _judge(row.number(11), "fan_failed")
        states.append(ComponentState(f"fan:{index}", "fan", status, slot=index, failure=slug))
        inventory.append(Component(f"fan:{index}", "fan", slot=index,
                                   model=row.text(6, MAX_MODEL) or None))
    for index, row in sorted(table(walk, _TEMP, skipped).items()):
        current = row.number(6)
        if current < 0:
            continue  # -1: no sensor behind this row
        cid = f"temp:{index}"
        readings.append(Reading(cid, "temp.celsius", float(current)))
        if row.number(7) > 0:
            readings.append(Reading(cid, "temp.crit_celsius", float(row.number(7))))
        status, slug = _judge(row.number(8), "temp_critical")
        states.append(ComponentState(cid, "temp", status, slot=row.text(5) or None,
                                     failure=slug))
    watts = sum(r.value for r in readings if r.metric == "psu.output_watts")
    # The enclosure has no power-state object: it is on when its supplies deliver power.
    readings += [Reading("bmc:power", "bmc.power_watts", watts),
                 Reading("bmc:power", "bmc.power_on", 1.0 if watts > 0 else 0.0)]
    return ProbeResult(tuple(readings), tuple(states), tuple(inventory), evidence)


def _hp_chassis(walk: Walk, skipped: Skipped) -> dict[str, str | None]:
    """Vendor, model and serial of the enclosure."""
    row = table(walk, _ENCLOSURE, skipped).get("1") or Row(_ENCLOSURE, "1", {}, skipped)
    return {"vendor": "HP", "model": row.text(3, MAX_MODEL).strip() or None,
            "serial": row.text(7).strip() or None}


# -- APC rack PDU, PowerNet-MIB rPDU2 (AP79xx, AP86xx, AP89xx) ---------------------------
_RPDU2 = "1.3.6.1.4.1.318.1.1.26"
_PDU_IDENT = _RPDU2 + ".2.1"  # 8 model, 9 serial
#: 5 low-load, 6 near-overload, 7 overload thresholds (A)
_PHASE_CONFIG = _RPDU2 + ".6.1.1"
_PHASE = _RPDU2 + ".6.3.1"  # 4 load state, 5 current (tenths of A), 6 voltage (V)
#: rPDU2PhaseStatusLoadState: lowLoad(1) normal(2) nearOverload(3) overload(4)
_LOAD_STATE = {1: "lowLoad", 2: "normal", 3: "nearOverload", 4: "overload"}


def _apc_parse(walk: Walk, skipped: Skipped) -> ProbeResult:
    """Phases of an APC rack PDU: overload is critical, near overload a warning."""
    readings: list[Reading] = []
    states: list[ComponentState] = []
    inventory: list[Component] = []
    config = table(walk, _PHASE_CONFIG, skipped)
    for index, row in sorted(table(walk, _PHASE, skipped).items()):
        # the schema's component kinds have no "pdu": a PDU's phases are parts of its chassis
        cid, load = f"chassis:phase{index}", row.number(4)
        readings.append(Reading(cid, "pdu.phase_amps", row.number(5, 0) / 10))  # tenths of A
        if row.number(6) > 0:
            readings.append(Reading(cid, "pdu.phase_volts", float(row.number(6))))
        limit = config[index].number(7) if index in config else -1
        if limit > 0:
            readings.append(Reading(cid, "pdu.phase_overload_amps", float(limit)))
        status, slug = {4: ("failed", "bmc_critical"), 3: ("warning", "bmc_warning")}.get(
            load, ("ok", None))
        states.append(ComponentState(cid, "chassis", status, slot=index, failure=slug,
                                     detail=f"phase load {_LOAD_STATE.get(load, load)}"
                                     if slug else None))
        inventory.append(Component(cid, "chassis", slot=index))
    return ProbeResult(tuple(readings), tuple(states), tuple(inventory))


def _apc_chassis(walk: Walk, skipped: Skipped) -> dict[str, str | None]:
    """Vendor, model and serial of the PDU."""
    row = table(walk, _PDU_IDENT, skipped).get("1") or Row(_PDU_IDENT, "1", {}, skipped)
    return {"vendor": "APC", "model": row.text(8, MAX_MODEL).strip() or None,
            "serial": row.text(9).strip() or None}


PROFILES: dict[str, Profile] = {
    "apc-rpdu2": Profile("apc-rpdu2", (_PDU_IDENT, _PHASE_CONFIG, _PHASE), _apc_parse,
                         _apc_chassis),
    "hp-onboard-administrator": Profile(
        "hp-onboard-administrator",
        (_ENCLOSURE, _TEMP, _FAN, _POWER, _PSU),
        _hp_parse,
        _hp_chassis,
    ),
}


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
