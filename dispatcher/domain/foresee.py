"""A breach foreseen at dispatch: the predicted fix already lands past the deadline. Pure.

The assignment scores each technician by the predicted time to a verified fix (walk, spare
pickup, their repair time for the kind, verification: dispatcher.domain.score). When even the
chosen technician's fix lands past the deadline, waiting for the 45-minute risk timer wastes
the minutes a manager could use: the prediction and the options go to them at once. The
options are what a manager can change: another technician of the site (free now, or taken off
their current job) and, when no spare is on site, a spare held at another site.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dispatcher.domain import score

#: A spare carried from another site of the same metro by a driver or a colleague: about an
#: hour and a half door to door (the depot's same-day courier is score.NO_SPARE_DELAY, 4 h).
SITE_TRANSFER = timedelta(minutes=90)
MAX_OPTIONS = 5  # a phone's notification shows a few lines; the rest are on /ops


@dataclass(frozen=True)
class Option:
    """Something a manager can do instead, with the fix it would give."""

    kind: str  # "technician" or "spare"
    name: str  # the technician's id, or the site that holds the spare
    how: str  # in words: "free now", "taken off their current job", "spare carried from iad2"
    predicted_fix: datetime
    late_minutes: float  # past the deadline; negative: in time


@dataclass(frozen=True)
class Foreseen:
    """The dispatch's prediction, how late it is and the options, soonest fix first."""

    technician: str
    predicted_fix: datetime
    deadline: datetime
    late_minutes: float
    options: tuple[Option, ...]


def late_minutes(fix: datetime, deadline: datetime) -> float:
    """Minutes past the deadline, one decimal (negative: in time)."""
    return round((fix - deadline).total_seconds() / 60, 1)


def technician_options(job: score.Job, chosen: str, profiles: Sequence[score.Profile],
                       layout: score.Layout, site: str, now: datetime,
                       tz: ZoneInfo) -> list[Option]:
    """Every other technician who can take the job: free now, after their queue, or taken
    off their current job (the sooner of the two when they are busy)."""
    out = []
    for p in profiles:
        if p.tech.id == chosen or not score.can_take(job, p, site, now, tz):
            continue
        busy = p.busy_until > now
        queued = score.finish(job, p, layout, max(now, p.busy_until))
        dropped = score.finish(job, p, layout, now) if busy else None
        if dropped is not None and (queued is None or dropped < queued):
            out.append(Option("technician", p.tech.id, "taken off their current job", dropped,
                              late_minutes(dropped, job.deadline)))
        elif queued is not None:
            how = "after their current job" if busy else "free now"
            out.append(Option("technician", p.tech.id, how, queued,
                              late_minutes(queued, job.deadline)))
    return out


def spare_options(job: score.Job, chosen: score.Profile | None, layout: score.Layout,
                  now: datetime, elsewhere: Sequence[tuple[str, int]]) -> list[Option]:
    """No fitting spare on site: each other site that holds one, carried over."""
    if job.spare is not False or chosen is None:
        return []
    out = []
    on_site = replace(job, spare=None)  # carried to the rack: no store-room pickup
    for other, available in elsewhere:
        if available <= 0:
            continue
        fix = max(now, chosen.busy_until) + SITE_TRANSFER + score.duration(on_site, chosen,
                                                                             layout)
        out.append(Option("spare", other, f"spare carried from {other}", fix,
                          late_minutes(fix, job.deadline)))
    return out


def foresee(job: score.Job, choice: score.Choice, profiles: Sequence[score.Profile],
            layout: score.Layout, site: str, now: datetime, tz: ZoneInfo,
            elsewhere: Sequence[tuple[str, int]] = ()) -> Foreseen | None:
    """The breach the dispatch already predicts, with the options; None when the fix fits."""
    if choice.finish <= job.deadline:
        return None
    chosen = next((p for p in profiles if p.tech.id == choice.technician), None)
    options = technician_options(job, choice.technician, profiles, layout, site, now, tz) \
        + spare_options(job, chosen, layout, now, elsewhere)
    options.sort(key=lambda o: (o.predicted_fix, o.kind, o.name))
    return Foreseen(choice.technician, choice.finish, job.deadline,
                    late_minutes(choice.finish, job.deadline), tuple(options[:MAX_OPTIONS]))


def _hm(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%H:%MZ")


def sentence(f: Foreseen) -> str:
    """The prediction and the options in words, for the manager's phone and the timeline."""
    head = (f"Breach foreseen at dispatch: {f.technician}'s fix is predicted at "
            f"{_hm(f.predicted_fix)}, {f.late_minutes:g} min past the deadline "
            f"{_hm(f.deadline)}.")
    if not f.options:
        return head + (" No other technician or spare would be sooner: call someone in, or "
                       "agree a pause with the customer.")
    told = "; ".join(
        f"{o.name} ({o.how}): fix {_hm(o.predicted_fix)}, "
        + (f"{o.late_minutes:g} min late" if o.late_minutes > 0 else "in time")
        for o in f.options)
    return f"{head} Options: {told}."


def as_detail(f: Foreseen) -> dict[str, object]:
    """The timeline entry's detail (JSON): what /ops shows and the message was made of."""
    return {"technician": f.technician, "predicted_fix": f.predicted_fix.isoformat(),
            "deadline": f.deadline.isoformat(), "late_minutes": f.late_minutes,
            "options": [{"kind": o.kind, "name": o.name, "how": o.how,
                         "predicted_fix": o.predicted_fix.isoformat(),
                         "late_minutes": o.late_minutes} for o in f.options]}
