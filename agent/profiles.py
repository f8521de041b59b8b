"""SNMP device profiles: data plus pure functions, no I/O and no pysnmp.

A walk (dotted OID -> value, as ``agent.snmp`` returns it) becomes readings, component
states and inventory, the same ProbeResult a local probe returns, so the collector cannot
tell a proxied host from an agent's. The runner that polls the devices is
``agent.proxy``; the configuration checks a target's profile name against ``PROFILES``
here, which is why this module must not import the configuration or the runner.

A walk is whatever the device answered, so the profiles read it through ``Row``: a value
unfit for its use (out of SNMP's range, too long for the contract, not printable, under
an index no component id can hold) reads as absent and is noted in ``Skipped``, which the
reporter logs when it changes; what reaches MQTT always keeps to the contract.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent.messages import Component, ComponentState, Reading
from agent.probes.base import ProbeResult

if TYPE_CHECKING:  # the type only: importing agent.snmp loads pysnmp (about 0.3 s)
    from agent.snmp import Scalar

Walk = Mapping[str, "Scalar"]

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
