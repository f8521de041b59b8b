"""Facility correlation: many hosts of one rack, PDU or switch silent within a minute. Pure.

A rack, a PDU or a switch that fails takes all its hosts at once; their last messages
then lie within one telemetry interval of each other. One facility incident (power or
network, with its own SLA policy) links them, instead of a host_down incident per host.

Which scope explains a group (`choose`): for each scope the pivot host belongs to (its
PDU, its switch, its rack) the cluster is the hosts of that scope silent within the window
of the pivot; a scope qualifies when its cluster is a facility (`is_facility`). Among the
qualifying scopes the one whose cluster holds the most silent hosts wins (a whole rack dark
is the rack, not one of its two PDUs); on a tie the narrowest wins, the scope with the
fewest hosts in all (a PDU whose 20 hosts all went down explains them better than the rack
of 40 that holds them); on a further tie (a PDU, a switch and a rack holding the same hosts)
the BMCs decide: when most that answered say the hosts are powered on, the switch, then the
rack, then the PDU; otherwise the PDU, then the rack, then the switch (no evidence of a
network fault makes a switch the cause). A PDU's cause is power, a switch's network; a
rack's is guessed from the BMCs (`cause`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

Scope = Literal["pdu", "switch", "rack"]
#: The narrowest first: where the sweep looks for an open facility incident of a host.
SCOPES: tuple[Scope, ...] = ("pdu", "switch", "rack")
#: Order on a full tie (same silent hosts, same size), by what the BMCs say (module doc).
_TIE_POWER: tuple[Scope, ...] = ("pdu", "rack", "switch")
_TIE_NETWORK: tuple[Scope, ...] = ("switch", "rack", "pdu")

#: A host counts as a suspect for correlation once it missed this many intervals: by the
#: time the first host of a dead rack is confirmed down (3 intervals), every other host of
#: the same event has been silent at least 2 intervals, so all are seen together.
SUSPECT_INTERVALS = 1.5


@dataclass(frozen=True)
class FacilityParams:
    """Thresholds of correlation (collector config keys facility_*)."""

    min_hosts: int = 5
    rack_fraction: float = 0.5
    window_s: float = 60.0


@dataclass(frozen=True)
class Silent:
    """A host that stopped talking: where it sits, when it last spoke, what its BMC says."""

    host: str
    site: str
    rack: str | None
    last_message: datetime
    bmc_on: bool | None = None  # None: no fresh BMC word
    pdu: str | None = None
    switch: str | None = None

    def scope_id(self, scope: Scope) -> str | None:
        """The id of the rack, PDU or switch this host hangs on (None: not declared)."""
        return {"rack": self.rack, "pdu": self.pdu, "switch": self.switch}[scope]


@dataclass(frozen=True)
class Choice:
    """The scope that explains a group of silent hosts, and the group."""

    scope: Scope
    scope_id: str
    cause: str  # power | network
    hosts: tuple[Silent, ...]
    scope_hosts: int  # hosts the scope has in all

    @property
    def rack(self) -> str | None:
        """The rack of most linked hosts (ties: the first by name), for readers of racks."""
        if self.scope == "rack":
            return self.scope_id
        racks = Counter(h.rack for h in self.hosts if h.rack is not None)
        return min(racks, key=lambda r: (-racks[r], r)) if racks else None


def is_suspect(last_message: datetime, interval_s: float, now: datetime) -> bool:
    """Silent long enough to be counted with its rack (not yet confirmed down)."""
    return now - last_message > timedelta(seconds=interval_s * SUSPECT_INTERVALS)


def cluster(pivot: Silent, silent: Sequence[Silent], window_s: float,
            scope: Scope = "rack") -> list[Silent]:
    """The hosts of pivot's rack (PDU, switch) silent within window_s of it (pivot included)."""
    span = timedelta(seconds=window_s)
    key = pivot.scope_id(scope)
    return sorted((s for s in silent if s.site == pivot.site and s.scope_id(scope) == key
                   and abs(s.last_message - pivot.last_message) <= span),
                  key=lambda s: (s.last_message, s.host))


def choose(pivot: Silent, silent: Sequence[Silent], scope_hosts: Mapping[Scope, int],
           p: FacilityParams) -> Choice | None:
    """The scope that best explains pivot's silent group (module docstring), or None.

    scope_hosts: how many hosts pivot's rack, PDU and switch have in all.
    """
    found: list[Choice] = []
    for scope in SCOPES:
        key = pivot.scope_id(scope)
        if key is None:
            continue
        group = cluster(pivot, silent, p.window_s, scope)
        total = scope_hosts.get(scope, 0)
        if is_facility(len(group), total, p):
            why = {"pdu": "power", "switch": "network"}.get(scope) or cause(group)
            found.append(Choice(scope, key, why, tuple(group), total))
    if not found:
        return None
    seen = {h.host: h for c in found for h in c.hosts}
    tie = _TIE_NETWORK if cause(list(seen.values())) == "network" else _TIE_POWER
    return min(found, key=lambda c: (-len(c.hosts), c.scope_hosts, tie.index(c.scope)))


def is_facility(size: int, rack_hosts: int, p: FacilityParams) -> bool:
    """Whether this many hosts of a rack of rack_hosts going down together is the facility.

    Two hosts at least: one host alone is a host, whatever the share of its rack.
    """
    return size >= 2 and (size >= p.min_hosts or size >= p.rack_fraction * rack_hosts)


def cause(hosts: Sequence[Silent]) -> str:
    """Network when most BMCs that answered say the hosts are powered on, else power."""
    words = [s.bmc_on for s in hosts if s.bmc_on is not None]
    return "network" if words and sum(words) * 2 > len(words) else "power"


def resolved(linked: int, back: int) -> bool:
    """The facility is fixed once half its hosts are back; the rest are then hosts' own."""
    return linked > 0 and back * 2 >= linked
