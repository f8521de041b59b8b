"""Verification: the agent reports the failed part healthy again. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Observation:
    """The latest reported status of one component of the incident's host."""

    id: str
    kind: str
    slot: str | None
    serial: str | None
    status: str
    status_ts: datetime | None


@dataclass(frozen=True)
class Failed:
    """The failed part as the incident recorded it."""

    component: str
    kind: str
    slot: str | None
    serial: str | None
    detected_at: datetime


def proof(failed: Failed, observations: Sequence[Observation]) -> Observation | None:
    """The earliest observation that proves the fix (its status_ts is the fix time), or None.

    A disk is fixed by a new serial in its slot reporting healthy; the same disk turning
    healthy again is not a fix. Other parts are fixed when the same component reports ok.
    """
    found: list[Observation] = []
    for o in observations:
        if o.status != "ok" or o.status_ts is None or o.status_ts <= failed.detected_at:
            continue
        if failed.kind == "disk":
            if (o.kind == "disk" and failed.slot is not None and o.slot == failed.slot
                    and o.serial and o.serial != failed.serial):
                found.append(o)
        elif o.id == failed.component:
            found.append(o)
    return min(found, key=lambda o: o.status_ts or failed.detected_at) if found else None
