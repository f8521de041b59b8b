-- Passkeys (WebAuthn) for staff who want them: a technician or manager registers one while
-- signed in, then signs in with it, no link needed. Only the public key is kept; the private
-- key never leaves the person's authenticator.
CREATE TABLE passkeys (
    id             bigserial PRIMARY KEY,
    person_id      text NOT NULL REFERENCES technicians(id),
    credential_id  bytea NOT NULL UNIQUE,  -- the authenticator's id for it (discoverable)
    public_key     bytea NOT NULL,  -- COSE_Key, as the registration gave it
    sign_count     bigint NOT NULL DEFAULT 0 CHECK (sign_count >= 0),  -- a clone goes back
    transports     text[] NOT NULL DEFAULT '{}',  -- internal, usb, hybrid...: hints only
    name           text NOT NULL,  -- what the person called it ("work phone")
    created_at     timestamptz NOT NULL,
    last_used_at   timestamptz
);
CREATE INDEX passkeys_person ON passkeys (person_id);

-- A ceremony's challenge: the options handed out and not yet answered. Single use (used_at
-- set by the one UPDATE that takes it) and short lived (expires_at: five minutes), so an
-- assertion captured once cannot sign in again.
CREATE TABLE passkey_challenges (
    challenge   bytea PRIMARY KEY,  -- 32 random bytes the authenticator signs over
    purpose     text NOT NULL CHECK (purpose IN ('register', 'signin')),
    person_id   text REFERENCES technicians(id),  -- who registers; NULL for a sign-in
    client      text NOT NULL,  -- the caller's address: open sign-ins are capped per client
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    CHECK (purpose <> 'register' OR person_id IS NOT NULL)
);
CREATE INDEX passkey_challenges_expires ON passkey_challenges (expires_at);
CREATE INDEX passkey_challenges_client ON passkey_challenges (client, expires_at)
    WHERE used_at IS NULL;
