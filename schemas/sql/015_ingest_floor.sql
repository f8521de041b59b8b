-- ingest_keys holds the idempotency key of every message stored, insert-only: at 100,000
-- hosts it grows by 288 million rows a day. The collector prunes keys older than
-- collector.dedup_days and keeps each host's highest pruned seq here; a message at or
-- below it counts as a repeat, so deduplication holds past the pruning.
CREATE TABLE ingest_floor (
    host_id  text PRIMARY KEY,
    seq      bigint NOT NULL
);
-- Insert-only, so received_at follows the physical order: a BRIN index finds the old keys
-- in a few index pages and costs an insert next to nothing (a B-tree costs every insert).
CREATE INDEX ingest_keys_received ON ingest_keys USING brin (received_at);
