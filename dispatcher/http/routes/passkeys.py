"""Passkeys (WebAuthn) for staff: register one while signed in, then sign in with it.

Technicians and managers only; customers sign in with links. Each ceremony is two calls:
options (a fresh single-use challenge, five minutes) and the authenticator's answer, which
the `webauthn` package verifies. The relying party is the host people reach the pages at
(the configured public URL, else the request's own), so the RP ID is that host name and the
expected origin its scheme and host. A passkey sign-in starts a session exactly as a link's
button does (signin.signed_in); a refused one counts against the
client (the Guard) and is audited.
"""

import json
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlparse

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    parse_authentication_credential_json,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse
from webauthn.helpers.structs import (
    AuthenticationCredential,
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    RegistrationCredential,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from dispatcher import views
from dispatcher.http import models
from dispatcher.http.deps import MAX_ID, Deps, DictConn, client_of
from dispatcher.http.routes import signin
from dispatcher.store import auth, passkeys
from dispatcher.store.tokens import Principal
from schemas.states import Role

RP_NAME = "Hourglass"
NAME_MAX = 60  # "Ana's work phone": a label on a phone-width list
CREDENTIAL_MAX = 8  # keys of a PublicKeyCredential's JSON: id, rawId, type, response, ...
STAFF = (Role.TECHNICIAN, Role.MANAGER)


class Ceremony(Exception):
    """A passkey answer refused: the HTTP status and what to do."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


class RegisterIn(BaseModel):
    """A new passkey: the browser's answer to navigator.credentials.create(), and a name."""

    credential: dict[str, Any] = Field(max_length=CREDENTIAL_MAX)
    name: str = Field(min_length=1, max_length=NAME_MAX)


class SigninIn(BaseModel):
    """The browser's answer to navigator.credentials.get()."""

    credential: dict[str, Any] = Field(max_length=CREDENTIAL_MAX)


def relying_party(deps: Deps, request: Request) -> tuple[str, str]:
    """The RP ID (the pages' host name) and the origin a ceremony must come from."""
    base = urlparse(deps.base_url(request))
    return base.hostname or "localhost", f"{base.scheme}://{base.netloc}"


def _staff(principal: Principal) -> str:
    """The signed-in staff member's id, or a 403 that says who passkeys are for."""
    if principal.role is Role.CUSTOMER:
        raise HTTPException(403, "passkeys are for staff: customers sign in with a sign-in "
                                 "link (ask for one at /signin)")
    if principal.role not in STAFF or not principal.person:
        raise HTTPException(403, "passkeys belong to a person: sign in as a technician or "
                                 "manager to add one")
    return principal.person


def _challenge_of(credential: RegistrationCredential | AuthenticationCredential) -> bytes:
    """The challenge the browser's answer says it signed."""
    return parse_client_data_json(credential.response.client_data_json).challenge


def _challenge(conn: DictConn, purpose: str, person: str | None, request: Request) -> bytes:
    """A new ceremony's challenge, or a 429 for a client holding too many unanswered."""
    found = passkeys.new_challenge(conn, purpose, person, client_of(request), datetime.now(UTC))
    if found is None:
        wait = int(passkeys.CHALLENGE_LIFE.total_seconds())
        raise HTTPException(429, "too many passkey ceremonies started from this client and "
                                 f"not finished: try again in {wait // 60} minutes",
                            headers={"Retry-After": str(wait)})
    return found


def _shown(p: passkeys.Passkey) -> dict[str, Any]:
    return {"id": p.id, "name": p.name, "transports": p.transports,
            "created_at": views.ts(p.created_at), "last_used_at": views.ts(p.last_used_at)}


def router(deps: Deps) -> APIRouter:
    """The passkey routes."""
    api = APIRouter()
    _registration(api, deps, deps.db, deps.who)
    _signin(api, deps, deps.db)
    return api


def _registration(api: APIRouter, deps: Deps, db: Any, who_dep: Any) -> None:

    @api.post("/api/v1/passkeys/register/options", response_model=models.PasskeyOptions)
    def register_options(conn: db, who: who_dep, request: Request) -> dict[str, Any]:
        """Options for navigator.credentials.create(): a passkey for the signed-in person."""
        person = _staff(who)
        rp_id, _ = relying_party(deps, request)
        row = conn.execute("SELECT name FROM technicians WHERE id = %s", (person,)).fetchone()
        challenge = _challenge(conn, "register", person, request)
        options = generate_registration_options(
            rp_id=rp_id, rp_name=RP_NAME, user_name=person, user_id=person.encode(),
            user_display_name=row["name"] if row else person, challenge=challenge,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED,  # sign in without a name first
                user_verification=UserVerificationRequirement.REQUIRED),
            exclude_credentials=[PublicKeyCredentialDescriptor(id=p.credential_id)
                                 for p in passkeys.of_person(conn, person)])
        return {"options": json.loads(options_to_json(options))}

    @api.post("/api/v1/passkeys/register", status_code=201, response_model=models.Passkey)
    def register(body: RegisterIn, conn: db, who: who_dep, request: Request) -> dict[str, Any]:
        """Verify the authenticator's answer and keep the new passkey's public key."""
        person = _staff(who)
        now, (rp_id, origin) = datetime.now(UTC), relying_party(deps, request)
        try:
            credential = parse_registration_credential_json(body.credential)
            challenge = _challenge_of(credential)
        except Exception as exc:  # the parser raises several kinds on malformed JSON
            raise HTTPException(400, "that is not a passkey's answer (navigator.credentials."
                                     f"create()): {exc}") from None
        if not passkeys.take_challenge(conn, challenge, "register", person, now):
            raise HTTPException(400, "this passkey request has expired or was already "
                                     "answered: press “Add a passkey” again")
        try:
            verified = verify_registration_response(
                credential=credential, expected_challenge=challenge, expected_rp_id=rp_id,
                expected_origin=origin, require_user_verification=True)
        except InvalidRegistrationResponse as exc:
            raise HTTPException(400, f"the passkey could not be verified ({exc}): try again "
                                     "on this site's own page") from None
        transports = [t.value for t in credential.response.transports or []]
        name = body.name.strip() or "passkey"
        new = passkeys.add(conn, person, verified.credential_id, verified.credential_public_key,
                           verified.sign_count, transports, name, now)
        if new is None:
            raise HTTPException(409, "this passkey is registered already: use it to sign in")
        auth.audit(conn, "passkey_registered", now, who=who.actor, client=client_of(request),
                   passkey=new, name=name)
        return {"id": new, "name": name, "transports": transports,
                "created_at": views.ts(now), "last_used_at": None}

    @api.get("/api/v1/passkeys", response_model=models.PasskeyPage)
    def list_passkeys(conn: db, who: who_dep) -> dict[str, Any]:
        """Your passkeys, oldest first."""
        return {"items": [_shown(p) for p in passkeys.of_person(conn, _staff(who))],
                "next": None}

    @api.post("/api/v1/passkeys/{passkey_id}/remove", response_model=models.PasskeyRemoved)
    def remove(passkey_id: Annotated[int, Path(ge=1, le=MAX_ID)], conn: db, who: who_dep,
               request: Request) -> dict[str, Any]:
        """Remove one of your passkeys: it no longer signs anyone in."""
        person, now = _staff(who), datetime.now(UTC)
        name = passkeys.remove(conn, passkey_id, person)
        if name is None:
            raise HTTPException(404, f"no passkey {passkey_id} of yours; list them at "
                                     "/api/v1/passkeys")
        auth.audit(conn, "passkey_removed", now, who=who.actor, client=client_of(request),
                   passkey=passkey_id, name=name)
        return {"removed": 1}


def _signin(api: APIRouter, deps: Deps, db: Any) -> None:
    guard = deps.guard

    @api.post("/signin/passkey/options", include_in_schema=False,
              response_model=models.PasskeyOptions)
    def signin_options(conn: db, request: Request) -> dict[str, Any]:
        """Options for navigator.credentials.get(): any of this site's passkeys may answer."""
        guard.check(client_of(request))
        rp_id, _ = relying_party(deps, request)
        challenge = _challenge(conn, "signin", None, request)
        options = generate_authentication_options(
            rp_id=rp_id, challenge=challenge, allow_credentials=[],  # discoverable
            user_verification=UserVerificationRequirement.REQUIRED)
        return {"options": json.loads(options_to_json(options))}

    @api.post("/signin/passkey", include_in_schema=False)
    def signin_with_passkey(body: SigninIn, conn: db, request: Request) -> Response:
        """Verify a passkey's assertion; 303 to the person's page with a session cookie."""
        client, now = client_of(request), datetime.now(UTC)
        guard.check(client)
        if not deps.same_origin(request):
            raise HTTPException(403, "refused: sign in with a passkey from this site's own "
                                     "sign-in page")
        try:
            passkey, person, count = _verified(conn, deps, request, body.credential, now)
            with conn.transaction():
                if not passkeys.record_use(conn, passkey.id, passkey.sign_count, count, now):
                    raise Ceremony(401, "this passkey was just used to sign in: sign in again")
                _, answer = signin.signed_in(conn, deps, request, person, now, "passkey",
                                             passkey=passkey.id)
        except Ceremony as exc:
            guard.failed(client)
            auth.audit(conn, "signin_refused", now, client=client, method="passkey",
                       reason=str(exc))
            raise HTTPException(exc.status, str(exc)) from None
        return answer


def _verified(conn: DictConn, deps: Deps, request: Request, body: dict[str, Any],
              now: datetime) -> tuple[passkeys.Passkey, auth.Person, int]:
    """The passkey and person a sign-in assertion proves, and its new sign count."""
    try:
        credential = parse_authentication_credential_json(body)
        challenge = _challenge_of(credential)
    except Exception as exc:  # the parser raises several kinds on malformed JSON
        raise Ceremony(400, "that is not a passkey's answer (navigator.credentials.get()): "
                            f"{exc}") from None
    if not passkeys.take_challenge(conn, challenge, "signin", None, now):
        raise Ceremony(400, "this passkey sign-in has expired or was already used: press "
                            "“Sign in with a passkey” again")
    passkey = passkeys.by_credential(conn, credential.raw_id)
    if passkey is None:
        raise Ceremony(401, "this passkey is not registered here (it may have been removed): "
                            "sign in with a link, then add it again under Passkeys")
    handle = credential.response.user_handle
    if handle is not None and handle != passkey.person.encode():
        raise Ceremony(401, "this passkey belongs to someone else's account: sign in with a "
                            "link")
    rp_id, origin = relying_party(deps, request)
    try:
        verified = verify_authentication_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=rp_id,
            expected_origin=origin, credential_public_key=passkey.public_key,
            credential_current_sign_count=passkey.sign_count, require_user_verification=True)
    except InvalidAuthenticationResponse as exc:
        if "sign count" in str(exc).lower():
            raise Ceremony(401, "this passkey's use count went backwards, as a copied "
                                "authenticator's would: sign in with a link, remove this "
                                "passkey under Passkeys and add it again") from None
        raise Ceremony(401, f"the passkey could not be verified ({exc}): sign in with a "
                            "link") from None
    try:
        person = auth.person_role(conn, passkey.person)
    except ValueError:
        raise Ceremony(401, "this passkey's person is no longer in the fleet: ask your site "
                            "manager") from None
    return passkey, person, verified.new_sign_count
