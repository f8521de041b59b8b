-- Web Push without a vendor account (issue 16): the server's VAPID key, staff's push
-- subscriptions (one per device and browser), and push as an outbox channel.

-- The VAPID key pair (P-256) the push services know this server by. One row, made on the
-- first start (INSERT ... ON CONFLICT DO NOTHING, so two dispatchers starting at once end
-- with the first one's key) and never regenerated: every subscription was made against its
-- public key, and a new key would silence every phone until it subscribes again.
CREATE TABLE push_keys (
    one          boolean PRIMARY KEY DEFAULT true CHECK (one),
    private_pem  text NOT NULL,  -- PKCS#8 PEM; the database is already the secret's home
    public_key   text NOT NULL,  -- base64url (no padding) of the 65-byte uncompressed point
    created_at   timestamptz NOT NULL
);

-- A staff person's device: the browser's PushSubscription. The endpoint is the push
-- service's URL for that browser, unique: the same browser subscribing again (or for
-- another person after a sign-in) updates the row. Removed when the push service answers
-- 404 or 410 (the browser dropped it), or by its owner.
CREATE TABLE push_subscriptions (
    id               bigserial PRIMARY KEY,
    person_id        text NOT NULL REFERENCES technicians(id),
    endpoint         text NOT NULL UNIQUE CHECK (length(endpoint) <= 1000),
    p256dh           text NOT NULL,  -- base64url: the browser's P-256 public key
    auth             text NOT NULL,  -- base64url: the 16-byte authentication secret
    device           text CHECK (length(device) <= 100),  -- "Pixel 8": a label
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    last_success_at  timestamptz,
    last_failure     text,  -- the last failed attempt: status and error, for the page
    last_failure_at  timestamptz
);
CREATE INDEX push_subscriptions_person ON push_subscriptions (person_id, created_at);

-- Push is one more channel: one outbox row per subscription (ref '<ref>:push:<id>', so the
-- (ref, recipient, channel) key still makes each a single message), body = the JSON payload.
ALTER TABLE outbox DROP CONSTRAINT outbox_channel_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_channel_check
    CHECK (channel IN ('email', 'webhook', 'billing', 'push'));
ALTER TABLE outbox ADD COLUMN push_subscription bigint
    REFERENCES push_subscriptions(id) ON DELETE SET NULL;
CREATE INDEX outbox_push_subscription ON outbox (push_subscription)
    WHERE push_subscription IS NOT NULL;
