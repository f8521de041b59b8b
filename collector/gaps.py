"""Seq gaps: which missing seqs are lost messages, and when to ask the agent for them.

Every host numbers its messages 1, 2, 3, ... (the seq survives restarts in its spool), so
a seq the database never got is a message the broker acknowledged to the agent and then
lost: a broker restart, a shared subscription not yet restored. Pure logic: the scan in
collector.gapstore reads the keys and hands them here with ``now``.

- A hole between two stored seqs is a gap once the seq after it has been stored for
  ``grace_s``: the agent drains births and events before old telemetry, and two
  collectors store a host's messages out of order, so a hole younger than that is
  usually a message on its way.
- A seq reserved for a last will (the birth names it) that never fired is no gap.
- A gap is asked for at once, then after 30 s, 1, 2, 4, 8 min, then every 10 min until
  the agent's retention (24 h) ends; it is recorded unfilled, with its reason, after
  ``give_up_s``, and still filled if it comes later.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

#: The agent takes at most this many seqs in one resend (agent.commands.MAX_RANGE).
MAX_RANGE = 10_000
FIRST_RETRY_S = 30.0
RETRY_CAP_S = 600.0


@dataclass(frozen=True)
class Policy:
    """How long holes wait and gaps are asked for."""

    grace_s: float = 10.0
    give_up_s: float = 900.0
    retention_s: float = 24 * 3600.0


@dataclass(frozen=True)
class Hole:
    """Seqs after+1 .. before-1 are not stored; ``before`` was stored at ``stored_at``."""

    after: int
    before: int
    stored_at: datetime


@dataclass(frozen=True)
class Keys:
    """What the scan read of one host above its watermark."""

    host: str
    mark: int  # every seq up to here is stored, reserved or a recorded gap
    top: int  # the highest stored seq
    holes: Sequence[Hole]  # in seq order


@dataclass(frozen=True)
class Gap:
    """A run of missing seqs of one host."""

    host: str
    first: int
    last: int

    @property
    def size(self) -> int:
        """How many seqs it spans."""
        return self.last - self.first + 1


@dataclass(frozen=True)
class Scan:
    """New gaps, and each host's new watermark."""

    gaps: list[Gap]
    marks: dict[str, int]


def runs(seqs: Iterable[int], cap: int = MAX_RANGE) -> list[tuple[int, int]]:
    """Sorted seqs as (first, last) runs of consecutive seqs, none longer than ``cap``."""
    out: list[tuple[int, int]] = []
    for s in sorted(set(seqs)):
        if out and s == out[-1][1] + 1 and s - out[-1][0] < cap:
            out[-1] = (out[-1][0], s)
        else:
            out.append((s, s))
    return out


def _split(first: int, last: int, reserved: Iterable[int]) -> list[tuple[int, int]]:
    """first..last without the reserved seqs, as runs of at most MAX_RANGE."""
    skip = sorted(s for s in set(reserved) if first <= s <= last)
    out: list[tuple[int, int]] = []
    start = first
    for s in [*skip, last + 1]:
        end = s - 1
        while start <= end:
            stop = min(end, start + MAX_RANGE - 1)
            out.append((start, stop))
            start = stop + 1
        start = s + 1
    return out


def scan(hosts: Iterable[Keys], reserved: Mapping[str, Iterable[int]], now: datetime,
         policy: Policy) -> Scan:
    """The gaps old enough to be lost messages, and how far each watermark moves.

    A watermark stops before the first hole still within grace: that hole is looked at
    again next time, and nothing after it is recorded twice.
    """
    young = now - timedelta(seconds=policy.grace_s)
    gaps: list[Gap] = []
    marks: dict[str, int] = {}
    for k in hosts:
        mark = k.top
        for hole in sorted(k.holes, key=lambda h: h.after):
            if hole.stored_at > young:
                mark = hole.after
                break
            gaps += [Gap(k.host, a, b) for a, b in _split(hole.after + 1, hole.before - 1,
                                                           reserved.get(k.host, ()))]
        if mark > k.mark:
            marks[k.host] = mark
    return Scan(gaps, marks)


class Step(Enum):
    """What to do with an unsettled gap now."""

    WAIT = "wait"
    FILLED = "filled"
    ASK = "ask"
    GIVE_UP = "give up"  # record it unfilled, and go on asking
    EXPIRE = "expire"  # past the agent's retention: nothing left to ask for


@dataclass(frozen=True)
class Open:
    """An unsettled gap as the database holds it, with what is stored of it now."""

    id: int
    host: str
    first: int
    last: int
    seen_at: datetime
    requests: int
    next_request_at: datetime
    unfilled: bool  # already recorded unfilled
    present: int  # of its seqs, how many are stored now
    host_online: bool
    host_since: datetime | None  # since when the host is in that state

    @property
    def missing(self) -> int:
        """Seqs still missing."""
        return self.last - self.first + 1 - self.present


@dataclass(frozen=True)
class Decision:
    """One gap's step, its next request time and, when given up, why."""

    step: Step
    next_request_at: datetime | None = None
    reason: str | None = None


def retry_after(requests: int) -> float:
    """Seconds from request number ``requests`` (1 = the first) to the next."""
    return min(RETRY_CAP_S, FIRST_RETRY_S * 2.0 ** max(0, requests - 1))


def decide(g: Open, now: datetime, policy: Policy) -> Decision:
    """Filled, ask again, give up, or wait."""
    if g.missing <= 0:
        return Decision(Step.FILLED)
    age = (now - g.seen_at).total_seconds()
    if age >= policy.retention_s:
        return Decision(Step.EXPIRE, reason=_why(g, now) + "; past the agent's retention")
    if not g.unfilled and age >= policy.give_up_s:
        return Decision(Step.GIVE_UP, reason=_why(g, now))
    if now >= g.next_request_at:
        return Decision(Step.ASK, now + timedelta(seconds=retry_after(g.requests + 1)))
    return Decision(Step.WAIT)


def _why(g: Open, now: datetime) -> str:
    """An operator's reading of why a gap is not filled."""
    minutes = (now - g.seen_at).total_seconds() / 60
    seqs = f"seq {g.first}" if g.first == g.last else f"seqs {g.first}-{g.last}"
    said = f"{g.missing} of {seqs} not resent within {minutes:.0f} min, asked {g.requests} times"
    since = f" since {g.host_since.isoformat(timespec='seconds')}" if g.host_since else ""
    if not g.host_online:
        return (f"{said}; the host is offline{since}: it gets the request once it is back "
                "(or the messages are gone if its spool was lost)")
    return (f"{said}; the host is online{since}: its agent may predate resend, or no longer "
            "holds them (spool cap, retention, spool file replaced); see its log")
