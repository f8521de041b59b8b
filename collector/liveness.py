"""Whether the collector's input flows, and what to do when it does not. Pure.

Three facts decide it, each read by the MQTT adapter and passed in with `now`:
connected to the broker, how long the oldest unacknowledged message has waited (our own
database or writers are behind), and when anything last arrived through our subscription.
Every collector publishes a canary every few seconds to a topic the shared subscription
matches, so a quiet fleet still sends each member of the group its share (Mosquitto deals
a shared subscription's messages round-robin: a collector's own canary usually reaches
another member, so "my canary came back" would be wrong half the time). A broker that
accepts the connection and resumes the session but delivers nothing is visible only this
way: Mosquitto 2.0 does not persist shared subscriptions, so after its restart a session
that is not subscribed again is present and deaf. Then resubscribe, then reconnect, and
report not ready meanwhile.

`InputGate` turns those facts into when host-down and facility detection may judge a
silence: never while our input is down, and only after the hosts had
`resume_intervals` intervals to speak again once it flows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class Action(StrEnum):
    """What the watchdog asks the adapter to do now."""

    NONE = "none"
    RESUBSCRIBE = "resubscribe"
    RECONNECT = "reconnect"


@dataclass(frozen=True)
class Observed:
    """The adapter's facts at one instant (monotonic seconds)."""

    now: float
    connected: bool
    connected_at: float | None  # when this connection opened
    heard_at: float | None  # when anything, a canary included, last arrived
    oldest_unacked_s: float  # 0 when nothing waits
    backpressured: bool  # our queue is full: the network thread is not reading


@dataclass(frozen=True)
class Verdict:
    """Readiness, its reasons and the action to take."""

    ready: bool
    flowing: bool  # input reaches us: the condition of judging hosts' silence
    reasons: tuple[str, ...]
    action: Action
    silent_s: float | None  # since anything last arrived (since connecting, if nothing did)


@dataclass(frozen=True)
class Limits:
    """collector.canary_timeout_s (silence allowed) and collector.stall_s."""

    canary_timeout_s: float = 15.0
    stall_s: float = 30.0


class Watchdog:
    """Escalates a silent subscription: resubscribe once, then reconnect every timeout."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._acted_at: float | None = None  # when the last recovery action was asked
        self._level = 0  # 0 nothing done, 1 resubscribed, 2 reconnected

    def judge(self, o: Observed, database_ok: bool) -> Verdict:
        """Readiness and the next action for these facts."""
        lim = self.limits
        reasons: list[str] = []
        if not o.connected:
            self._level, self._acted_at = 0, None
            reasons.append("broker disconnected")
        if not database_ok:
            reasons.append("database unavailable")
        if o.oldest_unacked_s > lim.stall_s:
            reasons.append(f"oldest unacknowledged message waited {o.oldest_unacked_s:.0f} s "
                           f"(limit {lim.stall_s:.0f} s)")
        heard = o.heard_at is not None and o.connected_at is not None \
            and o.heard_at >= o.connected_at
        since = o.heard_at if heard else o.connected_at
        age = None if since is None else o.now - since
        late = o.connected and age is not None and age > lim.canary_timeout_s
        action = Action.NONE
        if late:
            # A full queue stops the network thread reading (back-pressure): silent, but by
            # our own doing, and reconnecting would only add redeliveries.
            reasons.append(f"nothing heard for {age:.0f} s, not even a canary (limit "
                           f"{lim.canary_timeout_s:.0f} s)"
                           + ("; we are behind" if o.backpressured else ""))
            if not o.backpressured:
                action = self._escalate(o.now)
        elif heard:
            self._level, self._acted_at = 0, None
        elif o.connected:
            reasons.append("connected, waiting for the first message")
        flowing = o.connected and heard and not late
        return Verdict(not reasons and flowing, flowing, tuple(reasons), action, age)

    def _escalate(self, now: float) -> Action:
        """The next recovery step, at most one per canary timeout."""
        if self._acted_at is not None and now - self._acted_at < self.limits.canary_timeout_s:
            return Action.NONE
        self._acted_at = now
        self._level = min(self._level + 1, 2)
        return Action.RESUBSCRIBE if self._level == 1 else Action.RECONNECT


class InputGate:
    """When host silence may be judged: after our input flowed for a while (wall clock)."""

    def __init__(self, resume_intervals: int) -> None:
        self.resume_intervals = resume_intervals
        self.flowing_since: datetime | None = None  # None: input down, or never up yet

    def observe(self, now: datetime, flowing: bool) -> None:
        """Record whether input flows at now."""
        if not flowing:
            self.flowing_since = None
        elif self.flowing_since is None:
            self.flowing_since = now

    def hold(self, site_silent_fraction: float) -> Hold:
        """What the sweep needs of this gate now."""
        return Hold(self.flowing_since, self.resume_intervals, site_silent_fraction)


@dataclass(frozen=True)
class Hold:
    """What keeps the host-down sweep from accusing hosts of our own outage."""

    heard_since: datetime | None  # our input flows since then; None: it is down
    resume_intervals: int = 3
    site_silent_fraction: float = 0.9

    def judged_from(self, interval_s: float) -> datetime | None:
        """The earliest a host of this interval may be found silent; None while input is down.

        A host cannot have been heard before our input came back, so its silence counts
        from then: resume_intervals of its intervals later.
        """
        if self.heard_since is None:
            return None
        return self.heard_since + timedelta(seconds=interval_s * self.resume_intervals)


def silent_sites(silent_racks: dict[str, list[str | None]], reporting: dict[str, int],
                 fraction: float) -> set[str]:
    """Sites whose reporting hosts fell silent at once, wider than one rack: our outage.

    silent_racks: per site, the rack of each silent host; reporting: per site, how many
    hosts report at all. A rack, PDU or switch failing is a facility incident; a silence
    of nearly every host over several racks is far likelier our broker, our network or
    the site's uplink than every rack's power at once (a one-rack site stays judged).
    """
    held: set[str] = set()
    for site, racks in silent_racks.items():
        total = reporting.get(site, 0)
        if total and len(racks) >= fraction * total and len(set(racks)) >= 2:
            held.add(site)
    return held
