-- Telemetry compression on TimescaleDB (issue 18): one series per compressed segment.
-- 002 segmented by host_id alone, so a compressed batch interleaved a host's ~40 series
-- in time order and Gorilla's XOR compared each value with another metric's: about 4-6
-- bytes a value. Segmented by (host_id, component, metric), the metric set of one host,
-- a batch (up to 1,000 rows) is one series in time order: delta-of-delta on time (a
-- steady 30 s interval is runs of zeros), XOR on values (a slow sensor XORs to a few
-- bits), and the three names stored once per batch. docs/scaling.md gives the reasoning
-- and the figure (about 1-2 bytes a value); not measured: TimescaleDB is not on the
-- machines this was written on.
--
-- Since TimescaleDB 2.14 compression settings are kept per chunk: chunks compressed
-- before keep theirs until recompressed, new ones take these (no decompression of the
-- whole table in a migration). Older versions refuse the change while compressed chunks
-- exist; then this leaves the settings as they are, says so, and the change is a
-- maintenance step (decompress, ALTER, let the policy compress again).
DO $$
DECLARE
    version int[] := string_to_array(split_part(
        (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'), '-', 1), '.')::int[];
    compressed boolean := EXISTS (SELECT 1 FROM timescaledb_information.chunks
                                  WHERE hypertable_name = 'telemetry' AND is_compressed);
BEGIN
    IF version >= ARRAY[2, 14] OR NOT compressed THEN
        ALTER TABLE telemetry SET (
            timescaledb.compress,
            timescaledb.compress_segmentby = 'host_id, component, metric',
            timescaledb.compress_orderby = 'time DESC'
        );
    ELSE
        RAISE WARNING 'telemetry compression still segmented by host_id alone: TimescaleDB %'
            ' refuses new settings while chunks are compressed (2.14 and later take them);'
            ' decompress the chunks, or upgrade, and apply 029 by hand', version;
    END IF;
END $$;
-- The compression policy of 002 stays: chunks older than two days are compressed.
