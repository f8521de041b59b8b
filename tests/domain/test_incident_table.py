"""dispatcher.domain.incident: the incident's and the job's transitions, as data."""

from __future__ import annotations

import pytest

from dispatcher.domain.incident import (
    JOB_TABLE,
    OPEN,
    TABLE,
    Event,
    Refused,
    job_step,
    resume_state,
    step,
)
from schemas.states import OPEN_STATES, IncidentState, JobState


def test_every_state_is_reached_and_only_closed_is_final() -> None:
    targets = {r.target for r in TABLE if r.target} | {IncidentState.DETECTED}
    assert targets | {resume_state(j) for j in JobState} >= set(IncidentState)
    sources = {s for r in TABLE for s in r.sources}
    assert set(IncidentState) - sources == {IncidentState.CLOSED}
    assert OPEN == OPEN_STATES


def test_the_promise_in_transitions() -> None:
    assert step("detected", Event.DISPATCH) is IncidentState.DISPATCHED
    assert step("replaced", Event.VERIFY) is IncidentState.VERIFIED
    assert step("paused", Event.VERIFY) is IncidentState.VERIFIED  # fixed while paused
    assert step("acknowledged", Event.DECLINE) is IncidentState.DETECTED
    assert step("paused", Event.RESUME, "on_site") is IncidentState.ON_SITE
    assert step("paused", Event.RESUME, "declined") is IncidentState.DETECTED
    assert step("verified", Event.CONFIRM) is IncidentState.CLOSED


@pytest.mark.parametrize(("state", "event"), [
    ("detected", Event.CONFIRM),  # only a verified fix closes
    ("replaced", Event.CONFIRM),
    ("closed", Event.VERIFY),
    ("verified", Event.PAUSE),
    ("paused", Event.PAUSE),
    ("on_site", Event.REASSIGN),  # the transfer is only for an unacknowledged job
    ("nonsense", Event.DISPATCH),
])
def test_a_transition_not_in_the_table_is_refused(state: str, event: Event) -> None:
    with pytest.raises(Refused, match=f"'{state}' cannot {event.value}; it can from"):
        step(state, event)


def test_jobs() -> None:
    assert job_step("dispatched", Event.ACKNOWLEDGE) is JobState.ACKNOWLEDGED
    assert job_step("replaced", Event.ACKNOWLEDGE) is None
    assert job_step("on_site", Event.VERIFY) is JobState.DONE
    finished = {JobState.DONE, JobState.DECLINED, JobState.CANCELLED}
    for sources, _ in JOB_TABLE.values():
        assert not sources & finished  # nothing leaves a finished job


def test_the_architecture_page_shows_this_table() -> None:
    from pathlib import Path

    from dispatcher.domain.incident import markdown

    page = (Path(__file__).resolve().parents[2] / "docs" / "architecture.md").read_text()
    assert markdown() in page, "regenerate the table in docs/architecture.md from markdown()"
