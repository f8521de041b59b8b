-- Seq-gap resend (collector.gaps): every host numbers its messages 1, 2, 3, ..., so a
-- missing seq is a message the broker acknowledged to the agent and then lost (a broker
-- restart, a shared subscription not yet restored). The collector asks the agent to send
-- it again; the agent keeps what the broker acknowledged for 24 h.

-- The seqs reserved for last wills, from the birth's and online state's `will_seq`: the
-- one seq a host may legitimately never send (its will never fired). Owned by the
-- collector's batch writer; pruned with ingest_keys.
CREATE TABLE ingest_reserved (
    host_id      text NOT NULL,
    seq          bigint NOT NULL,
    session      text,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (host_id, seq)
);
CREATE INDEX ingest_reserved_received ON ingest_reserved USING brin (received_at);

-- Per host, the seq up to which every message is stored, reserved or recorded as a gap:
-- the gap scan reads only keys above it. Owned by the gap scan.
CREATE TABLE ingest_watermark (
    host_id     text PRIMARY KEY,
    seq         bigint NOT NULL,
    scanned_at  timestamptz NOT NULL DEFAULT now()
);
-- An upgraded fleet is watched from now on: seqs below today's are history (wills of
-- agents that did not yet say which seq their will holds), not gaps to ask for.
INSERT INTO ingest_watermark (host_id, seq)
SELECT host_id, seq FROM host_state ON CONFLICT DO NOTHING;

-- Each run of missing seqs of one host, from when the scan saw it to filled (the agent
-- resent it, or it arrived late) or unfilled (not within collector.gap_give_up_s; asked
-- for until the agent's retention ends, and filled then if it comes). Owned by the scan.
CREATE TABLE ingest_gaps (
    id               bigserial PRIMARY KEY,
    host_id          text NOT NULL,
    first_seq        bigint NOT NULL,
    last_seq         bigint NOT NULL CHECK (last_seq >= first_seq),
    seen_at          timestamptz NOT NULL,
    missing          integer NOT NULL,
    requests         integer NOT NULL DEFAULT 0,
    requested_at     timestamptz,
    next_request_at  timestamptz NOT NULL,
    state            text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'filled', 'unfilled')),
    closed_at        timestamptz,
    reason           text,
    UNIQUE (host_id, first_seq)
);
CREATE INDEX ingest_gaps_unsettled ON ingest_gaps (seen_at) WHERE state <> 'filled';
