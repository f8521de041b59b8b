-- Sign-in: people sign in with one-time links and get a session; machines keep tokens.
-- A session is a credential like a token (api_tokens, kind 'session'), so what is keyed by
-- the caller's credential (Idempotency-Key answers) works for both. Only hashes are kept.
ALTER TABLE api_tokens
    ADD COLUMN kind          text NOT NULL DEFAULT 'token' CHECK (kind IN ('token', 'session')),
    ADD COLUMN expires_at    timestamptz,  -- the absolute end: a token's --expires, a session's
    ADD COLUMN idle_s        integer CHECK (idle_s > 0),  -- a session ends this long unused
    ADD COLUMN last_used_at  timestamptz,  -- to the minute: written at most once a minute
    ADD COLUMN revoked_at    timestamptz,
    ADD COLUMN revoked_by    text,
    ADD COLUMN device        text,  -- the User-Agent a session started from
    ADD COLUMN client        text,  -- the address it started from
    ADD COLUMN email         text;  -- a customer's person, signed in by a link to this address

CREATE INDEX api_tokens_person ON api_tokens (person_id) WHERE person_id IS NOT NULL;

-- A one-time sign-in link's code: valid once, until expires_at. GET shows a button; only
-- POST consumes it (mail scanners fetch links).
CREATE TABLE signin_codes (
    id           bigserial PRIMARY KEY,
    code_hash    text NOT NULL UNIQUE,
    role         text NOT NULL CHECK (role IN ('customer', 'technician', 'manager', 'admin')),
    customer_id  text REFERENCES customers(id),
    person_id    text REFERENCES technicians(id),
    email        text,
    created_at   timestamptz NOT NULL,
    created_by   text NOT NULL,
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    session_id   bigint REFERENCES api_tokens(id),
    CHECK (role <> 'customer' OR customer_id IS NOT NULL)
);

-- The customer's people who may ask for a sign-in link by email on the sign-in page: an
-- address is added when a link is first made for it (hourglass signin-link --customer C
-- --email E, or a manager on /ops).
CREATE TABLE customer_users (
    customer_id  text NOT NULL REFERENCES customers(id),
    email        text NOT NULL,
    added_at     timestamptz NOT NULL,
    PRIMARY KEY (customer_id, email)
);
CREATE INDEX customer_users_email ON customer_users (lower(email));

-- Every sign-in, sign-out, revocation and refusal, for an admin to read.
CREATE TABLE auth_events (
    id            bigserial PRIMARY KEY,
    at            timestamptz NOT NULL,
    kind          text NOT NULL,  -- signin, signin_refused, signin_requested, signout, ...
    credential_id bigint REFERENCES api_tokens(id),
    who           text,  -- role:person or customer:id, when known
    client        text,  -- the caller's address
    detail        jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX auth_events_at ON auth_events (at);

-- A sign-in through the company's OpenID Connect provider, between the redirect there and
-- the way back: the state (hashed), the nonce the ID token must carry and the PKCE verifier.
CREATE TABLE oidc_logins (
    state_hash     text PRIMARY KEY,
    nonce          text NOT NULL,
    code_verifier  text NOT NULL,
    created_at     timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz
);
