"""Runs the collector: writer threads take batches from the queue, one transaction each,
and acknowledge after commit (in arrival order, collector.mqtt.AckOrder)."""

from __future__ import annotations

import gc
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial

import psycopg

from collector import gapstore, health, histo, store
from collector.decode import clean, decode
from collector.facility import FacilityParams
from collector.gaps import Policy
from collector.liveness import Action, InputGate, Limits, Verdict, Watchdog
from collector.model import DeadLetter, Message
from collector.mqtt import Item, Subscriber
from collector.stateful import RuleParams
from hourglass.config import Config, mqtt_endpoint

log = logging.getLogger(__name__)
SWEEP_S = 5.0  # host-down confirmation granularity; far below one telemetry interval
GAPS_S = 5.0  # gap scan: a lost message is asked for within grace + this
PARTITION_S = 3600.0  # partitions days ahead, keys pruned days back: hourly upkeep is plenty
APPLICATION_NAME = "hourglass-collector"  # how pg_stat_activity (and bench/ingest) tell it
# Wills around a broker outage are the broker's: measured, Mosquitto publishes them
# within milliseconds before our connection drops; queued ones arrive right after we are
# back. The window is looked at for ten minutes, so wills written late (a database
# outage at the same time) are relabelled too.
WILLS_BEFORE = timedelta(seconds=2)
WILLS_AFTER = timedelta(seconds=5)
WILLS_LOOKBACK = timedelta(minutes=10)
# JIT compiles a query whose estimate passes jit_above_cost: the sweep's, with its
# per-host telemetry subquery, took 1.0-1.3 s a pass returning nothing (against 5-10 ms
# without), measured beside bench/ingest; the collector's statements are all short.
NO_JIT = "-c jit=off"
# Python's cyclic GC runs a young collection every 700 container allocations; a batch
# makes ~100,000 (rows, tuples, psycopg's results), so it ran ~140 times a batch, each
# also walking what the queues hold. The collector makes almost no cycles: collect a
# young generation every 20,000 allocations, and leave what exists at start (modules,
# config) out of every collection (gc.freeze). Measured in-process on the bench payload
# (3 runs each): decode 36-58 -> 24-25 us a message; cycles are still collected.
GC_THRESHOLD = (20_000, 20, 100)
BATCH_POLL_S = 0.005  # a filling batch looks at the queue this often while it is empty
WATCH_S = 1.0  # liveness is judged this often: half the canary interval (2 s)
# What a message, not the system, can cause while it is stored: values the database
# refuses (out of range, NUL in text, a key or a limit broken) or a rule tripping over
# them. Such a message is stored alone as a dead letter; anything else (a table gone,
# privileges) is the system's fault and stops the collector to be restarted and seen.
MESSAGE_FAULTS: tuple[type[BaseException], ...] = (
    psycopg.DataError, psycopg.IntegrityError, psycopg.errors.ProgramLimitExceeded,
    ValueError, TypeError, LookupError, ArithmeticError, AttributeError, RecursionError,
    MemoryError)


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
        self.client_id = client_id
        # Unacknowledged at most: the queue (two batches) and one batch per writer.
        in_flight = (2 + c.writers) * c.batch_messages
        self.sub = Subscriber(host, port, tls, client_id, 2 * c.batch_messages,
                              decode, cfg.mqtt_username or None, cfg.mqtt_password or None,
                              v5=cfg.mqtt_v5, receive_maximum=in_flight,
                              tls_files=cfg.mqtt_tls_files)
        self.directory = store.Directory()
        self.stop = threading.Event()
        self._stats_lock = threading.Lock()
        self._taking = threading.Lock()
        self._failed: BaseException | None = None
        self.stats = {"accepted": 0, "duplicates": 0, "dead": 0, "rows": 0, "incidents": 0,
                      "dropped": 0, "isolated_batches": 0, "upkeep_errors": 0,
                      "broker_wills": 0}
        #: this process's gap scans: gaps found, seqs in them, resend commands sent, ...
        self.gap_totals = {"found": 0, "seqs": 0, "requests": 0, "filled": 0, "given_up": 0}
        self.gaps = {"open": 0, "unfilled": 0}  # fleet-wide, as of this collector's last scan
        self.dead_reasons: dict[str, int] = {}  # dead letters stored, by reason class
        self.latency = histo.Histogram(histo.LATENCY_BUCKETS)
        self.commit = histo.Histogram(histo.COMMIT_BUCKETS)
        self.gap_policy = Policy(c.gap_grace_s, c.gap_give_up_s, c.gap_retention_s)
        self.database_ok = False
        self.watchdog = Watchdog(Limits(c.canary_timeout_s, c.stall_s))
        self.gate = InputGate(c.resume_intervals)
        self.verdict = Verdict(False, False, ("starting",), Action.NONE, None)
        self.held_sites: frozenset[str] = frozenset()
        self.rule_params = RuleParams(
            ecc_ce_per_24h=c.ecc_ce_per_24h, temp_high_minutes=c.temp_high_minutes,
            raid_rebuild_limit_minutes=c.raid_rebuild_limit_minutes,
            smart_timeout_jump=c.smart_timeout_jump, nic_errors_per_hour=c.nic_errors_per_hour,
            fan_zero_readings=c.fan_zero_readings)
        self.facility_params = FacilityParams(c.facility_min_hosts, c.facility_rack_fraction,
                                              c.facility_window_s)

    def snapshot(self) -> health.Snapshot:
        """Health and counters for /readyz and /metrics."""
        v, o = self.verdict, self.sub.observe()
        return health.Snapshot(
            self.sub.connected.is_set(), self.database_ok, self.sub.queue.qsize(),
            dict(self.stats), ready=v.ready, reasons=v.reasons,
            oldest_unacked_s=o.oldest_unacked_s, silent_s=v.silent_s,
            detection_paused=self.gate.flowing_since is None or bool(self.held_sites),
            held_sites=tuple(sorted(self.held_sites)), recoveries=dict(self.sub.recoveries),
            gaps=dict(self.gaps), gap_totals=dict(self.gap_totals),
            dead_reasons=dict(self.dead_reasons), latency=self.latency.snapshot(),
            commit=self.commit.snapshot(), broker_cert_not_after=self.sub.broker_cert_not_after,
            broker_ca_not_after=self.sub.broker_ca_not_after)

    def _watch(self) -> None:
        """Every second: judge liveness, send canaries, recover a silent subscription."""
        c = self.cfg.collector
        next_canary = 0.0
        while not self.stop.is_set():
            now = time.monotonic()
            if now >= next_canary:
                self.sub.send_canary()
                next_canary = now + c.canary_interval_s
            was = self.verdict
            self.verdict = self.watchdog.judge(self.sub.observe(), self.database_ok)
            self.gate.observe(datetime.now(UTC), self.verdict.flowing)
            if self.verdict.reasons != was.reasons:
                log.log(logging.INFO if self.verdict.ready else logging.WARNING, "%s",
                        "ready" if self.verdict.ready else
                        "not ready: " + "; ".join(self.verdict.reasons))
            self.sub.recover(self.verdict.action)
            self.stop.wait(WATCH_S)

    def run(self) -> None:
        """Serve until stop is set; survives database and broker outages without losing."""
        url = self.cfg.require_database()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLD)
        server = health.serve(self.cfg.collector.http_addr, self.snapshot) \
            if self.cfg.collector.http_addr else None
        self.sub.start()
        threading.Thread(target=self._watch, name="liveness", daemon=True).start()
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
        next_sweep = next_partitions = next_gaps = 0.0
        while not self.stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(url, autocommit=True,
                                           application_name=APPLICATION_NAME,
                                           options=NO_JIT)
                    self.directory.reload(conn)
                now = time.monotonic()
                if upkeep and now >= next_partitions:
                    next_partitions = now + PARTITION_S
                    self._upkeep("partitions", partial(self._partitions, conn))
                if upkeep and now >= next_sweep:
                    next_sweep = now + SWEEP_S
                    self._upkeep("host-down sweep", partial(self._sweep, conn))
                if upkeep and now >= next_gaps:
                    next_gaps = now + GAPS_S
                    self._upkeep("gap scan", partial(self._gaps, conn))
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

    def _upkeep(self, what: str, step: Callable[[], None]) -> None:
        """Run an upkeep step; its failure (but a database outage) is logged, never fatal to
        ingest: a sweep tripping over one host's odd row must not stop every host's data."""
        try:
            step()
        except psycopg.OperationalError:
            raise
        except Exception:
            with self._stats_lock:
                self.stats["upkeep_errors"] += 1
            log.exception("%s failed; ingest goes on, it is tried again later", what)

    def _partitions(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        """Partitions ahead and behind, and old deduplication keys."""
        c = self.cfg.collector
        store.ensure_partitions(conn, datetime.now(UTC), c.retention_days,
                                c.rollup_retention_days)
        pruned = store.prune_keys(conn, datetime.now(UTC), c.dedup_days)
        if pruned:
            log.info("pruned %d deduplication keys older than %d days", pruned, c.dedup_days)

    def _sweep(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        """Host-down and facility detection, held while our own input is down; then this
        collector's status row for /ops."""
        c = self.cfg.collector
        now = datetime.now(UTC)
        self._relabel_wills(conn, now)
        result = store.sweep_hosts(conn, self.directory, c.offline_grace_intervals, now,
                                   self.facility_params,
                                   self.gate.hold(c.site_silent_fraction))
        if result.held_sites != self.held_sites and result.held_sites:
            log.warning("sites silent at once, taken for an input outage, not judged: %s",
                        ", ".join(sorted(result.held_sites)))
        self.held_sites = result.held_sites
        snap = self.snapshot()
        store.report_status(conn, self.client_id, now, snap.is_ready, snap.detection_paused,
                            snap.reasons, snap.held_sites, snap.oldest_unacked_s)

    def _gaps(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        """Find seq gaps and ask the agents to resend them (one collector at a time)."""
        done = gapstore.scan(conn, datetime.now(UTC), self.gap_policy, self._command)
        if done is None:
            return  # another collector's turn
        for key, n in (("found", done.found), ("seqs", done.seqs), ("requests", done.asked),
                       ("filled", done.filled), ("given_up", done.given_up)):
            self.gap_totals[key] += n  # only the upkeep writer scans
        self.gaps = {"open": done.open - done.unfilled, "unfilled": done.unfilled}
        if done.found:
            log.warning("%d seq gaps (%d seqs) found: messages the broker acknowledged and "
                        "no collector stored; asking their agents to resend", done.found,
                        done.seqs)
        if done.filled:
            log.info("%d seq gaps filled", done.filled)
        if done.given_up:
            log.warning("%d seq gaps not filled within %.0f s; recorded in ingest_gaps with "
                        "the reason, asked for until the agents' retention ends",
                        done.given_up, self.gap_policy.give_up_s)

    def _command(self, topic: str, payload: bytes) -> None:
        """Send one command to an agent."""
        if not self.sub.command(topic, payload):
            log.info("not connected: a resend on %s waits for the gap's next turn", topic)

    def _relabel_wills(self, conn: psycopg.Connection[tuple[object, ...]],
                       now: datetime) -> None:
        """Label 'broker' the wills that came with our recent losses of the broker."""
        for lost, back in list(self.sub.outages):
            if (back or now) > now - WILLS_LOOKBACK:
                n = store.relabel_broker_wills(conn, lost - WILLS_BEFORE,
                                               (back or now) + WILLS_AFTER)
                if n:
                    with self._stats_lock:
                        self.stats["broker_wills"] += n
                    log.info("%d last wills came with our loss of the broker at %s: labelled "
                             "'broker', not the hosts' own loss", n, lost.isoformat())

    def _next_batch(self) -> list[Item]:
        """Up to batch_messages messages, waiting at most batch_ms after the first."""
        cfg = self.cfg.collector
        try:
            first = self.sub.queue.get(timeout=0.5)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + cfg.batch_ms / 1000
        take = self.sub.queue.get_nowait
        while len(batch) < cfg.batch_messages:
            try:
                batch.append(take())
                continue
            except queue.Empty:
                pass
            left = deadline - time.monotonic()
            if left <= 0:
                break
            # Waiting on the queue woke this thread for every message put (a handover of
            # the interpreter lock each); a short sleep lets them gather, taken in a run.
            time.sleep(min(left, BATCH_POLL_S))
        return batch

    def _write(self, conn: psycopg.Connection[tuple[object, ...]], batch: list[Item]) -> None:
        """Store a batch and acknowledge it; a batch a message spoils is stored one by one."""
        messages = [item for _, item in batch if isinstance(item, Message)]
        dead = [item for _, item in batch if isinstance(item, DeadLetter)]
        started = time.monotonic()
        try:
            result = store.write_batch(conn, self.directory, messages, dead, self.rule_params)
            self.commit.observe(time.monotonic() - started)
        except MESSAGE_FAULTS as exc:
            log.warning("a batch of %d failed (%s: %s); storing its messages one at a time",
                        len(batch), type(exc).__name__, exc)
            with self._stats_lock:
                self.stats["isolated_batches"] += 1
            result = self._one_by_one(conn, messages, dead)
        self.sub.ack([raw for raw, _ in batch])
        committed = datetime.now(UTC)
        for m in messages:  # duplicates too: their redelivery is part of the latency
            # an agent's clock ahead of ours would make it negative: counted as 0
            self.latency.observe(max(0.0, (committed - m.ts).total_seconds()))
        with self._stats_lock:  # writers add at once; `+=` on a dict item is not atomic
            for reason in result.dead_reasons:
                label = histo.reason_class(reason)
                self.dead_reasons[label] = self.dead_reasons.get(label, 0) + 1
            for key, value in (("accepted", result.accepted), ("duplicates", result.duplicates),
                               ("dead", result.dead), ("rows", result.rows),
                               ("incidents", len(result.opened))):
                self.stats[key] += value
        for incident in result.opened:
            log.info("opened incident %s", incident)
        for d in dead:
            log.warning("dead letter on %s: %s", d.topic[:200], d.reason[:300])

    def _one_by_one(self, conn: psycopg.Connection[tuple[object, ...]],
                    messages: list[Message], dead: list[DeadLetter]) -> store.BatchResult:
        """Each message in its own transaction; one the database refuses becomes a dead letter."""
        result = store.EMPTY
        for m in messages:
            try:
                result += store.write_batch(conn, self.directory, [m], [], self.rule_params)
            except MESSAGE_FAULTS as exc:
                result += self._dead_letter(conn, store.refused(m, clean(
                    f"stored alone, refused by the store: {type(exc).__name__}: {exc}")))
        for d in dead:
            result += self._dead_letter(conn, d)
        return result

    def _dead_letter(self, conn: psycopg.Connection[tuple[object, ...]],
                     d: DeadLetter) -> store.BatchResult:
        """Store one dead letter; if even that is refused, count and log it, and go on (the
        message is acknowledged: redelivering it forever would stop ingest)."""
        try:
            return store.write_batch(conn, self.directory, [], [d])
        except MESSAGE_FAULTS as exc:
            with self._stats_lock:
                self.stats["dropped"] += 1
            log.error("a dead letter on %r could not be stored either (%s: %s); acknowledged "
                      "and dropped; its reason was: %s; payload %d bytes, first 200: %r",
                      d.topic[:200], type(exc).__name__, exc, d.reason[:300], len(d.payload),
                      d.payload[:200])
            return store.EMPTY
