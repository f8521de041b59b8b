"""Every state machine's states, one StrEnum each; SQL CHECKs and JSON Schema enums mirror them."""

from collections.abc import Iterable
from enum import StrEnum


class IncidentState(StrEnum):
    """Life of an incident, from detection to the customer's close."""

    DETECTED = "detected"
    DISPATCHED = "dispatched"
    ACKNOWLEDGED = "acknowledged"
    ON_SITE = "on_site"
    REPLACED = "replaced"
    VERIFIED = "verified"
    CLOSED = "closed"
    PAUSED = "paused"


#: States in which the SLA clock still runs (the failure is not yet fixed).
OPEN_STATES: frozenset[IncidentState] = frozenset(
    {
        IncidentState.DETECTED,
        IncidentState.DISPATCHED,
        IncidentState.ACKNOWLEDGED,
        IncidentState.ON_SITE,
        IncidentState.REPLACED,
        IncidentState.PAUSED,
    }
)

#: States of an incident whose failure is fixed: the same failure again opens a new one
#: (the partial unique index on incidents (host_id, component, failure) is over the rest).
FIXED_STATES: frozenset[IncidentState] = frozenset(IncidentState) - OPEN_STATES


def sql_list(states: Iterable[StrEnum]) -> str:
    """States as a SQL list literal, in a stable order: ('a', 'b')."""
    return "(" + ", ".join(f"'{s.value}'" for s in sorted(states)) + ")"


class JobState(StrEnum):
    """A technician's assignment to an incident."""

    DISPATCHED = "dispatched"
    ACKNOWLEDGED = "acknowledged"
    ON_SITE = "on_site"
    REPLACED = "replaced"
    DONE = "done"
    DECLINED = "declined"
    CANCELLED = "cancelled"


class ComponentStatus(StrEnum):
    """Health of one component as the agent reports it."""

    OK = "ok"
    WARNING = "warning"
    FAILED = "failed"
    UNKNOWN = "unknown"


class Role(StrEnum):
    """Roles an API token can carry."""

    CUSTOMER = "customer"
    TECHNICIAN = "technician"
    MANAGER = "manager"
    ADMIN = "admin"


class StaffRole(StrEnum):
    """Roles of people in the fleet file."""

    TECHNICIAN = "technician"
    MANAGER = "manager"
    EXECUTIVE = "executive"


class ClaimState(StrEnum):
    """A customer's claim that support failed: investigation, action plan, notice, exit."""

    INVESTIGATING = "investigating"
    PLAN_PRESENTED = "plan_presented"
    PLAN_ACCEPTED = "plan_accepted"
    PLAN_REJECTED = "plan_rejected"
    RESOLVED = "resolved"
    NOTICE_GIVEN = "notice_given"
    EXITED = "exited"


#: Claim states the executive on duty still has to watch (not resolved, not gone).
OPEN_CLAIM_STATES: frozenset[ClaimState] = frozenset(set(ClaimState) - {
    ClaimState.RESOLVED, ClaimState.EXITED})


class PredictionState(StrEnum):
    """A proactive job the collector predicted: no SLA clock, one open per part and slug."""

    OPEN = "open"
    DISMISSED = "dismissed"
    DONE = "done"


class InventoryChange(StrEnum):
    """What a birth changed in a slot since the host's previous birth."""

    ADDED = "added"
    REPLACED = "replaced"
    MISSING = "missing"
    RETURNED = "returned"


class FacilityState(StrEnum):
    """A facility incident (rack power or network): open until its hosts are back."""

    OPEN = "open"
    RESOLVED = "resolved"


class FacilityScope(StrEnum):
    """What a facility incident took down: a rack, a PDU (power) or a switch (network)."""

    RACK = "rack"
    PDU = "pdu"
    SWITCH = "switch"
