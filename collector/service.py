"""Runs the collector: writer threads take batches from the queue, one transaction each,
and acknowledge after commit (in arrival order, collector.mqtt.AckOrder)."""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from datetime import UTC, datetime

import psycopg

from collector import health, store
from collector.decode import decode
from collector.facility import FacilityParams
from collector.model import DeadLetter, Message
from collector.mqtt import Item, Subscriber
from collector.stateful import RuleParams
from hourglass.config import Config, mqtt_endpoint

log = logging.getLogger(__name__)
SWEEP_S = 5.0  # host-down confirmation granularity; far below one telemetry interval
PARTITION_S = 3600.0  # partitions days ahead, keys pruned days back: hourly upkeep is plenty
APPLICATION_NAME = "hourglass-collector"  # how pg_stat_activity (and bench/ingest) tell it


class Collector:
    """Owns one subscriber and its writer threads, each with a database connection."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        host, port, tls = mqtt_endpoint(cfg.mqtt_url)
        # Stable across restarts, so a restarted collector resumes its broker session and
        # gets what it had not acknowledged; with a pid in it, a crash orphaned those
        # messages until the session expired. Several collectors on one machine must each
        # set collector.client_id (HOURGLASS_COLLECTOR_CLIENT_ID).
        c = cfg.collector
        client_id = c.client_id or f"hg-collector-{socket.gethostname()}"
        # Unacknowledged at most: the queue (two batches) and one batch per writer.
        in_flight = (2 + c.writers) * c.batch_messages
        self.sub = Subscriber(host, port, tls, client_id, 2 * c.batch_messages,
                              decode, cfg.mqtt_username or None, cfg.mqtt_password or None,
                              v5=cfg.mqtt_v5, receive_maximum=in_flight)
        self.directory = store.Directory()
        self.stop = threading.Event()
        self._stats_lock = threading.Lock()
        self._taking = threading.Lock()
        self._failed: BaseException | None = None
        self.stats = {"accepted": 0, "duplicates": 0, "dead": 0, "rows": 0, "incidents": 0}
        self.database_ok = False
        self.rule_params = RuleParams(
            ecc_ce_per_24h=c.ecc_ce_per_24h, temp_high_minutes=c.temp_high_minutes,
            raid_rebuild_limit_minutes=c.raid_rebuild_limit_minutes,
            smart_timeout_jump=c.smart_timeout_jump, nic_errors_per_hour=c.nic_errors_per_hour,
            fan_zero_readings=c.fan_zero_readings)
        self.facility_params = FacilityParams(c.facility_min_hosts, c.facility_rack_fraction,
                                              c.facility_window_s)

    def snapshot(self) -> health.Snapshot:
        """Health and counters for /readyz and /metrics."""
        return health.Snapshot(self.sub.connected.is_set(), self.database_ok,
                               self.sub.queue.qsize(), dict(self.stats))

    def run(self) -> None:
        """Serve until stop is set; survives database and broker outages without losing."""
        url = self.cfg.require_database()
        server = health.serve(self.cfg.collector.http_addr, self.snapshot) \
            if self.cfg.collector.http_addr else None
        self.sub.start()
        writers = [threading.Thread(target=self._writer, args=(url, i == 0), daemon=True,
                                    name=f"writer-{i}")
                   for i in range(self.cfg.collector.writers)]
        for w in writers:
            w.start()
        for w in writers:
            w.join()
        self.sub.stop()
        if server is not None:
            server.shutdown()
        if self._failed is not None:
            raise RuntimeError("a collector writer failed; see the error above") \
                from self._failed

    def _writer(self, url: str, upkeep: bool) -> None:
        """Run one writer; any error but a database outage stops the whole collector.

        A writer that died alone would hold back every later acknowledgement (they leave
        in arrival order) and stall ingest without a word: better to exit and be restarted.
        """
        try:
            self._write_loop(url, upkeep)
        except BaseException as exc:
            log.exception("collector writer failed; stopping the collector")
            self._failed = exc
            self.stop.set()

    def _write_loop(self, url: str, upkeep: bool) -> None:
        """One writer: batches from the queue into its own connection until stop is set.

        The first writer also keeps partitions and runs the host-down sweep.
        """
        conn: psycopg.Connection[tuple[object, ...]] | None = None
        pending: list[Item] = []
        next_sweep = next_partitions = 0.0
        while not self.stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(url, autocommit=True,
                                           application_name=APPLICATION_NAME)
                    self.directory.reload(conn)
                now = time.monotonic()
                if upkeep and now >= next_partitions:
                    store.ensure_partitions(conn, datetime.now(UTC),
                                            self.cfg.collector.retention_days)
                    pruned = store.prune_keys(conn, datetime.now(UTC),
                                              self.cfg.collector.dedup_days)
                    if pruned:
                        log.info("pruned %d deduplication keys older than %d days", pruned,
                                 self.cfg.collector.dedup_days)
                    next_partitions = now + PARTITION_S
                if upkeep and now >= next_sweep:
                    store.sweep_host_down(conn, self.directory,
                                          self.cfg.collector.offline_grace_intervals,
                                          datetime.now(UTC), self.facility_params)
                    next_sweep = now + SWEEP_S
                if not pending:
                    with self._taking:  # one writer fills its batch at a time: batches stay
                        pending = self._next_batch()  # whole, not dealt out a message each
                if pending:
                    self._write(conn, pending)
                    pending = []
                self.database_ok = True
            except psycopg.OperationalError as exc:
                log.warning("database unavailable (%s); holding %d messages unacked, retrying",
                            exc, len(pending))
                self.database_ok = False
                if conn is not None:
                    conn.close()
                conn = None
                self.stop.wait(1.0)
        if conn is not None:
            conn.close()

    def _next_batch(self) -> list[Item]:
        """Up to batch_messages messages, waiting at most batch_ms after the first."""
        cfg = self.cfg.collector
        try:
            first = self.sub.queue.get(timeout=0.5)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + cfg.batch_ms / 1000
        while len(batch) < cfg.batch_messages:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                batch.append(self.sub.queue.get(timeout=left))
            except queue.Empty:
                break
        return batch

    def _write(self, conn: psycopg.Connection[tuple[object, ...]], batch: list[Item]) -> None:
        messages = [item for _, item in batch if isinstance(item, Message)]
        dead = [item for _, item in batch if isinstance(item, DeadLetter)]
        result = store.write_batch(conn, self.directory, messages, dead, self.rule_params)
        self.sub.ack([raw for raw, _ in batch])
        with self._stats_lock:  # writers add at once; `+=` on a dict item is not atomic
            for key, value in (("accepted", result.accepted), ("duplicates", result.duplicates),
                               ("dead", result.dead), ("rows", result.rows),
                               ("incidents", len(result.opened))):
                self.stats[key] += value
        for incident in result.opened:
            log.info("opened incident %s", incident)
        for d in dead:
            log.warning("dead letter on %s: %s", d.topic, d.reason)
