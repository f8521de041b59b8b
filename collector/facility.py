"""Facility correlation: many hosts of one rack silent within a minute are one incident. Pure.

A rack that loses power or its switch takes all its hosts at once; their last messages
then lie within one telemetry interval of each other. One facility incident (power or
network, with its own SLA policy) links them, instead of a host_down incident per host.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

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


def is_suspect(last_message: datetime, interval_s: float, now: datetime) -> bool:
    """Silent long enough to be counted with its rack (not yet confirmed down)."""
    return now - last_message > timedelta(seconds=interval_s * SUSPECT_INTERVALS)


def cluster(pivot: Silent, silent: Sequence[Silent], window_s: float) -> list[Silent]:
    """The hosts of pivot's rack that went silent within window_s of it (pivot included)."""
    span = timedelta(seconds=window_s)
    return sorted((s for s in silent if s.site == pivot.site and s.rack == pivot.rack
                   and abs(s.last_message - pivot.last_message) <= span),
                  key=lambda s: (s.last_message, s.host))


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
