"""What the API answers: one model per shape, so the OpenAPI document describes every answer.

The handlers build the answers as dicts (dispatcher/views.py and the route modules); each
route names its model here, and FastAPI checks the answer against it. Every model forbids
fields it does not name, so an answer and its model cannot drift apart unnoticed: a field
added to an answer without its model fails the tests with a 500 instead of vanishing from
the document. Times are RFC 3339 UTC strings ("2026-11-23T09:00:00Z"); money is a decimal
string ("12.50"), never a float.
"""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Json = dict[str, Any]  # free-form JSON an event or a rule recorded (evidence, detail)


class Model(BaseModel):
    """An answer's shape: exactly these fields."""

    model_config = ConfigDict(extra="forbid")


class Problem(Model):
    """Every refusal: what is wrong and what to do (4xx; 503 while the database is away)."""

    detail: str


#: The error answers every API route documents (FastAPI's own 422 shape is not ours).
ERRORS: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": Problem, "description": "refused: what is wrong and what to do"},
    422: {"model": Problem, "description": "a bad request: which field, and why"},
    503: {"model": Problem, "description": "the database is unavailable: retry shortly"},
}


class Location(Model):
    """Where a host stands."""

    room: str | None
    rack: str | None
    unit: int | None


class CreditShown(Model):
    """The credit an incident earned."""

    amount: str | None
    currency: str | None
    percent: float


class CageDecision(Model):
    """Who decided on cage access, and when."""

    by: str
    at: str | None


class Incident(Model):
    """A hardware incident: the failed part, the one-hour clock, who is on it."""

    id: int
    host: str
    site: str
    customer: str
    component: str
    kind: str
    failure: str
    slot: str | None
    serial: str | None
    state: str
    detected_at: str | None
    deadline: str | None
    sla_minutes: float
    verified_at: str | None
    closed_at: str | None
    assignee: str | None
    assignee_name: str | None
    location: Location
    evidence: Json | None
    credit: CreditShown | None
    cage_access: Literal["not_needed", "asked", "granted", "denied"] = Field(
        description="may our technician enter the customer's cage: the contract lets us in "
                    "(not_needed), or the customer is asked, granted or denied it")
    cage_decision: CageDecision | None = None


class TimelineEntry(Model):
    """One event: when, who, what, and its detail."""

    at: str | None = Field(description="when the server recorded it (for a technician's "
                                       "action: when it arrived)")
    actor: str
    kind: str
    detail: Json | None
    device_at: str | None = Field(default=None, description=(
        "a technician's action: the phone's own time of the tap (Hourglass-Device-Time), "
        "information only; null when none was sent or it was ignored "
        "(detail.device_time_ignored says why)"))


class JobOfIncident(Model):
    """A technician's assignment, inside its incident."""

    id: int
    state: str
    technician: str
    dispatched_at: str | None
    acknowledged_at: str | None
    on_site_at: str | None
    replaced_at: str | None
    new_serial: str | None


class Job(JobOfIncident):
    """A technician's assignment with the incident it serves."""

    incident: Incident
    card: "JobCard"


class ReviewItem(Model):
    """One action of a review or a plan: what, who, by when, done when."""

    n: int
    text: str
    owner: str
    due_at: str | None
    done_at: str | None


class Review(Model):
    """A breach review: the cause and who does what by when."""

    cause: str
    author: str
    created_at: str | None
    updated_at: str | None
    items: list[ReviewItem]


class IncidentDetail(Incident):
    """One incident with its timeline, its latest job and its review."""

    timeline: list[TimelineEntry]
    job: JobOfIncident | None
    review: Review | None


class IncidentPage(Model):
    """A page of incidents; `next` is the cursor of the next page (null: the last)."""

    items: list[Incident]
    next: int | None


class JobPage(Model):
    """Jobs, soonest deadline first."""

    items: list[Job]
    next: int | None


class Survey(Model):
    """The customer's score after closing."""

    incident: int
    score: int
    comment: str | None


class Credit(Model):
    """One line of the credit ledger: hardware (per incident) or facility (per host)."""

    id: int
    source: str
    incident: int | None
    facility_incident: int | None
    host: str | None
    customer: str
    amount: str | None
    currency: str
    percent: float
    periods: int
    late_seconds: float
    issued_at: str | None


class CreditPage(Model):
    """The credit ledger."""

    items: list[Credit]
    next: int | None


# Claims


class Notice(Model):
    """The customer's notice: given when, effective when."""

    given_at: str | None
    effective_at: str | None
    ended_at: str | None  # when the dispatcher recorded the end date's arrival


class ClaimSummary(Model):
    """A claim in a list."""

    id: int
    customer: str
    incident: int | None
    text: str
    state: str
    manager: str | None
    opened_at: str | None
    updated_at: str | None
    notice: Notice | None


class EarlierPlan(Model):
    """A plan the customer rejected."""

    plan: int
    items: list[ReviewItem]


class ExitSurvey(Model):
    """The departing customer's answer."""

    score: int
    comment: str | None
    at: str | None


class Claim(ClaimSummary):
    """A claim with its plan, earlier plans, exit survey and timeline."""

    plan: list[ReviewItem]
    earlier_plans: list[EarlierPlan]
    exit_survey: ExitSurvey | None
    timeline: list[TimelineEntry]


class ClaimPage(Model):
    """A page of claims, newest first."""

    items: list[ClaimSummary]
    next: int | None


# Facility incidents and predictions


class FacilityPolicy(Model):
    """The contract's terms for a facility outage."""

    sla_minutes: float
    credit_percent: float
    credit_period_minutes: float
    credit_cap_percent: float


class FacilityHost(Model):
    """A host a facility outage silenced."""

    host: str
    customer: str
    silent_since: str | None
    back_at: str | None


class Facility(Model):
    """A rack, PDU or switch outage; rack totals and the timeline only for staff."""

    id: int
    site: str
    site_name: str | None
    room: str | None
    rack: str | None
    scope: str
    scope_id: str | None
    cause: str | None
    state: str
    detected_at: str | None
    deadline: str | None
    resolved_at: str | None
    policy: FacilityPolicy
    hosts: list[FacilityHost]
    rack_hosts: int | None = None
    timeline: list[TimelineEntry] | None = None


class FacilityPage(Model):
    """Facility incidents, newest first."""

    items: list[Facility]
    next: int | None


class PredictionJob(Model):
    """The proactive job planned for a prediction (no clock)."""

    id: int
    state: str
    planned_at: str | None


class Prediction(Model):
    """A part expected to fail: the evidence and the planned job."""

    id: int
    host: str
    site: str
    customer: str
    component: str
    kind: str
    prediction: str
    rule: str
    slot: str | None
    serial: str | None
    state: str
    detected_at: str | None
    last_seen: str | None
    repeats: int
    evidence: Json | None
    last_evidence: Json | None
    job: PredictionJob | None


class PredictionPage(Model):
    """Predictions, newest first."""

    items: list[Prediction]
    next: int | None


class ProactivePrediction(Model):
    """The prediction a proactive job serves, with where the host stands."""

    id: int
    host: str
    customer: str
    component: str
    kind: str
    prediction: str
    slot: str | None
    serial: str | None
    state: str
    detected_at: str | None
    last_seen: str | None
    location: Location


class ProactiveJob(Model):
    """Planned work ahead of a failure: no SLA clock."""

    id: int
    state: str
    site: str
    technician: str | None
    technician_name: str | None
    planned_at: str | None
    acknowledged_at: str | None
    finished_at: str | None
    finished_by: str | None
    spare_part: str | None
    part_note: str | None
    new_serial: str | None
    note: str | None
    slot_start: str | None  # inside the customer's maintenance window; None: no window
    slot_end: str | None
    plan_state: str  # the customer's answer: proposed, accepted, declined
    prediction: ProactivePrediction


class ProactivePage(Model):
    """Proactive jobs, soonest first."""

    items: list[ProactiveJob]
    next: int | None


# Notifications, reviews, spares, pauses


class Delivery(Model):
    """One attempt to deliver a notification."""

    attempt: int
    at: str | None
    outcome: str
    status_code: int | None
    error: str | None
    duration_ms: float


class Notification(Model):
    """One notification in the outbox and its delivery attempts (the body stays out)."""

    id: int
    recipient: str
    channel: str
    address: str
    reason: str
    subject: str
    ref: str | None
    state: str
    attempts: int
    created_at: str | None
    next_attempt_at: str | None
    done_at: str | None
    last_error: str | None
    deliveries: list[Delivery]


class NotificationPage(Model):
    """Notifications, newest first."""

    items: list[Notification]
    next: int | None


class OverdueReview(Model):
    """A breached incident still without its review."""

    incident: int
    site: str
    customer: str
    deadline: str | None
    verified_at: str | None


class OverduePage(Model):
    """Breached incidents without a review after `due_days`."""

    due_days: int
    items: list[OverdueReview]
    next: int | None


class NpsFigure(Model):
    """Net promoter score of a group (key null: all answers)."""

    key: str | None
    nps: float | None
    responses: int
    promoters: int
    passives: int
    detractors: int


class NpsReport(Model):
    """NPS overall and per group over a time range."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    by: str
    from_: str | None = Field(alias="from")
    to: str | None
    overall: NpsFigure
    items: list[NpsFigure]
    next: int | None


class PauseRequest(Model):
    """The technician's request that the site manager pause the clock."""

    incident: int
    reason: str
    note: str | None
    requested_at: str | None
    repeated: bool
    detail: str


class Spare(Model):
    """Stock of one part at one site."""

    site: str
    part: str
    kind: str
    count: int
    reserved: int
    available: int
    low_stock_threshold: int | None
    low: bool
    location: str | None  # where it stands: "Store room B, shelf 3, bin 12"


class SpareAlert(Model):
    """A low-stock alert."""

    id: int
    site: str
    part: str
    kind: str
    available: int
    threshold: int | None
    at: str | None


class SparePage(Model):
    """Stock per site and part, and the latest low-stock alerts."""

    items: list[Spare]
    alerts: list[SpareAlert]
    next: int | None


# Sign-in


class Me(Model):
    """The caller: role, person or customer, and whether a session (else a token)."""

    role: str
    person: str | None
    customer: str | None
    name: str | None
    session: bool


class Session(Model):
    """A person's open session: where and when it was used (never its secret)."""

    id: int
    role: str
    person: str | None
    customer: str | None
    email: str | None
    device: str | None
    client: str | None
    started_at: str | None
    last_seen_at: str | None
    expires_at: str | None
    current: bool


class SessionPage(Model):
    """Open sessions, oldest first."""

    items: list[Session]
    next: int | None


class Revoked(Model):
    """How many sessions were ended."""

    revoked: int


class LinkSent(Model):
    """A sign-in link is on its way (by email; the link itself is never in an answer)."""

    to: str
    expires_at: str | None


class AuthEvent(Model):
    """One sign-in, sign-out, revocation or refusal."""

    id: int
    at: str | None
    kind: str
    credential: int | None
    who: str | None
    client: str | None
    detail: Json


class AuthEventPage(Model):
    """The sign-in audit, newest first."""

    items: list[AuthEvent]
    next: int | None


# Passkeys


class PasskeyOptions(Model):
    """A WebAuthn ceremony's options, as navigator.credentials.create() or .get() wants them
    (binary fields base64url-encoded); its challenge works once, for five minutes."""

    options: Json


class Passkey(Model):
    """One of a person's passkeys (never its key)."""

    id: int
    name: str
    transports: list[str]
    created_at: str | None
    last_used_at: str | None


class PasskeyPage(Model):
    """A person's passkeys, oldest first."""

    items: list[Passkey]
    next: int | None


class PasskeyRemoved(Model):
    """How many passkeys were removed."""

    removed: int


class ReadingPoint(Model):
    """One bucket of readings: its start and the bad side's extreme within it."""

    at: str | None
    value: float


class Readings(Model):
    """An incident's evidence over time: the metric that crossed the rule, with its line.
    metric is null when no reading tells the story (a host that stopped answering)."""

    incident: int
    component: str
    metric: str | None
    label: str | None
    unit: str | None
    threshold: float | None
    bad: Literal["above", "below"] | None = Field(
        description="the side of the threshold the failure is on")
    detected_at: str | None
    start: str | None
    end: str | None
    bucket_s: int
    points: list[ReadingPoint]


class ContactTest(Model):
    """The latest test message to a contact and how its delivery went (notification log)."""

    notification: int
    state: Literal["pending", "sent", "failed"]
    outcome: str | None = Field(description="the latest attempt: sent, retry or failed")
    status_code: int | None
    error: str | None
    at: str | None
    done_at: str | None


class Contact(Model):
    """One of the customer's own contacts, with its latest test."""

    id: int
    channel: Literal["email", "webhook"]
    address: str
    added_at: str | None
    added_by: str | None
    last_test: ContactTest | None


class ContactPage(Model):
    """The customer's contacts."""

    items: list[Contact]
    next: int | None
# -- the technician's job card -----------------------------------------------------------------

class SpareHeld(Model):
    """The spare held for the job's incident, and where it stands."""

    part: str
    location: str | None


class SerialShape(Model):
    """What the new part's serial must look like (the page checks it, the server too)."""

    pattern: str  # matched whole, case-insensitively
    expected: str
    example: str


class PauseRequestShown(Model):
    """A technician's request for a clock pause, with the manager's answer."""

    id: int
    state: str  # pending, granted, refused
    reason: str
    note: str | None
    requested_at: str | None
    answered_at: str | None
    answered_by: str | None
    answer: str | None


class JobCard(Model):
    """What the job card shows beyond the incident."""

    site_name: str | None
    spare: SpareHeld | None
    serial_shape: SerialShape
    pause_request: PauseRequestShown | None


class PauseRequestItem(PauseRequestShown):
    """A pause request as the managers' list shows it."""

    incident: int
    job: int | None
    technician: str
    host: str
    site: str


class PauseRequestPage(Model):
    """Pause requests, oldest waiting first."""

    items: list[PauseRequestItem]
    next: int | None


class Photo(Model):
    """A photo of the work, as stored: re-encoded, metadata stripped."""

    id: int
    incident: int
    job: int
    author: str
    taken_at: str | None
    width: int
    height: int
    bytes: int
    url: str
    thumb_url: str


class PhotoPage(Model):
    """Photos of the work, oldest first."""

    items: list[Photo]
    next: int | None


Job.model_rebuild()  # its card is defined below it


class PushKey(Model):
    """The server's VAPID public key: the applicationServerKey browsers subscribe with."""

    public_key: str  # base64url, no padding, the 65-byte uncompressed P-256 point


class PushSubscription(Model):
    """One of a person's devices that receives push notifications (never its keys)."""

    id: int
    endpoint: str
    device: str | None
    created_at: str | None
    last_success_at: str | None
    last_failure: str | None


class PushSubscriptionPage(Model):
    """A person's push subscriptions, newest first."""

    items: list[PushSubscription]
    next: int | None


class EscalationAnswer(Model):
    """A manager's answer to an escalation: taken ("I have it") or passed on ("not me")."""

    incident: int
    escalation: int  # the timeline entry of the escalation answered
    action: str  # acknowledge or decline
    by: str
    at: str | None
    next: str | None  # decline: who the escalation went on to (None: no further step)
