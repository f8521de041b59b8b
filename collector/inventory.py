"""Inventory from birth: what changed between a host's two births, and which part vanished. Pure.

Parts are matched by slot where they have one (a replaced disk has a new id, `disk:<serial>`,
in the same slot), else by id. A new serial in a slot is a replacement, which is what
verifies a fix; a part of the previous birth absent from the newer one is a failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: Kinds whose disappearance is a hardware failure. Not nic (virtual interfaces come and go),
#: temp/fs/raid/bmc (sensors, file systems and arrays are configuration, not parts).
MISSING_FAILURE: dict[str, str] = {
    "disk": "disk_missing",
    "dimm": "dimm_missing",
    "psu": "part_missing",
    "fan": "part_missing",
    "cpu": "part_missing",
}
MISSING_SLUGS: frozenset[str] = frozenset(MISSING_FAILURE.values())


@dataclass(frozen=True)
class Part:
    """One inventory item as a birth lists it (or as the store remembers it)."""

    id: str
    kind: str
    slot: str | None
    serial: str | None


@dataclass(frozen=True)
class Change:
    """One inventory change between two births; `part` is the newer one (the old if missing)."""

    part: Part
    change: str  # added | replaced | missing | returned
    old_serial: str | None
    new_serial: str | None


def _key(p: Part) -> tuple[str, str]:
    """Where a part sits: its kind and slot, or its id when it has no slot."""
    return (p.kind, f"slot:{p.slot}") if p.slot else (p.kind, f"id:{p.id}")


def diff(previous: Sequence[Part], current: Sequence[Part],
         missing_before: Sequence[Part] = ()) -> list[Change]:
    """Changes from the previous birth to this one; no previous birth means no changes.

    `missing_before` are parts already reported missing: one that is back is `returned`
    (same serial) or `replaced` (new serial), not merely `added`.
    """
    if not previous:
        return []
    old = {_key(p): p for p in previous}
    gone = {_key(p): p for p in missing_before}
    out: list[Change] = []
    for p in current:
        k = _key(p)
        before = old.get(k)
        if before is None and k in gone:
            was = gone[k]
            same = was.serial == p.serial or not (was.serial and p.serial)
            out.append(Change(p, "returned" if same else "replaced", was.serial, p.serial))
        elif before is None:
            out.append(Change(p, "added", None, p.serial))
        elif before.serial and p.serial and before.serial != p.serial:
            out.append(Change(p, "replaced", before.serial, p.serial))
    now = {_key(p) for p in current}
    out.extend(Change(p, "missing", p.serial, None) for k, p in old.items()
               if k not in now and p.kind in MISSING_FAILURE)
    return out
