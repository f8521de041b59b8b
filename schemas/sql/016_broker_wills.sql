-- A last will tells that a host's connection vanished. When the broker itself shuts down
-- it publishes every connected host's will (Mosquitto 2.0 does, measured), and a will
-- queued for a collector across the broker's restart arrives after it: neither is the
-- host's doing. The collector relabels those 'broker' by when they arrived (offline_at)
-- against when it lost and regained the broker; the host-down sweep still judges such a
-- host by its silence, as it does a 'lost' one.
ALTER TABLE host_state ADD COLUMN offline_at timestamptz;
ALTER TABLE host_state DROP CONSTRAINT host_state_offline_reason_check;
ALTER TABLE host_state ADD CONSTRAINT host_state_offline_reason_check
    CHECK (offline_reason IN ('lost', 'shutdown', 'broker'));
